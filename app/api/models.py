"""Request and response bodies of the REST and OpenAI-compatible routes (the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: int


class ErrorBody(BaseModel):
    error: ErrorDetail


# Names: any language, no control/format characters, not blank (what rag.store.validate_kb_name checks).
NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb][^\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"


def _json_int(v):  # noqa: ANN001, ANN202
    """JSON Schema integers include 5.0; booleans are not integers."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


JsonInt = Annotated[int, BeforeValidator(_json_int)]


class StrictBody(BaseModel):
    """Request bodies: no type coercion (true is not 1, "5" is not 5)."""

    model_config = ConfigDict(strict=True)


class KBName(StrictBody):
    name: str = Field(..., min_length=1, max_length=200, pattern=NAME_PATTERN,
                      description="Display name, any language; no control characters; not blank.")


class MemberIn(StrictBody):
    role: Literal["viewer", "editor", "owner"]


class MemberOut(BaseModel):
    user: str
    role: str


class KBOut(BaseModel):
    name: str
    documents: int
    chunks: int
    embedding_model: str
    embedding_note: str | None = Field(None, description="Set when the knowledge base was built with another model "
                                       "than the default, and what rebuilding its index would change.")
    created_at: str


class IndexBuildIn(StrictBody):
    model: str | None = Field(None, min_length=1, max_length=500,
                              description="Embedding model of the new index; default: the configured one.")


class IndexBuildOut(BaseModel):
    """A knowledge base's new index, built beside the one serving it (status `none`: there is none)."""

    knowledge_base: str
    current_model: str
    model: str | None = None
    status: str = Field(..., description="none | building | built | failed")
    done: int = 0
    total: int = 0
    running: bool = False
    error: str | None = None
    comparison: dict | None = Field(None, description="Once built: both indexes searched with the knowledge base's "
                                    "own questions (per case: rank of the expected passage before/after, top-5 "
                                    "overlap).")


class DocumentOut(BaseModel):
    id: str
    filename: str
    status: str
    pages: int | None
    chunks: int
    error: str | None
    added: str


class ChunkOut(BaseModel):
    id: str
    index: int = Field(description="Position in the document, from 0.")
    page: int | None
    section: str | None
    text: str
    length: int = Field(description="Characters.")
    enabled: bool = Field(description="false: switched off, excluded from search and answers.")


class ChunkSwitch(StrictBody):
    enabled: bool


class FileResultOut(BaseModel):
    name: str
    status: Literal["ingested", "replaced", "skipped", "failed"]
    reason: str | None = None
    pages: int | None = None
    chunks: int = 0
    warnings: list[str] = []
    ocr_pages: int = Field(0, description="Pages whose text was read by OCR (scanned pages).")


class UploadOut(BaseModel):
    knowledge_base: str
    results: list[FileResultOut]
    ingested: int
    skipped: int
    failed: int


class SearchIn(StrictBody):
    query: str = Field(..., min_length=1, max_length=4000)
    k: JsonInt = Field(5, ge=1, le=100)
    explain: bool = Field(False, description="Also the answer gate's verdict per hit (the retrieval test).")


class GateOut(BaseModel):
    kept: bool = Field(description="The answer gate keeps this block as evidence for the question.")
    in_prompt: bool = Field(description="The model would see it: when any block is kept, the best-ranked block and the kept "
                           "ones, RAGKB_ANSWER_K at most; none when no block is kept (a refusal without a model call).")
    coverage: float = Field(description="IDF-weighted share of the question's topic words in the block.")
    dense_similarity: float | None = Field(description="Cosine similarity; null when the embedder does not "
                                           "serve the question's language.")
    why: str


class HitOut(BaseModel):
    rank: int
    filename: str
    page: int | None
    section: str | None
    score: float
    text: str
    doc_id: str
    chunk_id: str
    dense_rank: int | None = None
    bm25_rank: int | None = None
    gate: GateOut | None = None


class AskIn(StrictBody):
    question: str = Field(..., min_length=1, max_length=8000)
    conversation_id: str | None = Field(None, description="Continue this conversation; omitted: a new one.")
    stream: bool = Field(False, description="Server-sent events: status, token, sources, error, done.")


class SourceOut(BaseModel):
    n: int
    filename: str
    page: int | None
    section: str | None
    snippet: str
    kind: str = "document"
    attributed: bool = False
    left_out: list[str] = Field(default_factory=list, description="Sentences of the block that read as orders to the "
                                "model (prompt injection): not shown to it.")
    evidence: str = Field("", description="What the model was given of this block: the sentences the answer rests "
                          "on (' … ' marks left-out stretches). Empty for a source stored before it was recorded.")


class ClaimOut(BaseModel):
    sentence: str = Field(description="An answer sentence whose checkable facts its cited blocks do not contain.")
    cites: list[int]
    missing: list[str] = Field(description="The numbers, commands, paths, URLs or quoted terms not found.")
    kind: str = Field("fact", description="'fact': a cited sentence whose facts its blocks lack; 'uncited': the whole "
                      "answer cites nothing and most of its words are not in the passages found (probably the "
                      "model's own knowledge).")


class AskOut(BaseModel):
    answer: str
    sources: list[SourceOut]
    refused: bool
    unsupported_claims: list[ClaimOut] = Field(default_factory=list,
                                               description="Sentences not supported by the blocks they cite.")
    conversation_id: str
    message_id: str
    error: str | None = None


class FeedbackIn(StrictBody):
    rating: Literal[1, -1] = Field(..., description="1: helpful, -1: not helpful.")
    comment: str | None = Field(None, max_length=4000)


class CorrectionIn(StrictBody):
    answer: str = Field(..., min_length=1, max_length=8000, pattern=r"\S",
                        description="The right answer to the question this message answered.")


class CorrectionOut(BaseModel):
    id: str
    knowledge_base: str | None
    question: str
    answer: str
    message_id: str | None


class ConversationOut(BaseModel):
    id: str
    title: str
    knowledge_base: str | None
    created_at: str
    updated_at: str


class MessageOut(BaseModel):
    id: str
    role: str
    content: str
    sources: list[dict]
    rating: int | None
    created_at: str
    refused: bool = False
    unsupported_claims: list[ClaimOut] = Field(default_factory=list, description="The answer's flags as they were "
                                               "when it was given (a reloaded answer is never shown as supported).")


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


class ChatMessage(StrictBody):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict] | None = None


class ChatCompletionIn(StrictBody):
    model: str = Field(..., min_length=1, description="The knowledge base to answer from (see /v1/models).")
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: JsonInt | None = Field(None, ge=1)
    user: str | None = None


def message_text(content) -> str:  # noqa: ANN001
    """The text of an OpenAI message content (a string, or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


