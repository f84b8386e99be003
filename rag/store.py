"""The knowledge-base store: registry + Chroma collections + BM25 indexes, kept consistent.

Write protocol (what makes crashes and errors safe):
1. a new document row is created as `ingesting` before anything else is written;
2. its chunks go to Chroma (ids `<doc_id>:<n>`) and to the registry's chunk table, batch by batch;
3. one registry transaction makes it `ready` and marks the older version `deleting`;
4. the old version's chunks are purged, the BM25 index is rebuilt and stamped with the generation.
Searches only return chunks of `ready` documents, so a half-written new version is never seen and
the old version stays searchable until step 3. Recovery purges whatever a dead process left in
`ingesting`/`deleting` and rebuilds a BM25 index whose stamp is stale.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import threading
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rag.errors import (
    ChunkNotFound, DocumentNotFound, EmbeddingMismatch, InvalidName, KnowledgeBaseExists, KnowledgeBaseNotFound, RagkbError,
    VectorStoreUnavailable,
)
from rag.lexical import BM25Index
from rag.registry import (
    DELETING, FAILED, INGESTING, READY, ChunkRow, DocumentRow, KnowledgeBaseRow, Registry, new_id, text_key,
)
from rag.settings import Settings, apply_offline_env

log = logging.getLogger(__name__)

COLLECTION_PREFIX = "ragkb-"
_STALE_WRITER = timedelta(hours=1)


def _is_connection_error(exc: BaseException) -> bool:
    import httpx

    seen = exc
    while seen is not None:
        if isinstance(seen, (httpx.TransportError, ConnectionError, TimeoutError)):
            return True
        if "Could not connect" in str(seen) or "Connection refused" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def collection_name_for(display_name: str) -> str:
    """A valid Chroma collection name (3-512 chars of [A-Za-z0-9._-], alphanumeric ends) for any name.

    The readable ASCII part only helps someone browsing Chroma; uniqueness comes from the random suffix,
    and the display name lives in the registry (so renaming never touches Chroma).
    """
    ascii_part = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_part).strip("-").lower()[:40]
    return f"{COLLECTION_PREFIX}{slug + '-' if slug else ''}{new_id()[:12]}"


def validate_kb_name(name: str) -> str:
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise InvalidName("A knowledge base name cannot be empty.")
    if len(name) > 200:
        raise InvalidName(f"Knowledge base names are at most 200 characters (got {len(name)}).")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise InvalidName("A knowledge base name cannot contain control characters.")
    return name


@dataclass
class KnowledgeBase:
    """A knowledge base as the faces see it."""

    id: str
    name: str
    collection: str
    embedding_model: str
    embedding_dim: int | None
    documents: int
    chunks: int
    created_at: datetime


class KnowledgeBaseStore:
    """Everything that reads or writes knowledge bases goes through one of these per process."""

    def __init__(self, settings: Settings | None = None):
        apply_offline_env()
        self.settings = settings or Settings()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.registry = Registry(self.settings.registry_url)
        self._client = None
        self._lock = threading.RLock()
        self._bm25: dict[str, BM25Index] = {}
        self._collections: dict[str, object] = {}
        self._ready: dict[str, tuple[int, dict[str, str]]] = {}

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def client(self):
        with self._lock:
            if self._client is None:
                import chromadb
                from chromadb.config import Settings as ChromaSettings

                chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
                if self.settings.chroma_url:
                    from urllib.parse import urlparse

                    url = urlparse(self.settings.chroma_url)
                    with self.vector_errors():
                        self._client = chromadb.HttpClient(
                            host=url.hostname or "127.0.0.1", port=url.port or (443 if url.scheme == "https" else 8000),
                            ssl=url.scheme == "https", settings=chroma_settings)
                else:
                    self._client = chromadb.PersistentClient(path=str(self.settings.chroma_dir),
                                                             settings=chroma_settings)
            return self._client

    @contextmanager
    def vector_errors(self):
        """Turn a failing Chroma server into one clear, actionable error (embedded Chroma errors pass)."""
        if not self.settings.chroma_url:
            yield
            return
        try:
            yield
        except RagkbError:
            raise
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            if _is_connection_error(exc):
                raise VectorStoreUnavailable(
                    f"Cannot reach the Chroma server at {self.settings.chroma_url} ({text}). Check that it is running "
                    "(chroma run --path DIR --host HOST --port PORT) or unset RAGKB_CHROMA_URL to use embedded "
                    "Chroma.") from exc
            raise

    def embeddings(self, kb: KnowledgeBaseRow | None = None, model: str | None = None):
        """The embedding model of a knowledge base (the one it was built with), of `model`, or the configured one."""
        from rag.embeddings import get_embeddings

        return get_embeddings(self.settings, model or (kb.embedding_model if kb is not None else None))

    def collection(self, kb: KnowledgeBaseRow | str):
        """The Chroma collection serving a knowledge base, or the collection of that name (a new index being built)."""
        # Vectors are always computed by ragkb and passed explicitly; no embedding function is
        # attached, so Chroma never tries to fetch its default model.
        name = kb if isinstance(kb, str) else kb.collection
        col = self._collections.get(name)
        if col is None:
            with self.vector_errors():
                col = self.client.get_or_create_collection(
                    name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
            self._collections[name] = col
        return col

    def close(self) -> None:
        self.registry.dispose()

    # -- knowledge bases --------------------------------------------------------------------
    def list(self) -> list[KnowledgeBase]:
        out = []
        for row in self.registry.list_kbs():
            docs = self.registry.documents(row.id, statuses=[READY])
            out.append(self._view(row, docs))
        return out

    def _view(self, row: KnowledgeBaseRow, docs: list[DocumentRow]) -> KnowledgeBase:
        return KnowledgeBase(row.id, row.name, row.collection, row.embedding_model, row.embedding_dim,
                             len(docs), sum(d.chunks for d in docs), row.created_at)

    def get_row(self, name: str) -> KnowledgeBaseRow:
        try:
            valid = validate_kb_name(name)
        except InvalidName:  # no knowledge base can have such a name
            raise KnowledgeBaseNotFound(name) from None
        row = self.registry.get_kb(valid)
        if row is None:
            raise KnowledgeBaseNotFound(name)
        return row

    def get(self, name: str) -> KnowledgeBase:
        row = self.get_row(name)
        return self._view(row, self.registry.documents(row.id, statuses=[READY]))

    def exists(self, name: str) -> bool:
        return self.registry.get_kb(validate_kb_name(name)) is not None

    def create(self, name: str) -> KnowledgeBase:
        name = validate_kb_name(name)
        if self.registry.get_kb(name) is not None:
            raise KnowledgeBaseExists(name)
        from sqlalchemy.exc import IntegrityError

        try:
            row = self.registry.add_kb(name, collection_name_for(name), self.settings.embedding_model, None)
        except IntegrityError as exc:  # created concurrently by another process
            raise KnowledgeBaseExists(name) from exc
        return self._view(row, [])

    def get_or_create_row(self, name: str) -> tuple[KnowledgeBaseRow, bool]:
        try:
            return self.get_row(name), False
        except KnowledgeBaseNotFound:
            try:
                self.create(name)
            except KnowledgeBaseExists:
                pass
            return self.get_row(name), True

    def rename(self, old: str, new: str) -> KnowledgeBase:
        row = self.get_row(old)
        new = validate_kb_name(new)
        if new == row.name:
            return self.get(new)
        if self.registry.get_kb(new) is not None:
            raise KnowledgeBaseExists(new)
        self.registry.update_kb(row.id, name=new)
        return self.get(new)

    def delete(self, name: str) -> None:
        """Remove the registry rows first (the truth), then the vectors and the BM25 index."""
        row = self.get_row(name)
        build = self.registry.index_build(row.id)
        self.registry.delete_kb(row.id)
        self.drop_collection(row.collection)
        if build is not None:  # a new index being built beside it goes too
            self.drop_collection(build.collection)
        self._bm25.pop(row.id, None)
        shutil.rmtree(self._bm25_dir(row.id), ignore_errors=True)
        self.collect_originals()

    def drop_collection(self, collection: str) -> None:
        self._collections.pop(collection, None)
        try:
            self.client.delete_collection(collection)
        except Exception:  # already gone
            pass

    # -- embedding model guard --------------------------------------------------------------
    def check_embedding_model(self, kb: KnowledgeBaseRow) -> None:
        """A knowledge base is embedded and searched with its own model; record the model's dimension the first time
        and refuse vectors of another (the files behind the model's name were replaced)."""
        from rag.embeddings import embedding_dimension

        dim = embedding_dimension(self.embeddings(kb))
        if kb.embedding_dim is None:
            self.registry.update_kb(kb.id, embedding_dim=dim)
            kb.embedding_dim = dim
        elif kb.embedding_dim != dim:
            raise EmbeddingMismatch(kb.name, kb.embedding_model, kb.embedding_dim, dim)

    # -- documents --------------------------------------------------------------------------
    def documents(self, name: str, include_failed: bool = True) -> list[DocumentRow]:
        row = self.get_row(name)
        statuses = [READY, FAILED] if include_failed else [READY]
        return self.registry.documents(row.id, statuses=statuses)

    def find_document(self, kb: KnowledgeBaseRow, ref: str) -> DocumentRow:
        """A document by id, id prefix (>= 6 chars) or file name."""
        docs = self.registry.documents(kb.id, statuses=[READY, FAILED])
        exact = [d for d in docs if d.id == ref or d.filename == ref]
        if not exact and len(ref) >= 6:
            exact = [d for d in docs if d.id.startswith(ref)]
        if not exact:
            exact = [d for d in docs if Path(d.filename).name == ref]
        if len(exact) != 1:
            if len(exact) > 1:
                names = ", ".join(f"{d.filename} ({d.id[:8]})" for d in exact)
                raise DocumentNotFound(kb.name, f"{ref}' is ambiguous: {names}; use the id. '")
            raise DocumentNotFound(kb.name, ref)
        return exact[0]

    def delete_document(self, name: str, ref: str) -> DocumentRow:
        kb = self.get_row(name)
        doc = self.find_document(kb, ref)
        if doc.status == FAILED:
            self.registry.delete_failed(doc.id)
            return doc
        self.registry.retire_documents(kb.id, [doc.id])
        self.purge_documents(kb, [doc.id])
        self.refresh_bm25(kb)
        if doc.filename not in self.ready_documents(kb).values():  # no other version left under that name
            self.registry.forget_disabled(kb.id, doc.filename)
        self.collect_originals()
        return doc

    def document_languages(self, name: str) -> dict[str, str]:
        """{doc id: "zh" | "en" | "zh+en"} judged on each document's first chunks."""
        from rag.text import SOME_CHINESE, cjk_ratio

        texts: dict[str, list[str]] = {}
        for r in self.registry.chunk_samples(self.get_row(name).id):
            texts.setdefault(r.doc_id, []).append(r.text)
        out = {}
        for doc_id, parts in texts.items():
            ratio = cjk_ratio(" ".join(parts))
            out[doc_id] = "zh" if ratio >= 0.6 else ("en" if ratio <= SOME_CHINESE else "zh+en")
        return out

    # -- uploaded originals (for the source preview) ---------------------------------------
    def _originals(self) -> Path:
        return self.settings.data_dir / "originals"

    def keep_original(self, src: Path, sha: str, suffix: str) -> None:
        """Keep the file's bytes, content-addressed (one copy whatever the names and knowledge bases)."""
        dst = self._originals() / sha[:2] / f"{sha}{suffix.lower()}"
        if dst.exists():
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)  # never a half-written original

    def original_of(self, doc: DocumentRow) -> Path | None:
        if not doc.sha256:
            return None
        path = self._originals() / doc.sha256[:2] / f"{doc.sha256}{Path(doc.filename).suffix.lower()}"
        return path if path.exists() else None

    def collect_originals(self) -> int:
        """Delete kept originals that no document refers to any more (deleted, replaced, failed midway)."""
        root = self._originals()
        if not root.exists():
            return 0
        needed = self.registry.document_shas()
        removed = 0
        for f in root.glob("*/*"):
            if f.name.startswith("."):
                continue
            if f.name.split(".", 1)[0] not in needed:
                f.unlink(missing_ok=True)
                removed += 1
        return removed

    # -- chunks switched off by the user ----------------------------------------------------
    def disabled_chunk_ids(self, kb: KnowledgeBaseRow, names: dict[str, str] | None = None) -> set[str]:
        """Ids of the ready chunks the user switched off (excluded from both search legs and from answers).
        `names`: doc id -> file name of the ready documents, when the caller has it."""
        keys = self.registry.disabled_keys(kb.id)
        if not keys:
            return set()
        names = names if names is not None else self.ready_documents(kb)
        files = {f for f, _ in keys}
        docs = [d for d, n in names.items() if n in files]
        return {r.id for r in self.registry.chunk_rows(kb.id, docs) if (names[r.doc_id], text_key(r.text)) in keys}

    def document_chunks(self, name: str, ref: str) -> tuple[DocumentRow, list[tuple[ChunkRow, bool]]]:
        """A document's chunks in order, each with whether it is enabled."""
        kb = self.get_row(name)
        doc = self.find_document(kb, ref)
        keys = self.registry.disabled_keys(kb.id)
        return doc, [(r, (doc.filename, text_key(r.text)) not in keys) for r in self.registry.chunk_rows(kb.id, [doc.id])]

    def chunk_texts(self, ids: list[str]) -> dict[str, str]:
        """The text of each of these chunks, by id."""
        return {cid: r.text for cid, r in self.registry.chunks_by_ids(ids).items()}

    def set_chunk_enabled(self, name: str, chunk_id: str, enabled: bool) -> tuple[ChunkRow, str]:
        """Switch a chunk on or off; returns it and its file name."""
        kb = self.get_row(name)
        row = self.registry.chunks_by_ids([chunk_id]).get(chunk_id)
        filename = self.ready_documents(kb).get(row.doc_id) if row is not None and row.kb_id == kb.id else None
        if filename is None:
            raise ChunkNotFound(chunk_id, kb.name)
        self.registry.set_chunk_disabled(kb.id, filename, text_key(row.text), not enabled)
        return row, filename

    def begin_document(self, kb: KnowledgeBaseRow, **values) -> DocumentRow:
        return self.registry.add_document(kb_id=kb.id, status=INGESTING, **values)

    def add_chunks(self, kb: KnowledgeBaseRow, chunks: list[dict], vectors: list[list[float]]) -> None:
        """Write a batch of chunks (of one or several `ingesting` documents) to Chroma and the registry.

        Each chunk dict has id, doc_id, idx, text, tokens, filename, page, section, char_offset.
        """
        if not chunks:
            return
        ids = [c["id"] for c in chunks]
        metadatas = [chunk_metadata(kb.id, c["doc_id"], c["filename"], c["idx"], c["char_offset"],
                                     c.get("page"), c.get("section")) for c in chunks]
        with self.vector_errors():
            self.collection(kb).upsert(ids=ids, embeddings=vectors, documents=[c["text"] for c in chunks],
                                       metadatas=metadatas)
        self.registry.add_chunks([
            {"id": c["id"], "doc_id": c["doc_id"], "kb_id": kb.id, "idx": c["idx"], "text": c["text"],
             "tokens": " ".join(c["tokens"]), "page": c.get("page"), "section": c.get("section"),
             "char_offset": c["char_offset"]}
            for c in chunks
        ])

    def publish_document(self, kb: KnowledgeBaseRow, doc: DocumentRow, **values) -> list[str]:
        """Make a fully written document searchable; purge the version it replaces."""
        if values:
            self.registry.set_status(doc.id, INGESTING, **values)
        old = self.registry.publish_document(kb.id, doc.id, doc.filename, doc.source_path)
        if old:
            self.purge_documents(kb, old)
        return old

    def abort_document(self, kb: KnowledgeBaseRow, doc_id: str) -> None:
        """Undo a document that failed half-way: nothing of it stays in Chroma or the registry.
        When Chroma cannot be reached, the document is left `deleting` (never searchable) and the
        next recovery purges it."""
        try:
            self.purge_documents(kb, [doc_id])
        except VectorStoreUnavailable:
            self.registry.set_status(doc_id, DELETING, owner=None)
            log.warning("could not purge %s now (Chroma server unreachable); recovery will", doc_id)

    def purge_documents(self, kb: KnowledgeBaseRow, doc_ids: list[str]) -> None:
        col = self.collection(kb)
        for doc_id in doc_ids:
            with self.vector_errors():
                col.delete(where={"doc_id": doc_id})
            self.registry.forget_document(doc_id)

    def ready_documents(self, kb: KnowledgeBaseRow) -> dict[str, str]:
        """{doc id: file name} of searchable documents, re-read only when the generation moved
        (every change of the ready set bumps it), so a search costs one small query for this."""
        gen = self.registry.generation(kb.id)
        cached = self._ready.get(kb.id)
        if cached is None or cached[0] != gen:
            cached = (gen, self.registry.ready_doc_names(kb.id))
            self._ready[kb.id] = cached
        return cached[1]

    # -- BM25 -------------------------------------------------------------------------------
    def _bm25_dir(self, kb_id: str) -> Path:
        return self.settings.bm25_dir / kb_id

    def refresh_bm25(self, kb: KnowledgeBaseRow) -> BM25Index:
        """Rebuild the knowledge base's BM25 index from the registry's ready chunks."""
        stamp = str(self.registry.generation(kb.id))
        ids, tokens = self.registry.ready_chunk_tokens(kb.id)
        index = BM25Index.build(self._bm25_dir(kb.id), ids, tokens, stamp,
                                k1=self.settings.bm25_k1, b=self.settings.bm25_b)
        self._bm25[kb.id] = index
        return index

    def bm25(self, kb: KnowledgeBaseRow) -> BM25Index:
        """The persisted index; rebuilt only when it is missing or stale and no writer is active."""
        gen = str(self.registry.generation(kb.id))
        index = self._bm25.get(kb.id)
        if index is None or index.stamp != gen:
            index = BM25Index.load(self._bm25_dir(kb.id)) or index
        if index is None or (index.stamp != gen and not self._live_writers(kb)):
            index = self.refresh_bm25(kb)
        self._bm25[kb.id] = index
        return index

    # -- recovery ---------------------------------------------------------------------------
    def _live_writers(self, kb: KnowledgeBaseRow) -> bool:
        return self.live_ingest(kb) is not None

    def recover(self, kb: KnowledgeBaseRow) -> int:
        """Finish what a dead process left: purge its half-written or half-deleted documents.

        Returns the number of documents cleaned up. Safe to run while another live process writes.
        """
        leftovers = [d for d in self.registry.documents(kb.id, statuses=[INGESTING, DELETING])
                     if d.status == DELETING or owner_is_dead(d)]
        if leftovers:
            log.info("recovering %d interrupted document(s) in %s", len(leftovers), kb.name)
            self.purge_documents(kb, [d.id for d in leftovers])
        index = BM25Index.load(self._bm25_dir(kb.id))
        if leftovers or index is None or index.stamp != str(self.registry.generation(kb.id)):
            self.refresh_bm25(kb)
        return len(leftovers)

    def verify(self, name: str) -> dict:
        """Compare the registry, Chroma and the BM25 index of a knowledge base (used by tests and `ragkb kb check`)."""
        kb = self.get_row(name)
        ready = self.registry.ready_doc_ids(kb.id)
        registry_chunks = {c.id for c in self.registry.chunk_rows(kb.id, ready)}
        chroma = set(self.collection(kb).get(include=[])["ids"])
        index = BM25Index.load(self._bm25_dir(kb.id))
        bm25_ids = set(index.ids) if index else set()
        return {
            "ready_documents": len(ready),
            "registry_chunks": len(registry_chunks),
            "chroma_chunks": len(chroma),
            "bm25_chunks": len(bm25_ids),
            "chroma_orphans": sorted(chroma - registry_chunks)[:20],
            "chroma_missing": sorted(registry_chunks - chroma)[:20],
            "bm25_stale": index is None or index.stamp != str(self.registry.generation(kb.id))
                          or bm25_ids != registry_chunks,
            "transient_documents": len(self.registry.documents(kb.id, statuses=[INGESTING, DELETING])),
            "consistent": chroma == registry_chunks and bm25_ids == registry_chunks and index is not None
                          and index.stamp == str(self.registry.generation(kb.id)),
        }

    def live_ingest(self, kb: KnowledgeBaseRow) -> DocumentRow | None:
        """A document a live process is ingesting into the knowledge base right now, if any."""
        return next((d for d in self.registry.documents(kb.id, statuses=[INGESTING]) if not owner_is_dead(d)), None)


def chunk_metadata(kb_id: str, doc_id: str, filename: str, idx: int, char_offset: int,
                    page: int | None, section: str | None) -> dict:
    """Chroma metadata of a chunk (Chroma rejects None values, so absent fields are left out)."""
    meta = {"kb_id": kb_id, "doc_id": doc_id, "filename": filename, "chunk_index": idx, "char_offset": char_offset}
    if page is not None:
        meta["page"] = page
    if section:
        meta["section"] = section
    return meta


def owner_is_dead(doc) -> bool:  # noqa: ANN001 - a DocumentRow or an IndexBuildRow
    """True when the process that was writing `doc` is gone (same host) or silent for too long."""
    owner = doc.owner or ""
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return _is_zombie(int(pid))
    updated = doc.updated_at or doc.created_at
    return datetime.now(timezone.utc).replace(tzinfo=None) - updated > _STALE_WRITER


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False
