"""/api/kbs/{kb}/ask: an answer inside a stored conversation, whole or as server-sent events."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from app.api.deps import ERRORS, Service, require_key
from app.api.errors import ApiError
from app.api.models import AskIn, AskOut, ClaimOut, ErrorBody, SourceOut
from rag.events import collect, event_dict

router = APIRouter(prefix="/api", dependencies=[Depends(require_key)], responses=ERRORS)


@router.post("/kbs/{kb}/ask", response_model=AskOut, tags=["answers"],
             responses={503: {"model": ErrorBody}, 200: {"content": {"text/event-stream": {}}}})
def ask(kb: str, body: AskIn, service: Service):
    """Answer from the knowledge base. `stream: true` gives server-sent events, one JSON object each:
    `conversation`, `status`, `token` (`text`), `sources`, `error`, and `done` (`refused`, `message_id`,
    `unsupported_claims`, `timings`, ...)."""
    events = service.chat(body.conversation_id, kb, body.question)
    opening = next(events)  # unknown knowledge base or conversation: raised here, before any stream

    def all_events() -> Iterator:
        yield opening
        yield from events

    if body.stream:
        def sse() -> Iterator[str]:
            for ev in all_events():
                yield f"data: {json.dumps(event_dict(ev), ensure_ascii=False)}\n\n"
        return StreamingResponse(sse(), media_type="text/event-stream")
    got = collect(all_events())
    if got.error and not got.text:
        raise ApiError(503, got.error, "model_unavailable")
    return AskOut(answer=got.text, refused=got.refused, error=got.error,
                  sources=[SourceOut(**{k: v for k, v in s.as_dict().items() if k in SourceOut.model_fields})
                           for s in got.sources],
                  unsupported_claims=[ClaimOut(**c) for c in got.unsupported_claims],
                  conversation_id=got.conversation_id, message_id=got.message_id or "")
