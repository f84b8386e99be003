"""Conversations, feedback and user corrections, in the registry's database.

Every face (web UI, API, CLI) reads and writes chat history through this module, so a page reload,
an app restart or another replica sees the same conversations. Corrections are the user's own
answers to a question; the answer chain retrieves them for similar questions in the same
knowledge base and puts them first, marked as user corrections.

Conversations and corrections hang off a knowledge base by its id, never by its name: a rename (from any
face) keeps them attached, and a knowledge base deleted and created again under the same name starts
without the old one's corrections. The name stored beside the id is only what to show once the knowledge
base is gone. Databases written before the id existed are migrated when the store opens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, delete, inspect, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from rag.errors import ConversationNotFound, KnowledgeBaseNotFound, MessageNotFound, RagkbError  # noqa: F401
from rag.registry import KnowledgeBaseRow, Registry, _now, new_id


class _Base(DeclarativeBase):
    pass


class ConversationRow(_Base):
    __tablename__ = "conversations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user: Mapped[str] = mapped_column(String(200), default="", index=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    kb_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    kb_name: Mapped[str | None] = mapped_column(String(200), nullable=True)  # shown once the knowledge base is gone
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, index=True)


class MessageRow(_Base):
    __tablename__ = "messages"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # user | assistant
    content: Mapped[str] = mapped_column(Text)
    sources: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list of Source dicts
    meta: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: refused, error, timings...
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)  # +1 / -1
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class CorrectionRow(_Base):
    __tablename__ = "corrections"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kb_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    kb_name: Mapped[str] = mapped_column(String(200), index=True)  # shown once the knowledge base is gone
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    original_answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    user: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=_now)


@dataclass
class Message:
    id: str
    role: str
    content: str
    sources: list[dict]
    meta: dict
    rating: int | None
    comment: str | None
    created_at: datetime


@dataclass
class Conversation:
    id: str
    user: str
    title: str
    kb_name: str | None
    created_at: datetime
    updated_at: datetime


def _conv(row: ConversationRow, s: Session) -> Conversation:
    """`kb_name` is the knowledge base's current name, None when it was deleted."""
    return Conversation(row.id, row.user, row.title, _current_name(s, row.kb_id), row.created_at, row.updated_at)


def _current_name(s: Session, kb_id: str | None) -> str | None:
    return s.scalar(select(KnowledgeBaseRow.name).where(KnowledgeBaseRow.id == kb_id)) if kb_id else None


def _find_kb_id(s: Session, name: str) -> str | None:
    return s.scalar(select(KnowledgeBaseRow.id).where(KnowledgeBaseRow.name == name))


def _kb_id(s: Session, name: str) -> str:
    kb_id = _find_kb_id(s, name)
    if kb_id is None:
        raise KnowledgeBaseNotFound(name)
    return kb_id


def _migrate(engine) -> None:  # noqa: ANN001
    """Databases from before knowledge-base ids: add the kb_id columns and fill them from the names."""
    for table in ("conversations", "corrections"):
        if "kb_id" in {c["name"] for c in inspect(engine).get_columns(table)}:
            continue
        try:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN kb_id VARCHAR(32)"))
                conn.execute(text(f"UPDATE {table} SET kb_id = (SELECT id FROM knowledge_bases "
                                  f"WHERE knowledge_bases.name = {table}.kb_name)"))
                conn.execute(text(f"CREATE INDEX IF NOT EXISTS ix_{table}_kb_id ON {table} (kb_id)"))
        except Exception:  # another process migrated it in the meantime
            if "kb_id" not in {c["name"] for c in inspect(engine).get_columns(table)}:
                raise


def _msg(row: MessageRow) -> Message:
    return Message(row.id, row.role, row.content, json.loads(row.sources or "[]"), json.loads(row.meta or "{}"),
                   row.rating, row.comment, row.created_at)


def title_from(question: str, limit: int = 60) -> str:
    text = " ".join(question.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ConversationStore:
    """Conversations of every user; `user` is "" when login is off. Methods taking `user` only see
    that user's conversations (another user's id is reported as not found)."""

    def __init__(self, registry: Registry):
        _Base.metadata.create_all(registry.engine)
        _migrate(registry.engine)
        self.session = registry.session  # same database, same transaction handling as the registry

    # -- conversations ----------------------------------------------------------------------
    def create(self, user: str = "", kb_name: str | None = None, title: str = "") -> Conversation:
        with self.session() as s:
            row = ConversationRow(user=user, kb_id=_kb_id(s, kb_name) if kb_name else None, kb_name=kb_name,
                                  title=title)
            s.add(row)
            s.flush()
            return _conv(row, s)

    def list(self, user: str = "") -> list[Conversation]:
        with self.session() as s:
            rows = s.scalars(select(ConversationRow).where(ConversationRow.user == user)
                             .order_by(ConversationRow.updated_at.desc(), ConversationRow.created_at.desc()))
            return [_conv(r, s) for r in rows]

    def _row(self, s: Session, conv_id: str, user: str) -> ConversationRow:
        row = s.get(ConversationRow, conv_id) if conv_id else None
        if row is None or row.user != user:
            raise ConversationNotFound(conv_id)
        return row

    def get(self, conv_id: str, user: str = "") -> Conversation:
        with self.session() as s:
            return _conv(self._row(s, conv_id, user), s)

    def rename(self, conv_id: str, title: str, user: str = "") -> Conversation:
        title = title_from(title, 300)
        if not title:
            raise RagkbError("A conversation title cannot be empty.")
        with self.session() as s:
            row = self._row(s, conv_id, user)
            row.title = title
            return _conv(row, s)

    def set_kb(self, conv_id: str, kb_name: str | None, user: str = "") -> None:
        with self.session() as s:
            row = self._row(s, conv_id, user)
            row.kb_id, row.kb_name = (_kb_id(s, kb_name) if kb_name else None), kb_name

    def delete(self, conv_id: str, user: str = "") -> None:
        with self.session() as s:
            self._row(s, conv_id, user)
            s.execute(delete(MessageRow).where(MessageRow.conversation_id == conv_id))
            s.execute(delete(ConversationRow).where(ConversationRow.id == conv_id))

    def kb_deleted(self, kb_id: str) -> None:
        """Corrections belong to the knowledge base and go with it; conversations stay readable."""
        with self.session() as s:
            s.execute(delete(CorrectionRow).where(CorrectionRow.kb_id == kb_id))

    # -- messages ---------------------------------------------------------------------------
    def messages(self, conv_id: str, user: str = "") -> list[Message]:
        with self.session() as s:
            self._row(s, conv_id, user)
            rows = s.scalars(select(MessageRow).where(MessageRow.conversation_id == conv_id).order_by(MessageRow.seq))
            return [_msg(r) for r in rows]

    def add_message(self, conv_id: str, role: str, content: str, user: str = "",
                    sources: list[dict] | None = None, meta: dict | None = None) -> Message:
        with self.session() as s:
            conv = self._row(s, conv_id, user)
            last = s.scalar(select(MessageRow.seq).where(MessageRow.conversation_id == conv_id)
                            .order_by(MessageRow.seq.desc()).limit(1))
            row = MessageRow(conversation_id=conv_id, seq=(last or 0) + 1, role=role, content=content,
                             sources=json.dumps(sources or [], ensure_ascii=False),
                             meta=json.dumps(meta or {}, ensure_ascii=False))
            s.add(row)
            conv.updated_at = _now()
            if role == "user" and not conv.title:
                conv.title = title_from(content)
        return _msg(row)

    def _message_row(self, s: Session, msg_id: str, user: str) -> MessageRow:
        row = s.get(MessageRow, msg_id)
        if row is None:
            raise MessageNotFound(msg_id)
        self._row(s, row.conversation_id, user)  # ownership
        return row

    def question_for(self, msg_id: str, user: str = "") -> tuple[str, Message, str | None]:
        """The user question an assistant message answered, the message, and its conversation's knowledge base."""
        with self.session() as s:
            row = self._message_row(s, msg_id, user)
            kb_name = _current_name(s, s.get(ConversationRow, row.conversation_id).kb_id)
            q = s.scalar(select(MessageRow.content).where(
                MessageRow.conversation_id == row.conversation_id, MessageRow.role == "user",
                MessageRow.seq < row.seq).order_by(MessageRow.seq.desc()).limit(1))
            return q or "", _msg(row), kb_name

    def feedback(self, msg_id: str, rating: int | None, comment: str | None = None, user: str = "") -> None:
        if rating not in (1, -1, None):
            raise RagkbError("Feedback is +1 (helpful), -1 (not helpful) or none.")
        with self.session() as s:
            row = self._message_row(s, msg_id, user)
            if row.role != "assistant":
                raise RagkbError("Feedback applies to answers, not to questions.")
            row.rating = rating
            if comment is not None:
                row.comment = comment.strip() or None

    # -- corrections ------------------------------------------------------------------------
    def add_correction(self, kb_name: str, question: str, answer: str, user: str = "",
                       message_id: str | None = None, original_answer: str | None = None) -> str:
        question, answer = question.strip(), answer.strip()
        if not question or not answer:
            raise RagkbError("A correction needs the question and the corrected answer.")
        with self.session() as s:
            row = CorrectionRow(kb_id=_kb_id(s, kb_name), kb_name=kb_name, question=question, answer=answer,
                                user=user, message_id=message_id, original_answer=original_answer)
            s.add(row)
        return row.id

    def corrections(self, kb_name: str) -> list[CorrectionRow]:
        with self.session() as s:
            kb_id = _find_kb_id(s, kb_name)
            if kb_id is None:
                return []
            return list(s.scalars(select(CorrectionRow).where(CorrectionRow.kb_id == kb_id)
                                  .order_by(CorrectionRow.created_at)))

    def correction(self, correction_id: str) -> dict:
        with self.session() as s:
            row = s.get(CorrectionRow, correction_id)
            if row is None:
                raise RagkbError(f"No correction with id '{correction_id}'.")
            return {"id": row.id, "knowledge_base": _current_name(s, row.kb_id), "question": row.question,
                    "answer": row.answer, "message_id": row.message_id}

    def asked(self, kb_name: str, limit: int = 50) -> list[dict]:
        """The latest distinct questions asked of a knowledge base (every user's), each with the answer's sources
        and rating: `{"question", "sources", "rating"}`. A follow-up is given as the standalone question it was
        answered as. What `ragkb reindex` compares two indexes on."""
        out: dict[str, dict] = {}
        with self.session() as s:
            kb_id = _find_kb_id(s, kb_name)
            if kb_id is None:
                return []
            answers = s.scalars(select(MessageRow).join(ConversationRow, ConversationRow.id == MessageRow.conversation_id)
                                .where(ConversationRow.kb_id == kb_id, MessageRow.role == "assistant")
                                .order_by(MessageRow.created_at.desc()).limit(limit * 4))
            for msg in answers:
                meta = json.loads(msg.meta or "{}")
                question = (meta.get("standalone_question") or s.scalar(select(MessageRow.content).where(
                    MessageRow.conversation_id == msg.conversation_id, MessageRow.role == "user",
                    MessageRow.seq < msg.seq).order_by(MessageRow.seq.desc()).limit(1)) or "").strip()
                if question and question not in out:
                    out[question] = {"question": question, "sources": json.loads(msg.sources or "[]"),
                                     "rating": msg.rating}
                if len(out) >= limit:
                    break
        return list(out.values())

    def bad_cases(self, user: str | None = None) -> list[dict]:
        """Thumbs-down answers and corrections as evaluation records (one dict per JSONL line)."""
        out: list[dict] = []
        with self.session() as s:
            q = select(MessageRow, ConversationRow).join(ConversationRow, ConversationRow.id == MessageRow.conversation_id) \
                .where(MessageRow.role == "assistant", MessageRow.rating == -1)
            if user is not None:
                q = q.where(ConversationRow.user == user)
            for msg, conv in s.execute(q.order_by(MessageRow.created_at)).all():
                question = s.scalar(select(MessageRow.content).where(
                    MessageRow.conversation_id == msg.conversation_id, MessageRow.role == "user",
                    MessageRow.seq < msg.seq).order_by(MessageRow.seq.desc()).limit(1)) or ""
                out.append({"type": "thumbs_down", "kb": _current_name(s, conv.kb_id) or conv.kb_name, "question": question, "answer": msg.content,
                            "comment": msg.comment, "sources": json.loads(msg.sources or "[]"),
                            "message_id": msg.id, "created_at": msg.created_at.isoformat()})
            q = select(CorrectionRow)
            if user is not None:
                q = q.where(CorrectionRow.user == user)
            for c in s.scalars(q.order_by(CorrectionRow.created_at)):
                out.append({"type": "correction", "kb": _current_name(s, c.kb_id) or c.kb_name, "question": c.question,
                            "answer": c.original_answer, "expected_answer": c.answer,
                            "message_id": c.message_id, "created_at": c.created_at.isoformat()})
        return out
