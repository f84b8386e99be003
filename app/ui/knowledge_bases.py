"""Knowledge-base and document handlers: create, rename, delete, upload with progress, remove a file."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import gradio as gr

from app.services import Upload, safe_display_name
from app.ui.common import Handlers, user_of
from app.ui.render import result_html
from app.ui_text import text
from rag.errors import RagkbError


class KnowledgeBaseHandlers(Handlers):
    def on_kb_change(self, name: str | None, cid: str, request: gr.Request) -> dict:
        if cid and name:
            try:
                self.svc(request).switch_kb(cid, name, user_of(request))
            except RagkbError:
                pass
        return self.documents_view(name, request)

    def on_create(self, name: str, request: gr.Request) -> dict:
        c = self.c
        try:
            created = self.svc(request).create_kb(name or "")
        except RagkbError as exc:
            return {c.kb_status: f"⚠️ {exc}"}
        return {c.kb: gr.update(choices=self.kb_choices(request), value=created.name),
                c.kb_status: text(request, "created", name=created.name), c.new_kb: "",
                **self.documents_view(None, request)}

    def on_rename(self, current: str | None, new_name: str, request: gr.Request) -> dict:
        c = self.c
        if not current:
            return {c.kb_status: text(request, "select_kb")}
        try:
            renamed = self.svc(request).rename_kb(current, new_name or "")
        except RagkbError as exc:
            return {c.kb_status: f"⚠️ {exc}"}
        return {c.kb: gr.update(choices=self.kb_choices(request), value=renamed.name),
                c.kb_status: text(request, "renamed", name=renamed.name), c.rename_to: ""}

    def on_delete(self, current: str | None, confirmed: bool, request: gr.Request) -> dict:
        c = self.c
        if not current:
            return {c.kb_status: text(request, "select_kb")}
        if not confirmed:
            return {c.kb_status: text(request, "confirm_first", name=current)}
        try:
            self.svc(request).delete_kb(current)
        except RagkbError as exc:
            return {c.kb_status: f"⚠️ {exc}"}
        names = self.kb_choices(request)
        value = names[0] if names else None
        return {c.kb: gr.update(choices=names, value=value), c.kb_status: text(request, "deleted", name=current),
                c.confirm: False, **self.documents_view(value, request)}

    def on_ingest(self, name: str | None, paths, request: gr.Request, progress=gr.Progress()):  # noqa: ANN001, B008
        """Ingest in a worker thread; per-file results and the progress bar update as files finish."""
        c = self.c
        if not name:
            yield {c.ingest_status: text(request, "select_kb")}
            return
        if not paths:
            yield {c.ingest_status: text(request, "no_files")}
            return
        uploads = [Upload(Path(p), safe_display_name(Path(p).name)) for p in paths]
        events: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["summary"] = self.svc(request).ingest_uploads(name, uploads, progress=events.put)
            except Exception as exc:  # reported below; the UI never crashes
                outcome["error"] = exc
            finally:
                events.put(None)

        threading.Thread(target=work, daemon=True, name="ragkb-ui-ingest").start()
        results = []
        progress(0, desc=text(request, "ingesting"))
        while (ev := events.get()) is not None:
            n = max(ev.file_total, 1)
            where = text(request, "file_n", i=max(ev.file_index, 1), n=n)
            if ev.stage == "file":
                progress((ev.file_index - 1) / n, desc=f"{where}: {ev.name} — {text(request, 'reading')}")
            elif ev.stage == "ocr" and ev.total:
                progress((ev.file_index - 1 + 0.5 * ev.done / ev.total) / n,
                         desc=f"{where}: {ev.name} — {text(request, 'ocr_page', done=ev.done, total=ev.total)}")
            elif ev.stage == "chunks" and ev.total:
                progress((ev.file_index - 1 + ev.done / ev.total) / n,
                         desc=f"{where}: {ev.name} — {text(request, 'embedding', done=ev.done, total=ev.total)}")
            elif ev.stage == "index":
                progress(0.99, desc=text(request, "indexing"))
            elif ev.stage == "done" and ev.result is not None:
                results.append(ev.result)
                yield {c.ingest_status: f"{text(request, 'ingesting')}… {where}",
                       c.ingest_results: result_html(results, request)}
        if "error" in outcome:
            yield {c.ingest_status: f"⚠️ {outcome['error']}", c.ingest_results: result_html(results, request)}
            return
        summary = outcome["summary"]
        yield {c.ingest_status: text(request, "summary", ok=len(summary.ingested), skipped=len(summary.skipped),
                                     failed=len(summary.failed)),
               c.ingest_results: result_html(summary.results, request), **self.documents_view(name, request),
               c.files: gr.update(value=None, interactive=True)}

    def on_refresh(self, name: str | None, request: gr.Request) -> dict:
        return {self.c.docs: self.docs_table(name, request), self.c.doc_pick: gr.update(choices=self.doc_choices(name, request))}

    def on_doc_delete(self, name: str | None, doc: str | None, request: gr.Request) -> dict:
        c = self.c
        if not name or not doc:
            return {c.doc_status: text(request, "select_doc")}
        try:
            row = self.svc(request).delete_document(name, doc)
        except RagkbError as exc:
            return {c.doc_status: f"⚠️ {exc}"}
        return {c.doc_status: text(request, "doc_deleted", name=row.filename), **self.documents_view(name, request)}

    def wire(self) -> None:
        c = self.c
        c.kb.input(self.on_kb_change, [c.kb, c.conv_id], [c.docs, c.doc_pick])
        created = [c.kb, c.kb_status, c.new_kb, c.docs, c.doc_pick]
        c.create_btn.click(self.on_create, [c.new_kb], created)
        c.new_kb.submit(self.on_create, [c.new_kb], created)
        c.rename_btn.click(self.on_rename, [c.kb, c.rename_to], [c.kb, c.kb_status, c.rename_to])
        c.delete_btn.click(self.on_delete, [c.kb, c.confirm], [c.kb, c.kb_status, c.confirm, c.docs, c.doc_pick])
        c.ingest_btn.click(self.on_ingest, [c.kb, c.files], [c.ingest_status, c.ingest_results, c.docs, c.doc_pick, c.files],
                           concurrency_limit=1, concurrency_id="ingest", show_progress_on=[c.ingest_status])
        c.refresh_btn.click(self.on_refresh, [c.kb], [c.docs, c.doc_pick])
        c.doc_delete_btn.click(self.on_doc_delete, [c.kb, c.doc_pick], [c.doc_status, c.docs, c.doc_pick])
