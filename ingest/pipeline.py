"""The ingest service: files and folders in, searchable chunks out, one file at a time.

Every face (CLI, web UI, API) calls `ingest_paths` / `ingest_files`. A bad file never stops the
batch: it gets a FileResult with the reason. A file is either fully in the knowledge base or not at
all (see rag.store for the write protocol); re-ingesting identical content is a no-op, and a changed
file with the same name replaces its old version.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.chunking import Chunk, chunk_segments
from ingest.loaders import SUPPORTED_SUFFIXES, IngestError, LoadedDocument, file_type, load
from rag.lexical import tokenize
from rag.registry import DocumentRow, chunk_id
from rag.store import KnowledgeBaseStore

log = logging.getLogger(__name__)

INGESTED, REPLACED, SKIPPED, FAILED = "ingested", "replaced", "skipped", "failed"


@dataclass
class FileResult:
    path: str
    name: str
    status: str
    reason: str | None = None
    pages: int | None = None
    chunks: int = 0
    warnings: list[str] = field(default_factory=list)
    doc_id: str | None = None
    ocr_pages: int = 0  # pages read by OCR

    @property
    def ok(self) -> bool:
        return self.status != FAILED


@dataclass
class IngestSummary:
    kb: str
    created_kb: bool
    results: list[FileResult]

    def by_status(self, *statuses: str) -> list[FileResult]:
        return [r for r in self.results if r.status in statuses]

    @property
    def ingested(self) -> list[FileResult]:
        return self.by_status(INGESTED, REPLACED)

    @property
    def skipped(self) -> list[FileResult]:
        return self.by_status(SKIPPED)

    @property
    def failed(self) -> list[FileResult]:
        return self.by_status(FAILED)


@dataclass
class Progress:
    """One progress report: which file (of how many) and how many of its chunks are embedded."""

    stage: str  # "file" (starting a file), "ocr" (pages read by OCR), "chunks" (embedding), "done", "index"
    file_index: int
    file_total: int
    name: str = ""
    done: int = 0
    total: int = 0
    result: FileResult | None = None


ProgressFn = Callable[[Progress], None]


def unsupported_type(name: str) -> str | None:
    """Why a file of this name cannot be ingested (its type), or None."""
    if file_type(Path(name)) is not None:
        return None
    suffix = Path(name).suffix
    return f"unsupported file type '{suffix or '(none)'}' (supported: {', '.join(SUPPORTED_SUFFIXES)})"


def too_large(size: int, max_mb: float) -> str | None:
    """Why a file of `size` bytes is refused (RAGKB_MAX_FILE_MB), or None."""
    if size > max_mb * 1024 * 1024:
        return f"file is {size / 1048576:.1f} MB, over the {max_mb:g} MB limit (raise RAGKB_MAX_FILE_MB to allow it)"
    return None


def discover(paths: Iterable[str | Path]) -> tuple[list[tuple[Path, str]], list[FileResult]]:
    """Expand files and folders into (path, display name) pairs; report what cannot be ingested."""
    files: list[tuple[Path, str]] = []
    rejected: list[FileResult] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if any(part.startswith(".") for part in rel.parts) or not (f.is_file() or f.is_symlink()):
                    continue  # hidden files and folders (.git, .DS_Store) are not documents
                name = (Path(p.resolve().name) / rel).as_posix()
                if (why := unsupported_type(f.name)) is not None:
                    rejected.append(FileResult(str(f), name, SKIPPED, why))
                else:
                    files.append((f, name))
        elif p.exists() or p.is_symlink():
            if (why := unsupported_type(p.name)) is not None:
                rejected.append(FileResult(str(p), p.name, SKIPPED, why))
            else:
                files.append((p, p.name))
        else:
            rejected.append(FileResult(str(p), p.name, FAILED, "cannot read: no such file or directory"))
    return files, rejected


def ingest_paths(store: KnowledgeBaseStore, kb_name: str, paths: Iterable[str | Path],
                 progress: ProgressFn | None = None) -> IngestSummary:
    files, rejected = discover(paths)
    for r in rejected:  # reported first, so every face shows them like any other result
        if progress:
            progress(Progress("done", 0, len(files), r.name, result=r))
    summary = ingest_files(store, kb_name, files, progress=progress)
    summary.results = rejected + summary.results
    return summary


def ingest_files(store: KnowledgeBaseStore, kb_name: str, files: list[tuple[Path, str]],
                 progress: ProgressFn | None = None, uploaded: bool = False) -> IngestSummary:
    """Ingest (path, display name) pairs. The display name identifies the document for replacement
    and its suffix picks the loader. `uploaded`: the paths are temporary copies of uploads, so they
    are not remembered as the documents' source files.

    Small files are embedded together (one model call for many files: per-call overhead dominates
    otherwise); a large file is embedded and written batch by batch, with progress.
    """
    kb, created = store.get_or_create_row(kb_name)
    store.recover(kb)
    results: list[FileResult] = []
    emit = progress or (lambda _p: None)
    total = len(files)
    batch = max(store.settings.embedding_batch_size, 16)
    group: list[_Prepared] = []

    def finish(i: int, result: FileResult) -> None:
        if result.status == FAILED:
            store.registry.record_failure(kb.id, result.name, result.path, result.reason or "failed",
                                          sha256=None, file_type=file_type(Path(result.name)) or file_type(Path(result.path)))
        results.append(result)
        emit(Progress("done", i, total, result.name, result=result))

    def flush_group() -> None:
        if not group:
            return
        batch_files = list(group)
        group.clear()
        try:
            vectors = store.embeddings(kb).embed_documents([c.text for prep in batch_files for c in prep.chunks])
        except Exception as exc:
            log.exception("embedding failed")
            for prep in batch_files:
                finish(prep.index, FileResult(str(prep.path), prep.name, FAILED,
                                              f"could not be embedded: {type(exc).__name__}: {exc}"))
            return
        for prep in batch_files:
            emit(Progress("chunks", prep.index, total, prep.name, len(prep.chunks), len(prep.chunks)))
        for prep, result in zip(batch_files, _write_many(store, kb, batch_files, vectors)):
            finish(prep.index, result)

    for i, (path, name) in enumerate(files, start=1):
        emit(Progress("file", i, total, name))
        prep = _prepare(store, kb, i, Path(path), name,
                        lambda d, t, i=i, name=name: emit(Progress("ocr", i, total, name, d, t)))
        if isinstance(prep, _Prepared):
            prep.uploaded = uploaded
        if isinstance(prep, FileResult):
            finish(i, prep)
        elif len(prep.chunks) >= batch:
            flush_group()
            finish(i, _write(store, kb, prep,
                             lambda d, t, i=i, name=name: emit(Progress("chunks", i, total, name, d, t))))
        else:
            group.append(prep)
            # a bigger group lets the embedder sort by length (less padding); 8 batches bounds memory
            if sum(len(p.chunks) for p in group) >= 8 * batch:
                flush_group()
    flush_group()
    if any(r.status in (INGESTED, REPLACED) for r in results):
        emit(Progress("index", total, total, "BM25 index"))
        store.refresh_bm25(kb)
    if any(r.status in (REPLACED, FAILED) for r in results):
        store.collect_originals()  # the replaced versions' files, and any of a write that failed
    return IngestSummary(kb.name, created, results)


@dataclass
class _Prepared:
    """A file read, checked, parsed, chunked and tokenized: everything but the vectors."""

    index: int
    path: Path
    name: str
    kind: str
    sha: str
    size: int
    loaded: LoadedDocument
    chunks: list[Chunk]
    tokens: list[list[str]]
    uploaded: bool = False


def _prepare(store: KnowledgeBaseStore, kb, index: int, path: Path, name: str,  # noqa: ANN001
             on_ocr_page: Callable[[int, int], None] | None = None) -> "FileResult | _Prepared":
    settings = store.settings
    kind = file_type(Path(name)) or file_type(path)
    try:
        data = _read_checked(path, settings.max_file_mb)
    except IngestError as exc:
        return FileResult(str(path), name, FAILED, str(exc))
    sha = hashlib.sha256(data).hexdigest()
    same = store.registry.find_ready_by_sha(kb.id, sha)
    if same is not None:
        if same.filename == name:
            why = "unchanged since it was ingested"
        elif same.source_path == str(path.resolve()):
            why = f"unchanged since it was ingested as '{same.filename}'"
        else:
            why = f"identical content is already in the knowledge base as '{same.filename}'"
        return FileResult(str(path), name, SKIPPED, why, same.pages, same.chunks, doc_id=same.id)
    try:
        loaded = load(path, kind, min_chars_per_page=settings.min_chars_per_page,
                      garbled_threshold=settings.garbled_threshold, ocr=settings.ocr, ocr_dpi=settings.ocr_dpi,
                      on_ocr_page=on_ocr_page, ocr_model=settings.ocr_model)
        chunks = chunk_segments(loaded.segments, settings.chunk_size, settings.chunk_overlap)
        if not chunks:
            raise IngestError("no text to index")
    except IngestError as exc:
        return FileResult(str(path), name, FAILED, str(exc))
    except Exception as exc:  # a loader bug or an exotic file must not stop the batch
        log.exception("loading %s failed", path)
        return FileResult(str(path), name, FAILED, f"could not be read: {type(exc).__name__}: {exc}")
    # The section title is part of what a chunk is about, so BM25 sees it too.
    tokens = [tokenize(f"{c.section}\n{c.text}" if c.section else c.text) for c in chunks]
    return _Prepared(index, path, name, kind, sha, len(data), loaded, chunks, tokens)


def _chunk_rows(prep: _Prepared, doc_id: str, chunks: list[Chunk]) -> list[dict]:
    return [{"id": chunk_id(doc_id, c.idx), "doc_id": doc_id, "idx": c.idx, "text": c.text, "filename": prep.name,
             "page": c.page, "section": c.section, "char_offset": c.char_offset, "tokens": prep.tokens[c.idx]}
            for c in chunks]


def _begin(store: KnowledgeBaseStore, kb, prep: _Prepared) -> tuple[DocumentRow, bool]:  # noqa: ANN001
    source = None if prep.uploaded else str(prep.path.resolve())
    replacing = bool(store.registry.previous_versions(kb.id, prep.name, source))
    doc = store.begin_document(kb, filename=prep.name, source_path=source, sha256=prep.sha, file_type=prep.kind,
                               size_bytes=prep.size, pages=prep.loaded.pages, chunks=len(prep.chunks),
                               warnings="\n".join(prep.loaded.warnings) or None)
    try:  # the source preview renders the cited page from it; failing to keep it must not fail the ingest
        store.keep_original(prep.path, prep.sha, Path(prep.name).suffix)
    except OSError as exc:
        log.warning("could not keep the original of %s for previews: %s", prep.name, exc)
    return doc, replacing


def _done(prep: _Prepared, doc: DocumentRow, replacing: bool) -> FileResult:
    return FileResult(str(prep.path), prep.name, REPLACED if replacing else INGESTED, None, prep.loaded.pages,
                      len(prep.chunks), prep.loaded.warnings, doc.id, prep.loaded.ocr_pages)


def _failed(prep: _Prepared, exc: BaseException) -> FileResult:
    log.error("storing %s failed: %s", prep.path, exc, exc_info=exc)
    return FileResult(str(prep.path), prep.name, FAILED, f"could not be stored: {type(exc).__name__}: {exc}")


def _write(store: KnowledgeBaseStore, kb, prep: _Prepared,  # noqa: ANN001
           on_chunks: Callable[[int, int], None]) -> FileResult:
    """Embed and write a large document batch by batch under the store's protocol
    (ingesting -> ready, old version retired); an error leaves nothing of it behind."""
    emb = store.embeddings(kb)
    store.check_embedding_model(kb)
    chunks = prep.chunks
    doc, replacing = _begin(store, kb, prep)
    try:
        batch = max(store.settings.embedding_batch_size, 16)
        on_chunks(0, len(chunks))
        for start in range(0, len(chunks), batch):
            part = chunks[start:start + batch]
            store.add_chunks(kb, _chunk_rows(prep, doc.id, part), emb.embed_documents([c.text for c in part]))
            on_chunks(min(start + batch, len(chunks)), len(chunks))
        store.publish_document(kb, doc)
    except BaseException as exc:
        store.abort_document(kb, doc.id)
        if not isinstance(exc, Exception):
            raise
        return _failed(prep, exc)
    return _done(prep, doc, replacing)


def _write_many(store: KnowledgeBaseStore, kb, preps: list[_Prepared],  # noqa: ANN001
                vectors: list[list[float]]) -> list[FileResult]:
    """Write several small, already embedded documents with one Chroma and one registry write;
    each is still published on its own, so each is either fully in or not at all."""
    store.check_embedding_model(kb)
    begun = [(prep, *_begin(store, kb, prep)) for prep in preps]
    rows = [row for prep, doc, _ in begun for row in _chunk_rows(prep, doc.id, prep.chunks)]
    try:
        store.add_chunks(kb, rows, vectors)
    except BaseException as exc:
        for _, doc, _ in begun:
            store.abort_document(kb, doc.id)
        if not isinstance(exc, Exception):
            raise
        return [_failed(prep, exc) for prep, _, _ in begun]
    results = []
    for prep, doc, replacing in begun:
        try:
            store.publish_document(kb, doc)
            results.append(_done(prep, doc, replacing))
        except BaseException as exc:
            store.abort_document(kb, doc.id)
            if not isinstance(exc, Exception):
                raise
            results.append(_failed(prep, exc))
    return results


def _read_checked(path: Path, max_mb: float) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise IngestError("cannot read: no such file (or a broken link)") from None
    except OSError as exc:
        raise IngestError(f"cannot read: {exc.strerror or exc}") from None
    if (why := too_large(size, max_mb)) is not None:
        raise IngestError(why)
    if size == 0:
        raise IngestError("empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise IngestError("cannot read: permission denied")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read: {exc.strerror or exc}") from None
