"""Switching a knowledge base to another embedding model without losing it (`ragkb reindex KB --model NAME`).

Users of other tools lose their index when they change the embedding model. Here:
1. `start`: the model is loaded and checked first (an unknown name, or a folder that is not an embedding model, is
   refused before anything is written), and a knowledge base that is being ingested is refused.
2. `build`: every chunk is embedded into a new Chroma collection beside the serving one (recorded in the registry's
   `index_builds` row), while the old index keeps answering. Progress is reported; a killed or failed build resumes
   where it stopped (chunks already in the new collection are not embedded again). Nothing the knowledge base
   serves changes.
3. `compare` (at the end of `build`): both indexes are searched with the knowledge base's own questions and the
   result is kept for the user to read (`Comparison`).
4. `switch`, when the user confirms: chunks ingested or deleted since the build are caught up, one registry
   transaction makes the new index the knowledge base's, and only then is the old collection dropped. `cancel`
   drops the new collection instead.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from rag.errors import ReindexRefused
from rag.registry import IndexBuildRow, KnowledgeBaseRow, process_owner
from rag.store import KnowledgeBase, KnowledgeBaseStore, chunk_metadata, collection_name_for, owner_is_dead

BUILDING, BUILT, FAILED = "building", "built", "failed"
COMPARE_K = 5  # the comparison looks at the top 5, what the answer chain draws on
_BATCH = 64
_active: set[str] = set()  # knowledge-base ids being built by this process right now
_cancelled: set[str] = set()  # ... and whose build should stop at its next batch
_cancel_lock = threading.Lock()
log = logging.getLogger(__name__)


@dataclass
class CaseResult:
    question: str
    kind: str  # correction | asked | disliked | sample
    expected: str | None  # where the expected answer is, as "file p. N"
    rank_before: int | None  # rank of the expected chunk in the top 10, None: not there (or no expected chunk)
    rank_after: int | None
    overlap: float  # share of the top 5 both indexes return
    top_before: str | None  # the first hit, as "file p. N"
    top_after: str | None


@dataclass
class Comparison:
    old_model: str
    new_model: str
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def with_expected(self) -> list[CaseResult]:
        return [c for c in self.cases if c.expected]

    def found(self, after: bool) -> int:
        """Cases whose expected chunk is in the top 5."""
        ranks = [c.rank_after if after else c.rank_before for c in self.with_expected]
        return sum(1 for r in ranks if r is not None and r <= COMPARE_K)

    @property
    def mean_overlap(self) -> float:
        return round(sum(c.overlap for c in self.cases) / len(self.cases), 3) if self.cases else 0.0

    def summary(self) -> str:
        if not self.cases:
            return "no questions to compare on"
        n = len(self.with_expected)
        found = (f"expected passage in the top {COMPARE_K}: {self.found(False)}/{n} before, {self.found(True)}/{n} "
                 "after; " if n else "")
        return f"{len(self.cases)} questions: {found}top-{COMPARE_K} overlap {self.mean_overlap:.0%}"

    def as_dict(self) -> dict:
        return {"old_model": self.old_model, "new_model": self.new_model, "summary": self.summary(),
                "expected_in_top5_before": self.found(False), "expected_in_top5_after": self.found(True),
                "with_expected": len(self.with_expected), "mean_overlap": self.mean_overlap,
                "cases": [asdict(c) for c in self.cases]}

    @classmethod
    def from_dict(cls, d: dict) -> "Comparison":
        return cls(d["old_model"], d["new_model"], [CaseResult(**c) for c in d.get("cases", [])])


@dataclass
class BuildStatus:
    """What the faces show of a knowledge base's new index."""

    kb: str
    old_model: str
    model: str
    status: str  # building | built | failed
    done: int
    total: int
    running: bool  # a live process is building it now
    error: str | None
    comparison: Comparison | None
    reused: int = 0  # chunks this run found already embedded (a resumed build)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["comparison"] = self.comparison.as_dict() if self.comparison else None
        return d


def status(store: KnowledgeBaseStore, name: str) -> BuildStatus | None:
    kb = store.get_row(name)
    row = store.registry.index_build(kb.id)
    return _status(kb, row) if row is not None else None


def _status(kb: KnowledgeBaseRow, row: IndexBuildRow) -> BuildStatus:
    report = Comparison.from_dict(json.loads(row.report)) if row.report else None
    running = row.status == BUILDING and row.owner is not None and not owner_is_dead(row) and \
        (row.owner != process_owner() or row.kb_id in _active)
    return BuildStatus(kb.name, kb.embedding_model, row.model, row.status, row.done, row.total, running, row.error,
                       report)


def start(store: KnowledgeBaseStore, name: str, model: str | None = None) -> BuildStatus:
    """Begin (or resume) building `name`'s index with `model` (default: the configured model). Raises
    EmbeddingModelUnavailable for a model that cannot be used and ReindexRefused while the knowledge base is being
    ingested or rebuilt by another process; in both cases nothing is written."""
    from rag.embeddings import embedding_dimension

    kb = store.get_row(name)
    model = (model or store.settings.embedding_model).strip()
    dim = embedding_dimension(store.embeddings(model=model))  # loads and checks the model before anything is written
    if (doc := store.live_ingest(kb)) is not None:
        raise ReindexRefused(f"Knowledge base '{kb.name}' is being ingested right now ('{doc.filename}'): its index "
                             "can be rebuilt once that finishes. It keeps serving on its current index.")
    row = store.registry.index_build(kb.id)
    if kb.id in _active:
        raise ReindexRefused(f"Knowledge base '{kb.name}' is already being re-indexed (with '{row.model}'): wait for "
                             "it to finish, or cancel it.")
    if row is not None and row.status == BUILDING and row.owner not in (None, process_owner()) \
            and not owner_is_dead(row):
        raise ReindexRefused(f"Knowledge base '{kb.name}' is already being re-indexed with '{row.model}' by another "
                             f"process ({row.owner}); wait for it, or cancel it there.")
    if row is not None and row.model != model:  # a build for another model is replaced
        store.drop_collection(row.collection)
        store.registry.delete_index_build(kb.id)
        row = None
    with _cancel_lock:
        _cancelled.discard(kb.id)
    if row is None:
        store.registry.put_index_build(kb.id, model=model, collection=collection_name_for(kb.name), dim=dim,
                                       status=BUILDING, done=0, total=0, owner=process_owner(), error=None, report=None)
    else:
        store.registry.put_index_build(kb.id, dim=dim, status=BUILDING, owner=process_owner(), error=None, report=None)
    return status(store, kb.name)


def build(store: KnowledgeBaseStore, name: str, progress: Callable[[int, int], None] | None = None) -> BuildStatus:
    """Embed what the new index lacks, then compare it with the serving one. A failure is recorded on the build
    (status `failed`, the reason) and raised; what was embedded stays for the next run to resume from."""
    kb, row = _claim(store, name)
    return _build_claimed(store, kb, row, progress)


def build_in_background(store: KnowledgeBaseStore, name: str, model: str | None = None) -> BuildStatus:
    """`start`, then `build` in a thread (web UI, API). The build is claimed before this returns, so a face that
    polls `status` right away sees it running rather than stopped."""
    start(store, name, model)
    kb, row = _claim(store, name)

    def run() -> None:
        try:
            _build_claimed(store, kb, row, None)
        except Exception:  # noqa: BLE001 - recorded on the build row (status failed, the reason)
            log.exception("re-indexing %s failed", name)

    threading.Thread(target=run, name=f"reindex-{kb.name}", daemon=True).start()
    return status(store, name)


def _claim(store: KnowledgeBaseStore, name: str) -> tuple[KnowledgeBaseRow, IndexBuildRow]:
    """Mark `name`'s started build as being built by this process (before any thread runs it)."""
    kb = store.get_row(name)
    row = store.registry.index_build(kb.id)
    if row is None:
        raise ReindexRefused(f"Knowledge base '{kb.name}' has no new index being built (start one: ragkb reindex "
                             f"'{kb.name}' --model NAME).")
    with _cancel_lock:
        if kb.id in _active:
            raise ReindexRefused(f"Knowledge base '{kb.name}' is already being re-indexed.")
        _active.add(kb.id)
    return kb, row


def _build_claimed(store: KnowledgeBaseStore, kb: KnowledgeBaseRow, row: IndexBuildRow,
                   progress: Callable[[int, int], None] | None) -> BuildStatus:
    try:
        reused = _catch_up(store, kb, row, progress)
        report = compare(store, kb, row)
        # written while still claimed: between the claim's end and this write a poll saw a build that had stopped
        store.registry.put_index_build(kb.id, status=BUILT, owner=None, error=None,
                                       report=json.dumps(report.as_dict(), ensure_ascii=False))
    except _Cancelled:
        store.drop_collection(row.collection)
        store.registry.delete_index_build(kb.id)
        raise ReindexRefused(f"Re-indexing '{kb.name}' was cancelled; it keeps serving on its current index.") from None
    except BaseException as exc:
        store.registry.put_index_build(kb.id, status=FAILED, owner=None, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        with _cancel_lock:
            _active.discard(kb.id)
            _cancelled.discard(kb.id)
    done = status(store, kb.name)
    done.reused = reused
    return done


class _Cancelled(Exception):
    pass


def _catch_up(store: KnowledgeBaseStore, kb: KnowledgeBaseRow, row: IndexBuildRow,
              progress: Callable[[int, int], None] | None) -> int:
    """Make the new collection hold exactly the ready chunks: embed the missing ones, delete the retired ones.
    Returns how many were there already."""
    emb = store.embeddings(model=row.model)
    col = store.collection(row.collection)
    with store.vector_errors():
        have = set(col.get(include=[])["ids"])
    names = store.ready_documents(kb)
    rows = store.registry.chunk_rows(kb.id, list(names))
    wanted = {r.id for r in rows}
    if stale := sorted(have - wanted):
        with store.vector_errors():
            col.delete(ids=stale)
    missing = [r for r in rows if r.id not in have]
    done, total = len(rows) - len(missing), len(rows)
    reused = done
    store.registry.put_index_build(kb.id, done=done, total=total)
    if progress:
        progress(done, total)
    for start_at in range(0, len(missing), _BATCH):
        with _cancel_lock:
            if kb.id in _cancelled:
                raise _Cancelled()
        part = missing[start_at:start_at + _BATCH]
        vectors = emb.embed_documents([r.text for r in part])
        metas = [chunk_metadata(kb.id, r.doc_id, names.get(r.doc_id, "?"), r.idx, r.char_offset, r.page, r.section)
                 for r in part]
        with store.vector_errors():
            col.upsert(ids=[r.id for r in part], embeddings=vectors, documents=[r.text for r in part], metadatas=metas)
        done += len(part)
        store.registry.put_index_build(kb.id, done=done, total=total)
        if progress:
            progress(done, total)
    return reused


def switch(store: KnowledgeBaseStore, name: str) -> KnowledgeBase:
    """Serve `name` from its built new index; the old collection is dropped only after the registry says so."""
    kb = store.get_row(name)
    row = store.registry.index_build(kb.id)
    if row is None:
        raise ReindexRefused(f"Knowledge base '{kb.name}' has no new index to switch to (build one: ragkb reindex "
                             f"'{kb.name}' --model NAME).")
    if row.status != BUILT:
        raise ReindexRefused(f"The new index of '{kb.name}' is not built yet ({row.done} of {row.total} chunks"
                             f"{', ' + row.error if row.error else ''}): run ragkb reindex '{kb.name}' to finish it.")
    if (doc := store.live_ingest(kb)) is not None:
        raise ReindexRefused(f"Knowledge base '{kb.name}' is being ingested right now ('{doc.filename}'): switch once "
                             "that finishes. It keeps serving on its current index.")
    _catch_up(store, kb, row, None)  # what was ingested or deleted since the build
    old = kb.collection
    store.registry.switch_index(kb.id, row.collection, row.model, row.dim)
    store.drop_collection(old)
    return store.get(kb.name)


def cancel(store: KnowledgeBaseStore, name: str) -> bool:
    """Drop the new index (a build running in this process stops at its next batch). False when there is none."""
    kb = store.get_row(name)
    row = store.registry.index_build(kb.id)
    if row is None:
        return False
    if row.status == BUILDING and row.owner not in (None, process_owner()) and not owner_is_dead(row):
        raise ReindexRefused(f"Knowledge base '{kb.name}' is being re-indexed by another process ({row.owner}): "
                             "cancel it there.")
    with _cancel_lock:
        if kb.id in _active:
            _cancelled.add(kb.id)  # the build thread drops it when it sees this
            return True
    store.drop_collection(row.collection)
    store.registry.delete_index_build(kb.id)
    return True


# -- the comparison ---------------------------------------------------------------------------
_WORDS = re.compile(r"\w+", re.UNICODE)


def _norm(text: str) -> str:
    return "".join(_WORDS.findall(text.lower()))


def _where(filename: str, page: int | None) -> str:
    return f"{filename} p. {page}" if page else filename


def comparison_cases(store: KnowledgeBaseStore, kb: KnowledgeBaseRow, limit: int = 40) -> list[tuple[str, str, set[str]]]:
    """(question, kind, ids of the chunks that answer it) the two indexes are compared on: the knowledge base's own
    regression cases (user corrections: the chunks holding the corrected answer; disliked answers: no expected
    chunk), then the questions asked of it (the chunk the answer cited first, unless it was disliked), then, when
    fewer than 10, sentences sampled from its chunks (each should find its own chunk)."""
    from rag.conversations import ConversationStore

    conversations = ConversationStore(store.registry)
    names = store.ready_documents(kb)
    rows = store.registry.chunk_rows(kb.id, list(names))
    cases: list[tuple[str, str, set[str]]] = []
    seen: set[str] = set()

    def add(question: str, kind: str, expected: set[str]) -> None:
        if question and question not in seen and len(cases) < limit:
            seen.add(question)
            cases.append((question, kind, expected))

    for c in conversations.corrections(kb.name):
        answer = _norm(c.answer)
        add(c.question, "correction", {r.id for r in rows if answer and answer in _norm(r.text)})
    ready = {r.id for r in rows}
    for a in conversations.asked(kb.name, limit):
        cited = [s.get("chunk_id") for s in a["sources"] if s.get("chunk_id") in ready]
        if a["rating"] == -1:
            add(a["question"], "disliked", set())
        else:
            add(a["question"], "asked", set(cited[:1]))
    if len(cases) < 10 and rows:
        step = max(1, len(rows) // 20)
        for r in rows[::step]:
            sentence = next((s.strip() for s in re.split(r"(?<=[。！？.!?])\s*|\n", r.text)
                             if 12 <= len(s.strip()) <= 120 and not s.lstrip().startswith(("#", "|", "-", "*"))), "")
            add(sentence, "sample", {r.id})
    return cases


def compare(store: KnowledgeBaseStore, kb: KnowledgeBaseRow, row: IndexBuildRow) -> Comparison:
    """Search both indexes with the comparison cases; for each, where the expected chunk ranks and how much of the
    top 5 they share."""
    from rag.retrieval import search

    out = Comparison(kb.embedding_model, row.model)
    names = store.ready_documents(kb)
    for question, kind, expected in comparison_cases(store, kb):
        before = search(store, kb.name, question, k=10)
        after = search(store, kb.name, question, k=10, index=(row.model, row.collection))
        rank = lambda hits: next((i for i, h in enumerate(hits, 1) if h.chunk_id in expected), None)  # noqa: E731
        top_a, top_b = ({h.chunk_id for h in hits[:COMPARE_K]} for hits in (before, after))
        overlap = len(top_a & top_b) / max(1, len(top_a), len(top_b))
        where = None
        if expected:
            first = store.registry.chunks_by_ids([min(expected)])[min(expected)]
            where = _where(names.get(first.doc_id, "?"), first.page)
        out.cases.append(CaseResult(
            question, kind, where, rank(before) if expected else None, rank(after) if expected else None,
            round(overlap, 2), _where(before[0].filename, before[0].page) if before else None,
            _where(after[0].filename, after[0].page) if after else None))
    return out


def older_model_note(kb_model: str, default_model: str) -> str | None:
    """What the faces say about a knowledge base built with another model than the default, or None."""
    if kb_model == default_model or kb_model.startswith("mock:"):
        return None
    from rag.embeddings import MINILM

    why = " (English only: Chinese questions are matched by words alone)" if kb_model == MINILM else ""
    return (f"built with {kb_model}{why}; new knowledge bases use {default_model}. Rebuild its index with the new "
            "model: it keeps answering on the old one until you switch.")
