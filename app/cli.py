"""`ragkb` command line. A thin face: every command calls the same services the web UI and API use.

Heavy libraries (torch, chromadb, sentence-transformers) are imported inside commands so that
`ragkb --help` starts instantly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rag.settings import apply_offline_env

app = typer.Typer(help="ragkb: a self-hosted knowledge-base assistant (PDF, Markdown, TXT; Chinese and English).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _offline() -> None:
    """Before any command (and so before any model library is imported): no code path goes online."""
    apply_offline_env()

kb_app = typer.Typer(help="Create, list, rename, delete and check knowledge bases.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _settings():
    from pydantic import ValidationError

    from rag.settings import load_settings

    try:
        return load_settings()
    except ValidationError as exc:
        problems = "; ".join(f"RAGKB_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        _fail(f"invalid configuration (environment or .env): {problems}")


def _service():
    """The service every face uses: the CLI holds no logic of its own (a rename, a delete, an ingest
    go through the same functions as from the web UI and the API)."""
    from app.services import RagkbService

    return RagkbService(_settings())


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _run(fn):  # noqa: ANN001
    """Run a command body, turning ragkb errors into a clear message and exit code 2."""
    from rag.errors import RagkbError

    try:
        return fn()
    except RagkbError as exc:
        _fail(str(exc))


# --- knowledge bases -----------------------------------------------------------------------
@kb_app.command("create")
def kb_create(name: Annotated[str, typer.Argument(help="Display name, any language.")]) -> None:
    """Create an empty knowledge base."""
    kb = _run(lambda: _service().create_kb(name))
    out.print(f"created knowledge base [bold]{escape(kb.name)}[/] (embedding model {escape(kb.embedding_model)})")


@kb_app.command("list")
def kb_list(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List knowledge bases with their document and chunk counts."""
    service = _service()
    kbs = _run(service.list_kbs)
    notes = {k.name: service.embedding_note(k.name) for k in kbs}
    if as_json:
        print(json.dumps([{"name": k.name, "documents": k.documents, "chunks": k.chunks,
                           "embedding_model": k.embedding_model, "embedding_dim": k.embedding_dim,
                           "embedding_note": notes[k.name], "created_at": k.created_at.isoformat()} for k in kbs],
                         ensure_ascii=False))
        return
    if not kbs:
        out.print("no knowledge bases yet: ragkb kb create NAME, or ragkb ingest NAME FILES...")
        return
    table = Table("name", "documents", "chunks", "embedding model", "created")
    for k in kbs:
        table.add_row(escape(k.name), str(k.documents), str(k.chunks), escape(k.embedding_model),
                      k.created_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)
    for name, note in notes.items():
        if note:
            out.print(f"[yellow]note:[/] '{escape(name)}' was {escape(note)} (ragkb reindex '{escape(name)}')")


@kb_app.command("rename")
def kb_rename(old: str, new: str) -> None:
    """Rename a knowledge base (its documents and vectors are untouched)."""
    kb = _run(lambda: _service().rename_kb(old, new))
    out.print(f"renamed '{escape(old)}' to '{escape(kb.name)}'")


@kb_app.command("delete")
def kb_delete(name: str, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False) -> None:
    """Delete a knowledge base with all its documents."""
    service = _service()
    kb = _run(lambda: service.kb(name))
    if not yes:
        if not sys.stdin.isatty():
            _fail(f"refusing to delete '{name}' without confirmation; pass --yes")
        if not typer.confirm(f"Delete knowledge base '{kb.name}' with {kb.documents} document(s) and "
                             f"{kb.chunks} chunk(s)? This cannot be undone"):
            out.print("nothing deleted")
            raise typer.Exit(1)
    _run(lambda: service.delete_kb(name))  # its corrections go with it, as from the web UI and the API
    out.print(f"deleted knowledge base '{escape(kb.name)}'")


@kb_app.command("check")
def kb_check(name: str) -> None:
    """Check that the registry, Chroma and the BM25 index agree; repair what an interrupted run left."""
    fixed, report = _run(lambda: _service().check_kb(name))
    if fixed:
        out.print(f"cleaned up {fixed} interrupted document(s)")
    out.print(json.dumps(report, ensure_ascii=False, indent=2))
    raise typer.Exit(0 if report["consistent"] else 1)


@kb_app.command("grant")
def kb_grant(name: str, user: str,
             role: Annotated[str, typer.Argument(help="viewer (search, ask), editor (also documents), owner (also "
                                                      "rename, delete, re-index, grant)")]) -> None:
    """Give a user a role on a knowledge base (replaces the role they had)."""
    members = _run(lambda: _service().grant(name, user, role))
    out.print(f"'{escape(user)}' is now {role} of '{escape(name)}' ({len(members)} member(s))")


@kb_app.command("revoke")
def kb_revoke(name: str, user: str) -> None:
    """Take a user's role on a knowledge base away: it disappears from their lists."""
    _run(lambda: _service().revoke(name, user))
    out.print(f"'{escape(user)}' holds no role on '{escape(name)}' any more")


# --- users ------------------------------------------------------------------------------------
user_app = typer.Typer(help="Users of the web UI and the API, and their API keys. Once one exists, every request "
                            "needs a login or a key; the first user is an admin.", no_args_is_help=True)
app.add_typer(user_app, name="user")


def _read_password(name: str) -> str:
    """From the terminal (asked twice) or the first line of stdin (scripts: echo "$PW" | ragkb user add NAME)."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass(f"Password for {name}: ")
        if getpass.getpass("Again: ") != first:
            _fail("the two passwords differ; nothing was stored")
        return first
    return sys.stdin.readline().rstrip("\r\n")


@user_app.command("add")
def user_add(name: str, admin: Annotated[bool, typer.Option("--admin", help="Sees and manages every knowledge "
                                                                            "base.")] = False) -> None:
    """Add a user; the password is read from stdin."""
    service = _service()
    user = _run(lambda: service.add_user(name, _read_password(name), admin))
    out.print(f"added user '{escape(user.name)}'" + (" (admin)" if user.admin else "")
              + ("; from now on the web UI asks for a login and the API for a key (ragkb user key NAME)"
                 if len(service.list_users()) == 1 else ""))


@user_app.command("list")
def user_list(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Users, whether they are admins, their API keys (by prefix) and their roles."""
    users = _service().list_users()
    if as_json:
        out.print(json.dumps([u.__dict__ for u in users], ensure_ascii=False))
        return
    table = Table("user", "admin", "API keys", "roles")
    for u in users:
        table.add_row(escape(u.name), "yes" if u.admin else "", ", ".join(k + "…" for k in u.keys),
                      escape(", ".join(f"{kb}: {r}" for kb, r in u.roles.items())))
    out.print(table if users else "no users: the web UI and the API are open (or use RAGKB_USERS / RAGKB_API_KEYS)")


@user_app.command("remove")
def user_remove(name: str) -> None:
    """Remove a user with their keys and roles (their conversations stay in the database)."""
    _run(lambda: _service().remove_user(name))
    out.print(f"removed user '{escape(name)}'")


@user_app.command("key")
def user_key(name: str) -> None:
    """Print a new API key that acts as the user (shown once; stored hashed)."""
    print(_run(lambda: _service().new_api_key(name)))


@user_app.command("revoke-key")
def user_revoke_key(key: Annotated[str, typer.Argument(help="The key, or the prefix `ragkb user list` shows.")]) -> None:
    """Revoke an API key: requests with it get 401 from now on."""
    who = _run(lambda: _service().revoke_api_key(key))
    out.print(f"revoked a key of '{escape(who)}'")


# --- documents ------------------------------------------------------------------------------
@app.command()
def ingest(
    kb: Annotated[str, typer.Argument(help="Knowledge base (created if it does not exist).")],
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (.pdf, .md, .markdown, .txt, .docx, .html, .htm).")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Add files and folders to a knowledge base. Exit code 1 if any file failed."""
    from app.services import FAILED, REPLACED, SKIPPED

    service = _service()
    marks = {FAILED: "[red]✗ failed[/]", SKIPPED: "[yellow]- skipped[/]", REPLACED: "[green]✓ replaced[/]"}

    def report(r) -> None:  # noqa: ANN001
        mark = marks.get(r.status, "[green]✓ ingested[/]")
        detail = f"{r.chunks} chunks" + (f", {r.pages} pages" if r.pages else "")
        if r.status in (FAILED, SKIPPED):
            detail = r.reason or ""
        out.print(f"{mark} {escape(r.name)}: {escape(detail)}")
        for w in r.warnings:
            out.print(f"    [yellow]warning:[/] {escape(w)}")
        sys.stdout.flush()

    use_bar = not quiet and out.is_terminal
    if use_bar:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=out, transient=True)
        files_task = bar.add_task("files", total=None)
        chunk_task = bar.add_task("chunks", total=None)
        bar.start()
    else:
        bar = None

    finished = [0]

    def on_progress(p) -> None:  # noqa: ANN001
        if p.stage == "done" and p.file_index:
            finished[0] += 1
        if bar is not None:
            if p.stage == "file":
                bar.update(files_task, total=p.file_total, completed=p.file_index - 1,
                           description=f"files ({escape(p.name)[:40]})")
                bar.update(chunk_task, total=None, completed=0, description="chunks (reading)")
            elif p.stage == "ocr":
                bar.update(chunk_task, total=p.total, completed=p.done, description="pages (OCR)")
            elif p.stage == "chunks":
                bar.update(chunk_task, total=p.total, completed=p.done, description="chunks (embedding)")
            elif p.stage == "done":
                bar.update(files_task, completed=finished[0])
            elif p.stage == "index":
                bar.update(chunk_task, description="updating BM25 index")
        elif not quiet and p.stage == "file":
            out.print(f"[{p.file_index}/{p.file_total}] {escape(p.name)} ...")
            sys.stdout.flush()
        elif not quiet and p.stage == "ocr":
            out.print(f"    OCR page {p.done}/{p.total}")
            sys.stdout.flush()
        if p.stage == "done" and p.result is not None:
            report(p.result)

    try:
        summary = _run(lambda: service.ingest_paths(kb, paths, progress=on_progress))
    finally:
        if bar is not None:
            bar.stop()
    created = " (new knowledge base)" if summary.created_kb else ""
    out.print(f"[bold]{escape(summary.kb)}[/]{created}: {len(summary.ingested)} ingested, "
              f"{len(summary.skipped)} skipped, {len(summary.failed)} failed")
    raise typer.Exit(1 if summary.failed else 0)


@app.command()
def docs(kb: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the documents of a knowledge base (failed files included, with the reason)."""
    rows = _run(lambda: _service().documents(kb))
    if as_json:
        print(json.dumps([{"id": d.id, "filename": d.filename, "status": d.status, "pages": d.pages,
                           "chunks": d.chunks, "sha256": d.sha256, "error": d.error,
                           "warnings": d.warnings, "added": d.created_at.isoformat()} for d in rows],
                         ensure_ascii=False))
        return
    if not rows:
        out.print(f"'{escape(kb)}' has no documents yet: ragkb ingest '{escape(kb)}' FILES...")
        return
    table = Table("id", "file", "status", "pages", "chunks", "added", "note")
    for d in rows:
        note = d.error or (d.warnings or "")
        status = "[red]failed[/]" if d.status == "failed" else d.status
        table.add_row(d.id[:8], escape(d.filename), status, str(d.pages or "-"), str(d.chunks),
                      d.created_at.strftime("%Y-%m-%d %H:%M"), escape(note))
    out.print(table)


@app.command()
def rm(kb: str, doc: Annotated[str, typer.Argument(help="File name or document id (prefix).")]) -> None:
    """Remove a document and all of its chunks."""
    row = _run(lambda: _service().delete_document(kb, doc))
    out.print(f"removed {escape(row.filename)} ({row.chunks} chunks) from '{escape(kb)}'")


chunk_app = typer.Typer(help="See a document's chunks; switch a chunk off (out of search and answers) or on.",
                        no_args_is_help=True)
app.add_typer(chunk_app, name="chunks")


@chunk_app.command("list")
def chunks_list(
    kb: str,
    doc: Annotated[str, typer.Argument(help="File name or document id (prefix).")],
    contains: Annotated[Optional[str], typer.Option("--contains", help="Only chunks holding this text.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A document's chunks in order: id, page, section, length, enabled, text."""
    row, chunks = _run(lambda: _service().document_chunks(kb, doc, contains))
    if as_json:
        print(json.dumps([{"id": c.id, "index": c.idx, "page": c.page, "section": c.section, "length": len(c.text),
                           "enabled": c.enabled, "text": c.text} for c in chunks], ensure_ascii=False))
        return
    out.print(f"[bold]{escape(row.filename)}[/]: {len(chunks)} chunk(s)" + (f" containing '{escape(contains)}'" if contains else ""))
    for c in chunks:
        state = "" if c.enabled else " [red](disabled)[/]"
        where = [f"page {c.page}"] if c.page else []
        where += [escape(c.section)] if c.section else []
        where.append(f"{len(c.text)} chars")
        out.print(f"[bold]{escape(c.id)}[/]{state}  [dim]{' · '.join(where)}[/]")
        snippet = " ".join(c.text.split())
        out.print(f"   {escape(snippet[:200])}{'…' if len(snippet) > 200 else ''}")


def _switch(kb: str, chunk_id: str, enabled: bool) -> None:
    c = _run(lambda: _service().set_chunk_enabled(kb, chunk_id, enabled))
    out.print(f"chunk {escape(c.id)} {'enabled' if enabled else 'disabled: no longer searched or used in answers'}")


@chunk_app.command("disable")
def chunks_disable(kb: str, chunk_id: str) -> None:
    """Switch a chunk off: excluded from search and answers (survives restarts, reindex, re-ingest)."""
    _switch(kb, chunk_id, False)


@chunk_app.command("enable")
def chunks_enable(kb: str, chunk_id: str) -> None:
    """Switch a chunk back on."""
    _switch(kb, chunk_id, True)


@app.command()
def page(
    kb: str,
    doc: Annotated[str, typer.Argument(help="A PDF's file name or document id (prefix).")],
    number: Annotated[int, typer.Argument(help="Page number (1-based).")],
    highlight: Annotated[Optional[str], typer.Option("--highlight", help="Text to highlight (a cited passage).")] = None,
    output: Annotated[Optional[Path], typer.Option("--out", "-o", help="PNG file (default DOC-pN.png).")] = None,
) -> None:
    """The source preview: a page of a PDF's kept original as PNG, with a passage highlighted."""
    png, boxes = _run(lambda: _service().page_image(kb, doc, number, highlight))
    output = output or Path(f"{Path(doc).stem}-p{number}.png")
    output.write_bytes(png)
    found = f", {boxes} box(es) highlighted" if highlight else ""
    out.print(f"wrote {escape(str(output))}{found}")
    if highlight and not boxes:
        err.print("[yellow]warning:[/] the passage was not found on that page (a page read by OCR has no text layer)")


@app.command()
def reindex(
    kb: str,
    model: Annotated[Optional[str], typer.Option(help="Embedding model of the new index (default: the configured "
                                                 "RAGKB_EMBEDDING_MODEL). A packaged name, a sentence-transformers "
                                                 "folder or a model in the local Hugging Face cache.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Switch without asking once the new index is built.")] = False,
    no_switch: Annotated[bool, typer.Option("--no-switch", help="Build and compare only; switch later with "
                                            "--switch.")] = False,
    switch: Annotated[bool, typer.Option("--switch", help="Switch to the new index built earlier.")] = False,
    cancel: Annotated[bool, typer.Option("--cancel", help="Delete the new index (the knowledge base keeps its "
                                         "current one).")] = False,
    status: Annotated[bool, typer.Option("--status", help="Show the new index's progress and comparison.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Rebuild a knowledge base's index with another embedding model, safely: the new index is built beside the old
    one (which keeps answering; a killed build resumes when run again), both are compared on the knowledge base's
    own questions, and the switch happens when you confirm. The old index is deleted only after the switch."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    service = _service()
    if switch or cancel or status:
        if switch:
            result = _run(lambda: service.switch_index(kb))
            out.print(f"'{escape(result.name)}' now answers from its new index: {result.chunks} chunks, "
                      f"{escape(result.embedding_model)} (dimension {result.embedding_dim}); the old index is deleted")
        elif cancel:
            gone = _run(lambda: service.cancel_index_build(kb))
            out.print("the new index is deleted; the knowledge base keeps its current one" if gone else
                      f"'{escape(kb)}' has no new index being built")
        else:
            st = _run(lambda: service.reindex_status(kb))
            if as_json:
                print(json.dumps(st.as_dict() if st else None, ensure_ascii=False, indent=1))
            elif st is None:
                out.print(f"'{escape(kb)}' has no new index being built (current model: "
                          f"{escape(_run(lambda: service.kb(kb)).embedding_model)})")
            else:
                _print_build(st)
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"embedding chunks with {model or service.settings.embedding_model}", total=None)
        st = _run(lambda: service.build_index(kb, model, progress=lambda d, t: bar.update(task, completed=d, total=t)))
    if as_json:
        print(json.dumps(st.as_dict(), ensure_ascii=False, indent=1))
    else:
        _print_build(st)
    if no_switch:
        return
    if not yes:
        if not sys.stdin.isatty():
            out.print(f"not switched (no terminal to confirm): ragkb reindex '{escape(kb)}' --switch to switch, "
                      "--cancel to delete the new index")
            return
        if not typer.confirm(f"Switch '{kb}' to the new index now?", default=False):
            out.print(f"not switched; the new index is kept: ragkb reindex '{escape(kb)}' --switch or --cancel")
            return
    result = _run(lambda: service.switch_index(kb))
    out.print(f"switched: '{escape(result.name)}' answers from {escape(result.embedding_model)} "
              f"({result.chunks} chunks); the old index is deleted")


def _print_build(st) -> None:  # noqa: ANN001 - rag.reindex.BuildStatus
    """A new index's state and, once built, its comparison with the serving index, per question."""
    state = {"building": "building" + (" (running)" if st.running else " (stopped: run the same command to resume)"),
             "built": "built", "failed": f"failed: {st.error} (run the same command to resume)"}[st.status]
    resumed = f" (resumed: {st.reused} were embedded before)" if st.reused else ""
    out.print(f"[bold]{escape(st.kb)}[/]: {escape(st.old_model)} -> {escape(st.model)}: {state}, "
              f"{st.done}/{st.total} chunks{resumed}")
    cmp = st.comparison
    if cmp is None:
        return
    table = Table("question", "kind", "expected passage", "rank before", "rank after", "top-5 overlap",
                  title=f"Retrieval before and after: {cmp.summary()}")
    for c in cmp.cases:
        q = c.question if len(c.question) <= 40 else c.question[:39] + "…"
        table.add_row(escape(q), c.kind, escape(c.expected or "-"), str(c.rank_before or "-") if c.expected else "",
                      str(c.rank_after or "-") if c.expected else "", f"{c.overlap:.0%}")
    out.print(table)


@app.command()
def search(
    kb: str,
    query: str,
    k: Annotated[Optional[int], typer.Option("-k", help="How many chunks.")] = None,
    doc: Annotated[Optional[list[str]], typer.Option("--doc", help="Only in this document (repeatable).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="The retrieval test: what the answer chain would see, "
                                          "with the answer gate's verdict per chunk.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Hybrid search: ranked chunks with file, page, section and score."""
    service = _service()
    if explain:
        if doc:
            _fail("--explain shows what the answer chain sees, over the whole knowledge base: drop --doc")
        explained = _run(lambda: service.retrieval_test(kb, query, k=k or 10))
        hits = [e.hit for e in explained]
    else:
        explained = []
        hits = _run(lambda: service.search(kb, query, k=k, documents=doc))
    if as_json:
        rows = [{"rank": i, "file": h.filename, "page": h.page, "section": h.section,
                 "score": round(h.score, 6), "dense_rank": h.dense_rank, "bm25_rank": h.bm25_rank,
                 "doc_id": h.doc_id, "chunk_id": h.chunk_id, "text": h.text} for i, h in enumerate(hits, start=1)]
        for row, e in zip(rows, explained):
            row["gate"] = {"kept": e.kept, "in_prompt": e.in_prompt, "coverage": e.coverage, "dense_similarity": e.dense,
                           "why": e.why}
        print(json.dumps(rows, ensure_ascii=False))
        return
    if not hits:
        out.print("no matching chunks")
        return
    for i, h in enumerate(hits, start=1):
        where = escape(h.filename) + (f", page {h.page}" if h.page else "") + (f", {escape(h.section)}" if h.section else "")
        legs = ", ".join(x for x in (f"dense #{h.dense_rank}" if h.dense_rank else "",
                                     f"bm25 #{h.bm25_rank}" if h.bm25_rank else "") if x)
        out.print(f"[bold]{i}.[/] {where}  [dim]score {h.score:.4f} ({legs})[/]")
        if explained:
            e = explained[i - 1]
            verdict = "[green]in the prompt[/]" if e.in_prompt else ("[yellow]kept[/]" if e.kept else "[red]dropped by the gate[/]")
            out.print(f"   {verdict}: [dim]{escape(e.why)}[/]")
        snippet = " ".join(h.text.split())
        out.print(f"   {escape(snippet[:300])}{'…' if len(snippet) > 300 else ''}")


@app.command()
def demo() -> None:
    """Ingest the bundled sample documents into 'ragkb demo', search them, and answer a question."""
    samples = Path(__file__).resolve().parent / "samples"
    service = _service()
    summary = _run(lambda: service.ingest_paths("ragkb demo", [samples]))
    for r in summary.results:
        out.print(f"{r.status:9} {escape(r.name)} {escape(r.reason or '')}")
    for q in ("How do I re-index after changing the embedding model?", "支持哪些文件格式？"):
        out.print(f"\n[bold]search:[/] {escape(q)}")
        for i, h in enumerate(service.search("ragkb demo", q, k=3), start=1):
            where = escape(h.filename) + (f" > {escape(h.section)}" if h.section else "")
            out.print(f"  {i}. {where}: {escape(' '.join(h.text.split())[:120])}")
    question = "ragkb 支持哪些文件格式？"
    out.print(f"\n[bold]ask:[/] {escape(question)}  [dim](embedded model, first start assembles and verifies it)[/]")
    try:
        _print_answer(service, "ragkb demo", question, [])
    finally:
        service.close()
    out.print("\nTry: ragkb ask 'ragkb demo' \"your question\"  |  ragkb chat 'ragkb demo'  |  ragkb --help")


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default RAGKB_HOST or 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default RAGKB_PORT or 7860).")] = None,
) -> None:
    """Start the web UI (and the API) on http://127.0.0.1:7860."""
    from app.server import serve as run_server

    _service().close()  # validates the configuration and the data directory before starting
    s = _settings()
    out.print(f"ragkb: open http://{host or s.host}:{port or s.port} in a browser (Ctrl+C stops)")
    run_server(host or s.host, port or s.port, settings=s)


# --- answers -------------------------------------------------------------------------------
def _print_answer(service, kb: str, question: str, history: list[tuple[str, str]]) -> tuple[str, bool]:  # noqa: ANN001
    """Stream one answer to the terminal; returns (answer text, ok)."""
    from rag.events import AnswerCollector, Done, Failed, Sources, Status, Token

    got = AnswerCollector()
    for ev in map(got.add, service.stream_answer(kb, question, history)):
        if isinstance(ev, Status):
            err.print(f"[dim]… {escape(ev.text)}[/]")
        elif isinstance(ev, Token):
            out.print(escape(ev.text), end="")
            sys.stdout.flush()
        elif isinstance(ev, Failed):
            if got.parts:
                out.print()
            err.print(f"[bold red]error:[/] {escape(ev.text)}")
        elif isinstance(ev, Sources):
            out.print()
            if ev.sources:
                out.print("\n[bold]Sources[/]")
                for src in ev.sources:
                    where = escape(src.filename) + (f", page {src.page}" if src.page else "") + \
                        (f", {escape(src.section)}" if src.section else "")
                    out.print(f"  [{src.n}] {where}")
                    out.print(f"      [dim]{escape((src.evidence or src.snippet)[:300])}[/]")
                    for sentence in src.left_out:
                        out.print(f"      [yellow]not shown to the model, it reads as an instruction to it:[/] "
                                  f"{escape(sentence[:200])}")
        elif isinstance(ev, Done):
            for claim in ev.unsupported_claims:
                if claim.get("kind") == "uncited":
                    err.print("[yellow]warning:[/] this answer cites no passage and most of its words are not in the "
                              "passages found: it probably comes from the model's own knowledge, not your documents")
                    continue
                cites = "".join(f"[{n}]" for n in claim["cites"])
                err.print(f"[yellow]warning:[/] not found in {cites}: {escape(', '.join(claim['missing']))} "
                          f"— \"{escape(claim['sentence'][:120])}\"")
    return got.text, got.error is None


@app.command()
def ask(kb: str, question: str) -> None:
    """Answer a question from a knowledge base, streaming, then list the cited sources."""
    service = _service()
    try:
        _, ok = _print_answer(service, kb, question, [])
    finally:
        service.close()
    raise typer.Exit(0 if ok else 2)


@app.command()
def chat(kb: str) -> None:
    """Interactive multi-turn chat with a knowledge base (follow-up questions understand the conversation)."""
    service = _service()
    _run(lambda: service.kb(kb))
    history: list[tuple[str, str]] = []
    out.print(f"Chatting with [bold]{escape(kb)}[/]. Empty line or Ctrl-D to quit; /new starts over.")
    try:
        while True:
            try:
                question = input("\nyou> ").strip()
            except EOFError:
                break
            if not question:
                break
            if question == "/new":
                history.clear()
                out.print("[dim]new conversation[/]")
                continue
            out.print("ragkb> ", end="")
            answer, ok = _print_answer(service, kb, question, history)
            if ok:  # a failed turn is not part of the conversation; the user can simply ask again
                history += [("user", question), ("assistant", answer)]
    except KeyboardInterrupt:
        out.print()
    finally:
        service.close()


eval_app = typer.Typer(help="Measure ragkb against baselines on evaluation sets you bring (BEIR format, QA, PDFs, your users' flagged answers).",
                       no_args_is_help=True)
app.add_typer(eval_app, name="eval")

JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Write the metrics as JSON here.")]
MarkdownOpt = Annotated[Optional[Path], typer.Option("--markdown", help="Write a Markdown table here.")]
PlotOpt = Annotated[Optional[Path], typer.Option("--plot", help="Write a PNG bar chart here.")]
OutDirOpt = Annotated[Optional[Path], typer.Option(
    "--out-dir", help="Write JSON, Markdown, PNG and per-question results into this folder.")]
LimitOpt = Annotated[Optional[int], typer.Option(help="Sample this many questions (fixed seed) so a run fits the CPU.")]


def _eval_outputs(result: dict, title: str, stem: str, json_out: Optional[Path], md_out: Optional[Path],
                  plot_out: Optional[Path], out_dir: Optional[Path], plot_metrics: list[str] | None = None) -> None:
    from app.evaluation.report import markdown, write_outputs

    if out_dir:
        json_out = json_out or out_dir / f"{stem}.json"
        md_out = md_out or out_dir / f"{stem}.md"
        plot_out = plot_out or out_dir / f"{stem}.png"
    out.print(markdown(result, title))
    for path in write_outputs(result, title, json_out, md_out, plot_out, plot_metrics):
        out.print(f"wrote {escape(str(path))}")


def _need_set(path: Path, *names: str) -> None:
    for name in names:
        if not list(path.glob(name)):
            _fail(f"{path}: {name} not found (see README, Evaluation, for the expected layout)")


@eval_app.command("retrieval")
def eval_retrieval(
    set_dir: Annotated[Path, typer.Argument(help="Folder with corpus.jsonl, queries.jsonl, qrels/*.tsv.")],
    json_out: JsonOpt = None, markdown_out: MarkdownOpt = None, plot_out: PlotOpt = None, out_dir: OutDirOpt = None,
    limit: LimitOpt = None,
    per_query_dir: Annotated[Optional[Path], typer.Option(help="Save per-query results here.")] = None,
    baselines: Annotated[bool, typer.Option(help="Also run the bm25 (whole documents) and naive LangChain baselines.")] = True,
) -> None:
    """Ingest a BEIR set into a temporary knowledge base and report nDCG@10, MRR@10, Recall@k against baselines."""
    from app.evaluation.retrieval import evaluate

    _need_set(set_dir, "corpus.jsonl", "queries.jsonl", "qrels/*.tsv")
    result = _run(lambda: evaluate(set_dir, _settings(), limit=limit, out_dir=per_query_dir or out_dir,
                                   baselines=baselines))
    for pair, metrics in result["_ci"].items():
        m = metrics["ndcg@10"]
        out.print(f"{pair}: nDCG@10 difference {m['diff']:+.4f} (95% CI {m['ci95_low']:+.4f} .. {m['ci95_high']:+.4f})")
    _eval_outputs(result, f"Retrieval: {set_dir.name}", f"{set_dir.name}.retrieval", json_out, markdown_out,
                  plot_out, out_dir, ["ndcg@10", "mrr@10", "recall@1", "recall@10", "recall@100"])


@eval_app.command("answers")
def eval_answers(
    set_dir: Annotated[Path, typer.Argument(help="A QA set: corpus.jsonl, queries.jsonl, qrels/*.tsv, answers.jsonl; "
                                                 "or a manual dev set (app/evaluation/devsets/*.jsonl).")],
    json_out: JsonOpt = None, markdown_out: MarkdownOpt = None, plot_out: PlotOpt = None, out_dir: OutDirOpt = None,
    limit: LimitOpt = None,
    baseline: Annotated[bool, typer.Option(help="Also answer with the naive 'stuff the top chunks' chain.")] = True,
    public: Annotated[Optional[Path], typer.Option(
        help="Manual dev sets: the public evaluation folder that holds pdf_ingest_dev.")] = None,
) -> None:
    """Answer every question with ragkb and the naive chain (same LLM); score answers and citations. A manual dev
    set is asked as one conversation about its PDF (ragkb only)."""
    from app.evaluation.answers import evaluate

    if set_dir.suffix == ".jsonl":
        from app.evaluation.manual import MAN_PAGES, evaluate_manual, find_documents

        if not set_dir.exists():
            _fail(f"{set_dir}: not found")
        try:
            if set_dir.stem not in MAN_PAGES:  # a man-page set renders its pages when it runs
                find_documents(set_dir, public, set_dir.parent)  # its PDF or HTML chapters exist
        except FileNotFoundError as exc:
            _fail(str(exc))
        result = _run(lambda: evaluate_manual(set_dir, _settings(), public=public, limit=limit, out_dir=out_dir,
                                              progress=lambda m: out.print(escape(m))))
        _eval_outputs(result, f"Answers: {set_dir.stem} (one conversation)", f"{set_dir.stem}.answers",
                      json_out, markdown_out, plot_out, out_dir)
        return
    _need_set(set_dir, "corpus.jsonl", "queries.jsonl", "answers.jsonl")
    result = _run(lambda: evaluate(set_dir, _settings(), limit=limit, out_dir=out_dir, baseline=baseline,
                                   progress=lambda m: out.print(escape(m))))
    _eval_outputs(result, f"Answers: {set_dir.name}" + (f" (--limit {limit})" if limit else ""),
                  f"{set_dir.name}.answers", json_out, markdown_out, plot_out, out_dir)


@eval_app.command("gate")
def eval_gate(
    public: Annotated[Path, typer.Argument(help="The public evaluation folder (cmrc2018_trial, rgb_zh_dev, scifact_train, pdf_ingest_dev).")],
    json_out: JsonOpt = None, markdown_out: MarkdownOpt = None, plot_out: PlotOpt = None, out_dir: OutDirOpt = None,
    limit: Annotated[int, typer.Option(help="Questions per set (fixed seed).")] = 100,
    cases: Annotated[Optional[Path], typer.Option(
        help="Keep the scored questions in this JSON file; reused when it exists (choosing again takes seconds).")] = None,
) -> None:
    """Answerability gate: false refusals and refusals of unanswerable questions, old rule, current settings and
    the best rule on the dev sets (no model call)."""
    from app.evaluation.gate import evaluate

    for name in ("cmrc2018_trial", "rgb_zh_dev", "scifact_train"):
        _need_set(public / name, "corpus.jsonl")
    result = _run(lambda: evaluate(public, _settings(), limit=limit, cases_path=cases,
                                   progress=lambda m: out.print(escape(m))))
    _eval_outputs(result, "Answerability gate", "gate", json_out, markdown_out, plot_out, out_dir,
                  ["false_refusal_rate", "unanswerable_refusal_rate"])


@eval_app.command("injection")
def eval_injection(
    split: Annotated[str, typer.Option(help="dev (tune on these), holdout (run once, at the end) or all.")] = "dev",
    json_out: JsonOpt = None, markdown_out: MarkdownOpt = None, out_dir: OutDirOpt = None,
    cases: Annotated[Optional[Path], typer.Option(
        help="Your own cases (JSONL, the fields of app/evaluation/injection_cases/README.md); default: ragkb's.")] = None,
) -> None:
    """Prompt injection: documents whose answering section carries an injected instruction, asked through the
    OpenAI-compatible route with the defence off and on (same run): share of replies that follow it, share right."""
    from app.evaluation.injection import evaluate_injection

    if split not in ("dev", "holdout", "all"):
        _fail(f"--split {split}: use dev, holdout or all")
    if cases and not cases.exists():
        _fail(f"{cases}: not found")
    result = _run(lambda: evaluate_injection(_settings(), split=split, out_dir=out_dir, cases_path=cases,
                                             progress=lambda m: out.print(escape(m))))
    _eval_outputs(result, f"Prompt injection ({split})", f"injection.{split}", json_out, markdown_out, None, out_dir)


@eval_app.command("pages")
def eval_pages(
    devsets: Annotated[list[Path], typer.Argument(help="Manual dev sets (app/evaluation/devsets/*.jsonl).")],
    k: Annotated[int, typer.Option("-k", help="How many search hits count.")] = 5,
    json_out: JsonOpt = None, markdown_out: MarkdownOpt = None, out_dir: OutDirOpt = None,
    public: Annotated[Optional[Path], typer.Option(
        help="The public evaluation folder that holds pdf_ingest_dev.")] = None,
) -> None:
    """Gold page in the top k search hits for the manual dev sets' questions (Chinese and English questions about
    the same PDF: the cross-language check), per set and language, ragkb against each search leg alone."""
    from app.evaluation.manual import evaluate_pages

    for d in devsets:
        if not d.exists():
            _fail(f"{d}: not found")
    result = _run(lambda: evaluate_pages(devsets, _settings(), public=public, k=k, out_dir=out_dir,
                                         progress=lambda m: out.print(escape(m))))
    _eval_outputs(result, f"Gold page in the top {k}", "manual.pages", json_out, markdown_out, None, out_dir)


@eval_app.command("pdf")
def eval_pdf(
    set_dir: Annotated[Path, typer.Argument(help="Folder with <name>.truth.json and pdfs/<name>.pdf.")],
    json_out: JsonOpt = None, markdown_out: MarkdownOpt = None, plot_out: PlotOpt = None, out_dir: OutDirOpt = None,
) -> None:
    """PDF text recovery (probe recall) and outline page attribution, ragkb against PyPDFLoader."""
    from app.evaluation.pdfs import evaluate_pdf_ingest

    _need_set(set_dir, "*.truth.json")
    result = _run(lambda: evaluate_pdf_ingest(set_dir, _settings(), progress=lambda m: out.print(escape(m))))
    _eval_outputs(result, f"PDF ingest: {set_dir.name}", f"{set_dir.name}.pdf", json_out, markdown_out, plot_out,
                  out_dir)


@eval_app.command("financebench")
def eval_financebench(
    set_dir: Annotated[Path, typer.Argument(help="Folder with questions.jsonl and pdfs/ (FinanceBench layout).")],
    json_out: JsonOpt = None, markdown_out: MarkdownOpt = None, plot_out: PlotOpt = None, out_dir: OutDirOpt = None,
    limit: LimitOpt = None,
    baseline: Annotated[bool, typer.Option(help="Also run the naive PyPDFLoader + Chroma pipeline.")] = True,
    answers: Annotated[bool, typer.Option(
        help="Also answer each question (ragkb and the naive chain, same LLM) and check cited pages against the gold pages.")] = False,
) -> None:
    """Gold evidence page recall@k over one knowledge base holding every filing, ragkb against PyPDFLoader."""
    from app.evaluation.pdfs import evaluate_financebench

    _need_set(set_dir, "questions.jsonl", "pdfs/*.pdf")
    result = _run(lambda: evaluate_financebench(set_dir, _settings(), limit=limit, baseline=baseline,
                                                out_dir=out_dir, answers=answers,
                                                progress=lambda m: out.print(escape(m))))
    _eval_outputs(result, f"FinanceBench page recall: {set_dir.name}", f"{set_dir.name}.pages", json_out,
                  markdown_out, plot_out, out_dir)


@eval_app.command("cases")
def eval_cases(
    cases_file: Annotated[Path, typer.Argument(help="The web UI's Evaluation set export (JSONL: question, kb, "
                                                    "expected_answer for corrections).")],
    json_out: JsonOpt = None, markdown_out: MarkdownOpt = None, plot_out: PlotOpt = None, out_dir: OutDirOpt = None,
    kb: Annotated[Optional[str], typer.Option(help="Ask every case in this knowledge base instead of the one it names.")] = None,
    with_corrections: Annotated[bool, typer.Option(
        help="Let the chain use the stored user corrections (default: documents and model alone).")] = False,
) -> None:
    """Re-ask the questions users marked not helpful or corrected, on your knowledge bases, and score today's answers."""
    from app.evaluation.cases import evaluate

    # a missing or unusable file is a CasesFileError (a RagkbError): _run reports it and exits 2
    result = _run(lambda: evaluate(cases_file, _settings(), kb=kb, with_corrections=with_corrections,
                                   out_dir=out_dir, progress=lambda m: out.print(escape(m))))
    _eval_outputs(result, f"User cases: {cases_file.name}", f"{cases_file.stem}.cases", json_out, markdown_out,
                  plot_out, out_dir)
    if any(r["error"] for r in result["_rows"]):  # e.g. a knowledge base that no longer exists
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
