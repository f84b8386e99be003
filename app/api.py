"""REST API and OpenAI-compatible endpoints: thin routes over `RagkbService`.

Errors are JSON `{"error": {"message", "type"}}` with the status that says what went wrong
(404 unknown knowledge base, 409 name taken, 413 too large, 415 unsupported type, 422 bad request,
503 model unavailable). With `RAGKB_API_KEYS` set, every route but /api/health needs
`Authorization: Bearer KEY` (or `X-API-Key: KEY`).
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.services import RagkbService, Upload, UploadRejected, safe_display_name
from rag.chain import collect
from rag.conversations import ConversationNotFound, MessageNotFound
from rag.errors import (
    DocumentNotFound, EmbeddingMismatch, EmbeddingModelUnavailable, InvalidName, KnowledgeBaseExists,
    KnowledgeBaseNotFound, LLMUnavailable, RagkbError, VectorStoreUnavailable,
)

STATUS = [
    ((KnowledgeBaseNotFound, DocumentNotFound, ConversationNotFound, MessageNotFound), 404, "not_found"),
    ((KnowledgeBaseExists, EmbeddingMismatch), 409, "conflict"),
    ((InvalidName,), 422, "invalid_request"),
    ((LLMUnavailable, EmbeddingModelUnavailable), 503, "model_unavailable"),
    ((VectorStoreUnavailable,), 503, "vector_store_unavailable"),
]


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def error_response(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def status_of(exc: RagkbError) -> tuple[int, str]:
    if isinstance(exc, UploadRejected):
        return exc.status, "invalid_file"
    for types, status, kind in STATUS:
        if isinstance(exc, types):
            return status, kind
    return 400, "bad_request"


# --- request / response models ---------------------------------------------------------------
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


class KBOut(BaseModel):
    name: str
    documents: int
    chunks: int
    embedding_model: str
    created_at: str


class DocumentOut(BaseModel):
    id: str
    filename: str
    status: str
    pages: int | None
    chunks: int
    error: str | None
    added: str


class FileResultOut(BaseModel):
    name: str
    status: Literal["ingested", "replaced", "skipped", "failed"]
    reason: str | None = None
    pages: int | None = None
    chunks: int = 0
    warnings: list[str] = []


class UploadOut(BaseModel):
    knowledge_base: str
    results: list[FileResultOut]
    ingested: int
    skipped: int
    failed: int


class SearchIn(StrictBody):
    query: str = Field(..., min_length=1, max_length=4000)
    k: JsonInt = Field(5, ge=1, le=100)


class HitOut(BaseModel):
    rank: int
    filename: str
    page: int | None
    section: str | None
    score: float
    text: str
    doc_id: str
    chunk_id: str


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


class ClaimOut(BaseModel):
    sentence: str = Field(description="An answer sentence whose checkable facts its cited blocks do not contain.")
    cites: list[int]
    missing: list[str] = Field(description="The numbers, commands, paths, URLs or quoted terms not found.")


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


def _text(content) -> str:  # noqa: ANN001
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


# --- the API ----------------------------------------------------------------------------------
def add_api(app: FastAPI, service: RagkbService) -> None:
    keys = service.settings.api_key_list()
    errors = {400: {"model": ErrorBody}, 404: {"model": ErrorBody}, 422: {"model": ErrorBody},
              401: {"model": ErrorBody}}

    def require_key(request: Request) -> None:
        if not keys:
            return
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
        if not given or not any(secrets.compare_digest(given, k) for k in keys):
            raise ApiError(401, "Missing or wrong API key: send 'Authorization: Bearer <key>'.", "unauthorized")

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.kind)

    @app.exception_handler(RagkbError)
    async def _ragkb_error(_req: Request, exc: RagkbError):
        status, kind = status_of(exc)
        return error_response(status, str(exc), kind)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return error_response(422, "Invalid request: " + "; ".join(parts), "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), "not_found" if exc.status_code == 404 else "http_error")

    api = APIRouter(prefix="/api", dependencies=[Depends(require_key)], responses=errors)

    def kb_out(kb) -> KBOut:  # noqa: ANN001
        return KBOut(name=kb.name, documents=kb.documents, chunks=kb.chunks, embedding_model=kb.embedding_model,
                     created_at=kb.created_at.isoformat())

    @api.get("/kbs", response_model=list[KBOut], tags=["knowledge bases"])
    def list_kbs():
        return [kb_out(kb) for kb in service.list_kbs()]

    @api.post("/kbs", response_model=KBOut, status_code=201, tags=["knowledge bases"],
              responses={409: {"model": ErrorBody}})
    def create_kb(body: KBName):
        return kb_out(service.create_kb(body.name))

    @api.get("/kbs/{kb}", response_model=KBOut, tags=["knowledge bases"])
    def get_kb(kb: str):
        return kb_out(service.store.get(kb))

    @api.patch("/kbs/{kb}", response_model=KBOut, tags=["knowledge bases"], responses={409: {"model": ErrorBody}})
    def rename_kb(kb: str, body: KBName):
        return kb_out(service.rename_kb(kb, body.name))

    @api.delete("/kbs/{kb}", status_code=204, tags=["knowledge bases"])
    def delete_kb(kb: str):
        service.delete_kb(kb)
        return Response(status_code=204)

    def doc_out(d) -> DocumentOut:  # noqa: ANN001
        return DocumentOut(id=d.id, filename=d.filename, status=d.status, pages=d.pages, chunks=d.chunks,
                           error=d.error, added=d.created_at.isoformat())

    @api.get("/kbs/{kb}/documents", response_model=list[DocumentOut], tags=["documents"])
    def list_documents(kb: str):
        return [doc_out(d) for d in service.documents(kb)]

    @api.post("/kbs/{kb}/documents", response_model=UploadOut, tags=["documents"],
              responses={413: {"model": ErrorBody}, 415: {"model": ErrorBody}})
    def upload_documents(kb: str, files: list[UploadFile] = File(..., description="PDF, Markdown or text files")):
        service.store.get_row(kb)
        tmp = Path(tempfile.mkdtemp(prefix="ragkb-upload-"))
        try:
            uploads = []
            limit = service.settings.max_file_mb * 1024 * 1024
            for i, f in enumerate(files):
                name = safe_display_name(f.filename or f"upload-{i}")
                path = tmp / f"{i}{Path(name).suffix.lower()}"
                with open(path, "wb") as out:
                    copied = 0
                    while chunk := f.file.read(1 << 20):
                        copied += len(chunk)
                        if copied > limit:  # stop reading: the file is refused anyway
                            break
                        out.write(chunk)
                refused = None
                if copied > limit:
                    path.unlink()
                    refused = f"file is over the {service.settings.max_file_mb:g} MB limit (RAGKB_MAX_FILE_MB)"
                uploads.append(Upload(path, name, refused))
            refused = [service.check_upload(u) for u in uploads]
            if all(r is not None for r in refused):  # nothing acceptable: the request itself is refused
                first = refused[0]
                status = 413 if "limit" in (first.reason or "") else 415
                detail = "; ".join(f"{r.name}: {r.reason}" for r in refused[1:4])
                raise UploadRejected(first.name, (first.reason or "refused") + (f" (also {detail})" if detail else ""),
                                     status)
            summary = service.ingest_uploads(kb, uploads)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return UploadOut(knowledge_base=summary.kb, ingested=len(summary.ingested), skipped=len(summary.skipped),
                         failed=len(summary.failed),
                         results=[FileResultOut(name=r.name, status=r.status, reason=r.reason, pages=r.pages,
                                                chunks=r.chunks, warnings=r.warnings) for r in summary.results])

    @api.delete("/kbs/{kb}/documents/{document}", status_code=204, tags=["documents"])
    def delete_document(kb: str, document: str):
        service.delete_document(kb, document)
        return Response(status_code=204)

    @api.post("/kbs/{kb}/search", response_model=list[HitOut], tags=["search"])
    def search(kb: str, body: SearchIn):
        return [HitOut(rank=i, filename=h.filename, page=h.page, section=h.section, score=round(h.score, 6),
                       text=h.text, doc_id=h.doc_id, chunk_id=h.chunk_id)
                for i, h in enumerate(service.search(kb, body.query, body.k), start=1)]

    @api.post("/kbs/{kb}/ask", response_model=AskOut, tags=["answers"],
              responses={503: {"model": ErrorBody}, 200: {"content": {"text/event-stream": {}}}})
    def ask(kb: str, body: AskIn):
        """Answer from the knowledge base. `stream: true` gives server-sent events (one JSON object per
        event: `{"type": "token", "text": ...}`, then `sources`, then `done`)."""
        events = service.chat(body.conversation_id, kb, body.question)
        opening = next(events)  # unknown knowledge base or conversation: raised here, before any stream

        def all_events() -> Iterator:
            yield opening
            yield from events

        if body.stream:
            def sse() -> Iterator[str]:
                for ev in all_events():
                    payload = {"type": ev.type, "text": ev.text, **({"sources": [s.as_dict() for s in ev.sources]}
                                                                     if ev.type == "sources" else {}), **ev.data}
                    yield f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
            return StreamingResponse(sse(), media_type="text/event-stream")
        got = collect(all_events())
        if got.error and not got.text:
            raise ApiError(503, got.error, "model_unavailable")
        sources = [SourceOut(**{k: v for k, v in s.as_dict().items() if k in SourceOut.model_fields})
                   for s in got.sources]
        return AskOut(answer=got.text, sources=sources, refused=bool(got.data.get("refused")),
                      unsupported_claims=[ClaimOut(**c) for c in got.data.get("unsupported_claims", [])],
                      conversation_id=got.data["conversation_id"], message_id=got.data.get("message_id", ""),
                      error=got.error)

    def conv_out(c) -> ConversationOut:  # noqa: ANN001
        return ConversationOut(id=c.id, title=c.title, knowledge_base=c.kb_name, created_at=c.created_at.isoformat(),
                               updated_at=c.updated_at.isoformat())

    @api.get("/conversations", response_model=list[ConversationOut], tags=["conversations"])
    def list_conversations():
        return [conv_out(c) for c in service.conversations.list("")]

    @api.get("/conversations/{conversation_id}", response_model=ConversationDetail, tags=["conversations"])
    def read_conversation(conversation_id: str):
        c = service.conversations.get(conversation_id, "")
        msgs = [MessageOut(id=m.id, role=m.role, content=m.content, sources=m.sources, rating=m.rating,
                           created_at=m.created_at.isoformat())
                for m in service.conversations.messages(conversation_id, "")]
        return ConversationDetail(**conv_out(c).model_dump(), messages=msgs)

    @api.delete("/conversations/{conversation_id}", status_code=204, tags=["conversations"])
    def delete_conversation(conversation_id: str):
        service.conversations.delete(conversation_id, "")
        return Response(status_code=204)

    @api.post("/messages/{message_id}/feedback", status_code=204, tags=["conversations"])
    def message_feedback(message_id: str, body: FeedbackIn):
        """👍 / 👎 on an answer (with a comment), as in the web UI; 👎 answers go to the bad-case export."""
        service.feedback(message_id, body.rating, body.comment)
        return Response(status_code=204)

    @api.post("/messages/{message_id}/correction", response_model=CorrectionOut, status_code=201,
              tags=["conversations"])
    def message_correction(message_id: str, body: CorrectionIn):
        """The right answer to the question this answer was given for: later answers to that question (or one
        like it) in the same knowledge base get it first, as a source with `"kind": "correction"`."""
        return CorrectionOut(**service.correction(service.correct(message_id, body.answer)))

    @api.get("/kbs/{kb}/bad-cases", tags=["conversations"],
             responses={200: {"content": {"application/x-ndjson": {}}}})
    def bad_cases(kb: str):
        """Answers marked not helpful and corrections in this knowledge base, one JSON object per line (the
        web UI's "Evaluation set" export; `ragkb eval cases` re-asks them)."""
        return Response(service.bad_cases_jsonl(kb=kb), media_type="application/x-ndjson")

    app.include_router(api)

    # --- OpenAI-compatible ---------------------------------------------------------------------
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], tags=["openai"], responses=errors)

    @v1.get("/models")
    def models() -> dict:
        """Each knowledge base is a model."""
        return {"object": "list", "data": [{"id": kb.name, "object": "model", "created": int(kb.created_at.timestamp()),
                                            "owned_by": "ragkb"} for kb in service.list_kbs()]}

    @v1.post("/chat/completions", responses={503: {"model": ErrorBody}, 200: {"content": {"text/event-stream": {}}}})
    def chat_completions(body: ChatCompletionIn):
        """Chat with a knowledge base through any OpenAI client: `model` is the knowledge base name;
        the last user message is the question, earlier user/assistant messages are the conversation.
        Sources come in the extra `sources` field (of the message, or of the last stream chunk)."""
        service.store.get_row(body.model)
        turns = [(m.role, _text(m.content)) for m in body.messages if m.role in ("user", "assistant")]
        if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
            raise ApiError(422, "The last message must be a non-empty user message (the question).")
        question, history = turns[-1][1], turns[:-1]
        events = service.answers.stream(body.model, question, history)
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": body.model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

        # Look ahead to the first answer token: a model that is down is a 503, not a broken stream.
        first = []
        for ev in events:
            if ev.type == "error":
                raise ApiError(503, ev.text, "model_unavailable")
            if ev.type in ("token", "sources", "done"):
                first.append(ev)
                break

        def rest() -> Iterator:
            yield from first
            yield from events

        if body.stream:
            def sse() -> Iterator[str]:
                yield chunk({"role": "assistant", "content": ""})
                sources: list[dict] = []
                claims: list[dict] = []
                for ev in rest():
                    if ev.type == "token":
                        yield chunk({"content": ev.text})
                    elif ev.type == "sources":
                        sources = [s.as_dict() for s in ev.sources]
                    elif ev.type == "done":
                        claims = ev.data.get("unsupported_claims", [])
                    elif ev.type == "error":
                        yield chunk({"content": f"\n\n[error: {ev.text}]"})
                yield chunk({}, "stop", sources=sources, unsupported_claims=claims)
                yield "data: [DONE]\n\n"
            return StreamingResponse(sse(), media_type="text/event-stream")
        got = collect(rest())
        text, sources = got.text, [s.as_dict() for s in got.sources]
        if got.error and not text:
            raise ApiError(503, got.error, "model_unavailable")
        return {"id": cid, "object": "chat.completion", "created": created, "model": body.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text, "sources": sources,
                                         "unsupported_claims": got.data.get("unsupported_claims", [])}}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                "sources": sources}

    app.include_router(v1)

    # The web UI is mounted at "/" and would answer every other path under /api and /v1 with its own
    # 404 page. A known API path with a method it does not take gets 405 (with Allow); an unknown
    # path under /api or /v1 gets the API's JSON 404.
    from starlette.routing import Match

    def flat(routes):  # noqa: ANN001, ANN202  (FastAPI >= 0.16x keeps included routers as objects)
        for r in routes:
            inner = getattr(r, "original_router", None)
            yield from (flat(inner.routes) if inner is not None else [r])

    api_routes = [r for r in flat(app.router.routes) if getattr(r, "path", "").startswith(("/api/", "/v1/"))]

    @app.middleware("http")
    async def method_not_allowed(request: Request, call_next):
        path = request.url.path
        if path.startswith(("/api/", "/v1/")):
            full, allowed = False, set()
            for route in api_routes:
                match, _ = route.matches(request.scope)
                if match == Match.FULL:
                    full = True
                    break
                if match == Match.PARTIAL:
                    allowed |= set(getattr(route, "methods", None) or ())
            if not full:
                if allowed:
                    resp = error_response(405, f"Method {request.method} is not allowed on {path} (allowed: "
                                               f"{', '.join(sorted(allowed))}).", "method_not_allowed")
                    resp.headers["Allow"] = ", ".join(sorted(allowed))
                    return resp
                return error_response(404, f"No such API route: {path}", "not_found")
        return await call_next(request)
