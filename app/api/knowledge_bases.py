"""/api/kbs: create, list, rename, delete knowledge bases; their documents; search."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile

from app.api.deps import ERRORS, Service, require_key
from app.api.models import (
    ChunkOut, ChunkSwitch, DocumentOut, ErrorBody, FileResultOut, GateOut, HitOut, IndexBuildIn, IndexBuildOut, KBName,
    KBOut, MemberIn, MemberOut, SearchIn, UploadOut,
)
from app.services import Upload, safe_display_name

router = APIRouter(prefix="/api", dependencies=[Depends(require_key)], responses=ERRORS)


def kb_out(kb, service) -> KBOut:  # noqa: ANN001
    return KBOut(name=kb.name, documents=kb.documents, chunks=kb.chunks, embedding_model=kb.embedding_model,
                 embedding_note=service.embedding_note(kb.name), created_at=kb.created_at.isoformat())


@router.get("/kbs", response_model=list[KBOut], tags=["knowledge bases"])
def list_kbs(service: Service):
    return [kb_out(kb, service) for kb in service.list_kbs()]


@router.post("/kbs", response_model=KBOut, status_code=201, tags=["knowledge bases"],
             responses={409: {"model": ErrorBody}})
def create_kb(body: KBName, service: Service):
    return kb_out(service.create_kb(body.name), service)


@router.get("/kbs/{kb}", response_model=KBOut, tags=["knowledge bases"])
def get_kb(kb: str, service: Service):
    return kb_out(service.kb(kb), service)


@router.patch("/kbs/{kb}", response_model=KBOut, tags=["knowledge bases"], responses={409: {"model": ErrorBody}})
def rename_kb(kb: str, body: KBName, service: Service):
    return kb_out(service.rename_kb(kb, body.name), service)


@router.delete("/kbs/{kb}", status_code=204, tags=["knowledge bases"])
def delete_kb(kb: str, service: Service):
    service.delete_kb(kb)
    return Response(status_code=204)


def build_out(service, kb: str) -> IndexBuildOut:  # noqa: ANN001
    st = service.reindex_status(kb)
    if st is None:
        return IndexBuildOut(knowledge_base=service.kb(kb).name, current_model=service.kb(kb).embedding_model,
                             status="none")
    return IndexBuildOut(knowledge_base=st.kb, current_model=st.old_model, model=st.model, status=st.status,
                         done=st.done, total=st.total, running=st.running, error=st.error,
                         comparison=st.comparison.as_dict() if st.comparison else None)


@router.get("/kbs/{kb}/index", response_model=IndexBuildOut, tags=["knowledge bases"])
def index_build(kb: str, service: Service):
    """The new index being built for the knowledge base (`ragkb reindex`): progress, then the comparison."""
    return build_out(service, kb)


@router.post("/kbs/{kb}/index", response_model=IndexBuildOut, status_code=202, tags=["knowledge bases"],
             responses={409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def start_index_build(kb: str, body: IndexBuildIn, service: Service):
    """Build (or resume) a new index with another embedding model beside the serving one, in the background; the
    knowledge base keeps answering from its current index until `POST .../index/switch`. 422: the model cannot be
    used; 409: the knowledge base is being ingested or already re-indexed elsewhere."""
    from app.api.errors import ApiError
    from rag.errors import EmbeddingModelUnavailable

    try:
        service.start_index_build(kb, body.model)
    except EmbeddingModelUnavailable as exc:
        raise ApiError(422, str(exc)) from exc
    return build_out(service, kb)


@router.post("/kbs/{kb}/index/switch", response_model=KBOut, tags=["knowledge bases"],
             responses={409: {"model": ErrorBody}})
def switch_index(kb: str, service: Service):
    """Serve the knowledge base from its built new index; the old index is deleted after the switch."""
    return kb_out(service.switch_index(kb), service)


@router.delete("/kbs/{kb}/index", status_code=204, tags=["knowledge bases"], responses={409: {"model": ErrorBody}})
def cancel_index_build(kb: str, service: Service):
    """Delete the new index (a build running here stops); the knowledge base keeps its current one."""
    service.kb(kb)
    service.cancel_index_build(kb)
    return Response(status_code=204)


def doc_out(d) -> DocumentOut:  # noqa: ANN001
    return DocumentOut(id=d.id, filename=d.filename, status=d.status, pages=d.pages, chunks=d.chunks,
                       error=d.error, added=d.created_at.isoformat())


@router.get("/kbs/{kb}/documents", response_model=list[DocumentOut], tags=["documents"])
def list_documents(kb: str, service: Service):
    return [doc_out(d) for d in service.documents(kb)]


@router.post("/kbs/{kb}/documents", response_model=UploadOut, tags=["documents"],
             responses={413: {"model": ErrorBody}, 415: {"model": ErrorBody}})
def upload_documents(kb: str, service: Service,
                     files: list[UploadFile] = File(..., description="PDF, Word (.docx), HTML, Markdown or text files")):
    service.require(kb, "editor")  # before a byte is read
    tmp = Path(tempfile.mkdtemp(prefix="ragkb-upload-"))
    try:
        uploads = [_receive(f, i, tmp, service.settings.max_file_mb * 1024 * 1024, service) for i, f in enumerate(files)]
        problems = [service.upload_problem(u) for u in uploads]
        if all(p is not None for p in problems):  # nothing acceptable: the request itself is refused (413/415)
            first = problems[0]
            also = "; ".join(f"{p.name}: {p.reason}" for p in problems[1:4])
            raise type(first)(first.name, first.reason + (f" (also {also})" if also else ""))
        summary = service.ingest_uploads(kb, uploads)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return UploadOut(knowledge_base=summary.kb, ingested=len(summary.ingested), skipped=len(summary.skipped),
                     failed=len(summary.failed),
                     results=[FileResultOut(name=r.name, status=r.status, reason=r.reason, pages=r.pages,
                                            chunks=r.chunks, warnings=r.warnings, ocr_pages=r.ocr_pages)
                              for r in summary.results])


def _receive(f: UploadFile, i: int, tmp: Path, limit: float, service) -> Upload:  # noqa: ANN001
    """Copy one upload to a temp file, stopping at the size limit (the file is refused anyway)."""
    name = safe_display_name(f.filename or f"upload-{i}")
    path = tmp / f"{i}{Path(name).suffix.lower()}"
    copied = 0
    with open(path, "wb") as out:
        while chunk := f.file.read(1 << 20):
            copied += len(chunk)
            if copied > limit:
                break
            out.write(chunk)
    if copied > limit:
        path.unlink()
        return Upload(path, name, service.too_large_upload(name))
    return Upload(path, name)


@router.delete("/kbs/{kb}/documents/{document}", status_code=204, tags=["documents"])
def delete_document(kb: str, document: str, service: Service):
    service.delete_document(kb, document)
    return Response(status_code=204)


def chunk_out(c) -> ChunkOut:  # noqa: ANN001
    return ChunkOut(id=c.id, index=c.idx, page=c.page, section=c.section, text=c.text, length=len(c.text),
                    enabled=c.enabled)


@router.get("/kbs/{kb}/documents/{document}/chunks", response_model=list[ChunkOut], tags=["documents"])
def document_chunks(kb: str, document: str, service: Service, contains: str | None = None):
    """A document's chunks in order; `contains` keeps those holding that text (case-insensitive)."""
    return [chunk_out(c) for c in service.document_chunks(kb, document, contains)[1]]


@router.patch("/kbs/{kb}/chunks/{chunk_id}", response_model=ChunkOut, tags=["documents"])
def switch_chunk(kb: str, chunk_id: str, body: ChunkSwitch, service: Service):
    """Switch a chunk off (`enabled: false`: excluded from search and answers, still listed) or on again.
    The switch survives restarts, `ragkb reindex` and a re-ingest that yields the same chunk."""
    return chunk_out(service.set_chunk_enabled(kb, chunk_id, body.enabled))


@router.get("/kbs/{kb}/documents/{document}/pages/{page}.png", tags=["documents"],
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def page_image(kb: str, document: str, page: int, service: Service,
               highlight: str | None = Query(None, max_length=600, description=(
                   "Text to highlight (a cited passage; its first 600 characters find it, and a longer query "
                   "string would pass HTTP servers' request-line limits)."))):
    """A PDF page of the stored original rendered as PNG, with `highlight`'s text boxes marked (the source
    preview). The header X-Ragkb-Highlighted says how many boxes were marked."""
    png, boxes = service.page_image(kb, document, page, highlight)
    return Response(png, media_type="image/png", headers={"X-Ragkb-Highlighted": str(boxes)})


@router.post("/kbs/{kb}/search", response_model=list[HitOut], tags=["search"])
def search(kb: str, body: SearchIn, service: Service):
    """Hybrid search. `explain: true` is the retrieval test: the hits the answer chain would see, each with
    the gate's verdict (kept, in the prompt, why)."""
    if body.explain:
        return [_hit_out(i, e.hit, GateOut(kept=e.kept, in_prompt=e.in_prompt, coverage=e.coverage,
                                           dense_similarity=None if e.dense is None else round(e.dense, 4), why=e.why))
                for i, e in enumerate(service.retrieval_test(kb, body.query, body.k), start=1)]
    return [_hit_out(i, h) for i, h in enumerate(service.search(kb, body.query, body.k), start=1)]


def _hit_out(rank: int, h, gate: GateOut | None = None) -> HitOut:  # noqa: ANN001
    return HitOut(rank=rank, filename=h.filename, page=h.page, section=h.section, score=round(h.score, 6),
                  text=h.text, doc_id=h.doc_id, chunk_id=h.chunk_id, dense_rank=h.dense_rank, bm25_rank=h.bm25_rank,
                  gate=gate)


def members_out(members: dict[str, str]) -> list[MemberOut]:
    return [MemberOut(user=u, role=r) for u, r in members.items()]


@router.get("/kbs/{kb}/members", response_model=list[MemberOut], tags=["members"])
def list_members(kb: str, service: Service):
    """Who holds which role on the knowledge base (its owners and admins may look)."""
    return members_out(service.members(kb))


@router.put("/kbs/{kb}/members/{user}", response_model=list[MemberOut], tags=["members"])
def grant_member(kb: str, user: str, body: MemberIn, service: Service):
    """Give `user` a role (viewer: search and ask; editor: also documents; owner: also rename, delete, grant)."""
    return members_out(service.grant(kb, user, body.role))


@router.delete("/kbs/{kb}/members/{user}", response_model=list[MemberOut], tags=["members"])
def revoke_member(kb: str, user: str, service: Service):
    return members_out(service.revoke(kb, user))
