"""The document registry: the source of truth for what each knowledge base holds.

SQLAlchemy over a SQLite file by default (any SQLAlchemy URL works, so a server database can take
its place). Chroma and the BM25 index are derived from it: a document is searchable only once its
row says `ready`, and every change to the set of ready documents bumps the knowledge base's
`generation`, which the BM25 index records as its stamp.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import (
    ForeignKey, Integer, String, Text, create_engine, delete, event, func, select, update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

# Document states. `ingesting` and `deleting` are transient: a row left in them by a dead
# process is cleaned up by recovery; only `ready` documents are searchable.
INGESTING, READY, DELETING, FAILED = "ingesting", "ready", "deleting", "failed"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_id() -> str:
    return uuid.uuid4().hex


def chunk_id(doc_id: str, idx: int) -> str:
    """A chunk's id in Chroma and in the BM25 index: its document's id and its position. Built and parsed
    only here (`doc_of`), so "which document holds this hit" has one answer."""
    return f"{doc_id}:{idx}"


def doc_of(chunk: str) -> str:
    """The document id inside a chunk id."""
    return chunk.split(":", 1)[0]


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Base(DeclarativeBase):
    pass


class KnowledgeBaseRow(Base):
    __tablename__ = "knowledge_bases"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    collection: Mapped[str] = mapped_column(String(128), unique=True)
    embedding_model: Mapped[str] = mapped_column(String(500))
    embedding_dim: Mapped[int | None] = mapped_column(Integer, nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)


class DocumentRow(Base):
    __tablename__ = "documents"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kb_id: Mapped[str] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(1000))
    source_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    file_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=INGESTING, index=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    warnings: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)


class ChunkRow(Base):
    """Chunk text and its BM25 tokens: lets the BM25 index and re-indexing be rebuilt without the files."""

    __tablename__ = "chunks"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    doc_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    kb_id: Mapped[str] = mapped_column(String(32), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[str] = mapped_column(Text)
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    section: Mapped[str | None] = mapped_column(Text, nullable=True)
    char_offset: Mapped[int] = mapped_column(Integer, default=0)


class DisabledChunkRow(Base):
    """A chunk the user switched off, keyed by its file name and text (not its id): the switch survives
    `reindex`, restarts and a re-ingest that produces the same chunk again."""

    __tablename__ = "disabled_chunks"
    kb_id: Mapped[str] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"), primary_key=True)
    filename: Mapped[str] = mapped_column(String(1000), primary_key=True)
    text_sha1: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class IndexBuildRow(Base):
    """A new dense index of a knowledge base being built beside the one that serves it (`ragkb reindex`): its model
    and Chroma collection, how far it got, and the comparison with the serving index once built. The knowledge base
    row changes only when the user switches; until then this row is all there is of the new index."""

    __tablename__ = "index_builds"
    kb_id: Mapped[str] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(500))
    collection: Mapped[str] = mapped_column(String(128), unique=True)
    dim: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="building")  # building | built | failed
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(300), nullable=True)  # host:pid of the building process
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    report: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: rag.reindex.Comparison
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)


def text_key(text: str) -> str:
    import hashlib

    return hashlib.sha1(" ".join(text.split()).encode("utf-8")).hexdigest()


class Registry:
    def __init__(self, url: str):
        self.url = url
        kwargs = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s:
            with s.begin():
                yield s

    def dispose(self) -> None:
        self.engine.dispose()

    # -- knowledge bases --------------------------------------------------------------------
    def list_kbs(self) -> list[KnowledgeBaseRow]:
        with self.session() as s:
            return list(s.scalars(select(KnowledgeBaseRow).order_by(KnowledgeBaseRow.created_at)))

    def get_kb(self, name: str) -> KnowledgeBaseRow | None:
        with self.session() as s:
            return s.scalar(select(KnowledgeBaseRow).where(KnowledgeBaseRow.name == name))

    def get_kb_by_id(self, kb_id: str) -> KnowledgeBaseRow | None:
        with self.session() as s:
            return s.get(KnowledgeBaseRow, kb_id)

    def add_kb(self, name: str, collection: str, embedding_model: str, embedding_dim: int | None) -> KnowledgeBaseRow:
        with self.session() as s:
            row = KnowledgeBaseRow(name=name, collection=collection, embedding_model=embedding_model,
                                   embedding_dim=embedding_dim)
            s.add(row)
        return row

    def update_kb(self, kb_id: str, **values) -> None:
        with self.session() as s:
            s.execute(update(KnowledgeBaseRow).where(KnowledgeBaseRow.id == kb_id).values(**values))

    def delete_kb(self, kb_id: str) -> None:
        with self.session() as s:
            s.execute(delete(IndexBuildRow).where(IndexBuildRow.kb_id == kb_id))
            s.execute(delete(ChunkRow).where(ChunkRow.kb_id == kb_id))
            s.execute(delete(DisabledChunkRow).where(DisabledChunkRow.kb_id == kb_id))
            s.execute(delete(DocumentRow).where(DocumentRow.kb_id == kb_id))
            s.execute(delete(KnowledgeBaseRow).where(KnowledgeBaseRow.id == kb_id))

    def generation(self, kb_id: str) -> int:
        with self.session() as s:
            return s.scalar(select(KnowledgeBaseRow.generation).where(KnowledgeBaseRow.id == kb_id)) or 0

    # -- index builds (rag.reindex) ---------------------------------------------------------
    def index_build(self, kb_id: str) -> IndexBuildRow | None:
        with self.session() as s:
            return s.get(IndexBuildRow, kb_id)

    def index_builds(self) -> list[IndexBuildRow]:
        with self.session() as s:
            return list(s.scalars(select(IndexBuildRow)))

    def put_index_build(self, kb_id: str, **values) -> IndexBuildRow:
        """Create the knowledge base's build row or update it."""
        with self.session() as s:
            row = s.get(IndexBuildRow, kb_id)
            if row is None:
                row = IndexBuildRow(kb_id=kb_id, **values)
                s.add(row)
            else:
                for key, value in values.items():
                    setattr(row, key, value)
        return row

    def delete_index_build(self, kb_id: str) -> None:
        with self.session() as s:
            s.execute(delete(IndexBuildRow).where(IndexBuildRow.kb_id == kb_id))

    def switch_index(self, kb_id: str, collection: str, model: str, dim: int | None) -> None:
        """In one transaction: the knowledge base is served by the built index, and the build row is gone."""
        with self.session() as s:
            s.execute(update(KnowledgeBaseRow).where(KnowledgeBaseRow.id == kb_id).values(
                collection=collection, embedding_model=model, embedding_dim=dim))
            s.execute(delete(IndexBuildRow).where(IndexBuildRow.kb_id == kb_id))

    # -- documents --------------------------------------------------------------------------
    def documents(self, kb_id: str, statuses: Iterable[str] | None = None) -> list[DocumentRow]:
        with self.session() as s:
            q = select(DocumentRow).where(DocumentRow.kb_id == kb_id)
            if statuses is not None:
                q = q.where(DocumentRow.status.in_(list(statuses)))
            return list(s.scalars(q.order_by(DocumentRow.created_at, DocumentRow.filename)))

    def ready_doc_names(self, kb_id: str) -> dict[str, str]:
        """{document id: file name} of the searchable documents."""
        with self.session() as s:
            return dict(s.execute(select(DocumentRow.id, DocumentRow.filename).where(
                DocumentRow.kb_id == kb_id, DocumentRow.status == READY)).all())

    def ready_doc_ids(self, kb_id: str) -> set[str]:
        with self.session() as s:
            return set(s.scalars(select(DocumentRow.id).where(
                DocumentRow.kb_id == kb_id, DocumentRow.status == READY)))

    def find_ready_by_sha(self, kb_id: str, sha256: str) -> DocumentRow | None:
        with self.session() as s:
            return s.scalar(select(DocumentRow).where(
                DocumentRow.kb_id == kb_id, DocumentRow.sha256 == sha256, DocumentRow.status == READY))

    def add_document(self, **values) -> DocumentRow:
        with self.session() as s:
            row = DocumentRow(owner=process_owner(), **values)
            s.add(row)
        return row

    def add_chunks(self, rows: list[dict]) -> None:
        if rows:
            with self.session() as s:
                s.execute(ChunkRow.__table__.insert(), rows)

    def set_status(self, doc_id: str, status: str, **values) -> None:
        with self.session() as s:
            s.execute(update(DocumentRow).where(DocumentRow.id == doc_id).values(status=status, **values))

    def previous_versions(self, kb_id: str, filename: str, source_path: str | None, s: Session | None = None) -> list[str]:
        """Ready documents a new version of this file replaces: same name, or same file on disk."""
        same = DocumentRow.filename == filename
        if source_path:
            same = same | (DocumentRow.source_path == source_path)
        q = select(DocumentRow.id).where(DocumentRow.kb_id == kb_id, same, DocumentRow.status == READY)
        if s is not None:
            return list(s.scalars(q))
        with self.session() as s2:
            return list(s2.scalars(q))

    def publish_document(self, kb_id: str, doc_id: str, filename: str, source_path: str | None = None) -> list[str]:
        """Atomically make `doc_id` ready and retire older versions and failed attempts of the same file.

        Returns the ids of retired documents whose chunks must now be purged.
        """
        with self.session() as s:
            old = [i for i in self.previous_versions(kb_id, filename, source_path, s) if i != doc_id]
            s.execute(delete(DocumentRow).where(
                DocumentRow.kb_id == kb_id, DocumentRow.filename == filename, DocumentRow.status == FAILED))
            if old:
                s.execute(update(DocumentRow).where(DocumentRow.id.in_(old)).values(status=DELETING))
            s.execute(update(DocumentRow).where(DocumentRow.id == doc_id).values(status=READY, owner=None))
            s.execute(update(KnowledgeBaseRow).where(KnowledgeBaseRow.id == kb_id).values(
                generation=KnowledgeBaseRow.generation + 1))
        return old

    def record_failure(self, kb_id: str, filename: str, source_path: str, error: str, **values) -> None:
        """Remember a failed file (replacing an earlier failure of the same name) so listings show it."""
        with self.session() as s:
            s.execute(delete(DocumentRow).where(
                DocumentRow.kb_id == kb_id, DocumentRow.filename == filename, DocumentRow.status == FAILED))
            s.add(DocumentRow(kb_id=kb_id, filename=filename, source_path=source_path, status=FAILED,
                              error=error, chunks=0, **values))

    def retire_documents(self, kb_id: str, doc_ids: list[str]) -> None:
        """Mark documents as being deleted (no longer searchable) and bump the generation."""
        with self.session() as s:
            s.execute(update(DocumentRow).where(DocumentRow.id.in_(doc_ids)).values(status=DELETING))
            s.execute(update(KnowledgeBaseRow).where(KnowledgeBaseRow.id == kb_id).values(
                generation=KnowledgeBaseRow.generation + 1))

    def forget_document(self, doc_id: str) -> None:
        with self.session() as s:
            s.execute(delete(ChunkRow).where(ChunkRow.doc_id == doc_id))
            s.execute(delete(DocumentRow).where(DocumentRow.id == doc_id))

    def delete_failed(self, doc_id: str) -> None:
        with self.session() as s:
            s.execute(delete(DocumentRow).where(DocumentRow.id == doc_id, DocumentRow.status == FAILED))

    # -- chunks -----------------------------------------------------------------------------
    def ready_chunk_tokens(self, kb_id: str) -> tuple[list[str], list[list[str]]]:
        with self.session() as s:
            rows = s.execute(
                select(ChunkRow.id, ChunkRow.tokens).join(DocumentRow, DocumentRow.id == ChunkRow.doc_id)
                .where(ChunkRow.kb_id == kb_id, DocumentRow.status == READY)
                .order_by(ChunkRow.doc_id, ChunkRow.idx)
            ).all()
        return [r[0] for r in rows], [r[1].split(" ") if r[1] else [] for r in rows]

    def chunk_rows(self, kb_id: str, doc_ids: Iterable[str] | None = None) -> list[ChunkRow]:
        with self.session() as s:
            q = select(ChunkRow).where(ChunkRow.kb_id == kb_id)
            if doc_ids is not None:
                q = q.where(ChunkRow.doc_id.in_(list(doc_ids)))
            return list(s.scalars(q.order_by(ChunkRow.doc_id, ChunkRow.idx)))

    def document_shas(self) -> set[str]:
        """Content hashes of every document not failed, in every knowledge base (originals still needed)."""
        with self.session() as s:
            return {x for x in s.scalars(select(DocumentRow.sha256).where(DocumentRow.status != FAILED).distinct()) if x}

    def chunk_samples(self, kb_id: str, per_doc: int = 3) -> list[ChunkRow]:
        """The first chunks of every document (what a document's language is judged on)."""
        with self.session() as s:
            return list(s.scalars(select(ChunkRow).where(ChunkRow.kb_id == kb_id, ChunkRow.idx < per_doc)))

    def chunk_ids(self, doc_ids: Iterable[str]) -> set[str]:
        with self.session() as s:
            return set(s.scalars(select(ChunkRow.id).where(ChunkRow.doc_id.in_(list(doc_ids)))))

    def chunks_by_ids(self, ids: list[str]) -> dict[str, ChunkRow]:
        if not ids:
            return {}
        with self.session() as s:
            return {r.id: r for r in s.scalars(select(ChunkRow).where(ChunkRow.id.in_(ids)))}

    def disabled_keys(self, kb_id: str) -> set[tuple[str, str]]:
        """(filename, text_key) of the chunks switched off in this knowledge base."""
        with self.session() as s:
            return {(r.filename, r.text_sha1) for r in
                    s.scalars(select(DisabledChunkRow).where(DisabledChunkRow.kb_id == kb_id))}

    def set_chunk_disabled(self, kb_id: str, filename: str, key: str, disabled: bool) -> None:
        with self.session() as s:
            row = s.get(DisabledChunkRow, (kb_id, filename, key))
            if disabled and row is None:
                s.add(DisabledChunkRow(kb_id=kb_id, filename=filename, text_sha1=key))
            elif not disabled and row is not None:
                s.delete(row)

    def forget_disabled(self, kb_id: str, filename: str) -> None:
        """A deleted document's switches go with it."""
        with self.session() as s:
            s.execute(delete(DisabledChunkRow).where(DisabledChunkRow.kb_id == kb_id,
                                                     DisabledChunkRow.filename == filename))

    def count_chunks(self, kb_id: str) -> int:
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(ChunkRow).where(ChunkRow.kb_id == kb_id)) or 0


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
