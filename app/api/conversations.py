"""/api/conversations and /api/messages: stored chats, feedback, corrections; the bad-case export."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from app.api.deps import ERRORS, Service, require_key
from app.api.models import ClaimOut, ConversationDetail, ConversationOut, CorrectionIn, CorrectionOut, FeedbackIn, MessageOut

router = APIRouter(prefix="/api", dependencies=[Depends(require_key)], responses=ERRORS)


def conv_out(c) -> ConversationOut:  # noqa: ANN001
    return ConversationOut(id=c.id, title=c.title, knowledge_base=c.kb_name, created_at=c.created_at.isoformat(),
                           updated_at=c.updated_at.isoformat())


@router.get("/conversations", response_model=list[ConversationOut], tags=["conversations"])
def list_conversations(service: Service):
    return [conv_out(c) for c in service.conversations_of()]


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail, tags=["conversations"])
def read_conversation(conversation_id: str, service: Service):
    c = service.conversation(conversation_id)
    msgs = [MessageOut(id=m.id, role=m.role, content=m.content, sources=m.sources, rating=m.rating,
                       created_at=m.created_at.isoformat(), refused=bool(m.meta.get("refused")),
                       unsupported_claims=[ClaimOut(**c) for c in m.meta.get("unsupported_claims") or []])
            for m in service.messages(conversation_id)]
    return ConversationDetail(**conv_out(c).model_dump(), messages=msgs)


@router.delete("/conversations/{conversation_id}", status_code=204, tags=["conversations"])
def delete_conversation(conversation_id: str, service: Service):
    service.delete_conversation(conversation_id)
    return Response(status_code=204)


@router.post("/messages/{message_id}/feedback", status_code=204, tags=["conversations"])
def message_feedback(message_id: str, body: FeedbackIn, service: Service):
    """👍 / 👎 on an answer (with a comment), as in the web UI; 👎 answers go to the bad-case export."""
    service.feedback(message_id, body.rating, body.comment)
    return Response(status_code=204)


@router.post("/messages/{message_id}/correction", response_model=CorrectionOut, status_code=201,
             tags=["conversations"])
def message_correction(message_id: str, body: CorrectionIn, service: Service):
    """The right answer to the question this answer was given for: later answers to that question (or one
    like it) in the same knowledge base get it first, as a source with `"kind": "correction"`."""
    return CorrectionOut(**service.correct(message_id, body.answer))


@router.get("/kbs/{kb}/bad-cases", tags=["conversations"],
            responses={200: {"content": {"application/x-ndjson": {}}}})
def bad_cases(kb: str, service: Service):
    """Answers marked not helpful and corrections in this knowledge base, one JSON object per line (the
    web UI's "Evaluation set" export; `ragkb eval cases` re-asks them)."""
    return Response(service.bad_cases_jsonl(kb=kb), media_type="application/x-ndjson")
