"""/v1: the OpenAI-compatible face. Each knowledge base is a model; sources ride in an extra field."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from app.api.deps import ERRORS, Service, require_key
from app.api.errors import ApiError
from app.api.models import ChatCompletionIn, ErrorBody, message_text
from rag.events import AnswerCollector, Done, Failed, Sources, Token

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], tags=["openai"], responses=ERRORS)


@router.get("/models")
def models(service: Service) -> dict:
    """Each knowledge base is a model."""
    return {"object": "list", "data": [{"id": kb.name, "object": "model", "created": int(kb.created_at.timestamp()),
                                        "owned_by": "ragkb"} for kb in service.list_kbs()]}


@router.post("/chat/completions", responses={503: {"model": ErrorBody}, 200: {"content": {"text/event-stream": {}}}})
def chat_completions(body: ChatCompletionIn, service: Service):
    """Chat with a knowledge base through any OpenAI client: `model` is the knowledge base name;
    the last user message is the question, earlier user/assistant messages are the conversation.
    Sources come in the extra `sources` field (of the message, or of the last stream chunk)."""
    service.kb(body.model)
    turns = [(m.role, message_text(m.content)) for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise ApiError(422, "The last message must be a non-empty user message (the question).")
    events = service.stream_answer(body.model, turns[-1][1], turns[:-1])
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    # Look ahead to the first answer token: a model that is down is a 503, not a broken stream.
    first = []
    for ev in events:
        if isinstance(ev, Failed):
            raise ApiError(503, ev.text, "model_unavailable")
        if isinstance(ev, (Token, Sources, Done)):
            first.append(ev)
            break

    def rest() -> Iterator:
        yield from first
        yield from events

    got = AnswerCollector()
    if body.stream:
        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": body.model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

        def sse() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            for ev in map(got.add, rest()):
                if isinstance(ev, Token):
                    yield chunk({"content": ev.text})
                elif isinstance(ev, Failed):
                    yield chunk({"content": f"\n\n[error: {ev.text}]"})
            yield chunk({}, "stop", sources=[s.as_dict() for s in got.sources],
                        unsupported_claims=got.unsupported_claims)
            yield "data: [DONE]\n\n"
        return StreamingResponse(sse(), media_type="text/event-stream")
    for ev in rest():
        got.add(ev)
    sources = [s.as_dict() for s in got.sources]
    if got.error and not got.text:
        raise ApiError(503, got.error, "model_unavailable")
    return {"id": cid, "object": "chat.completion", "created": created, "model": body.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": got.text, "sources": sources,
                                     "unsupported_claims": got.unsupported_claims}}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "sources": sources}
