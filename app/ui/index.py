"""The knowledge base's embedding model: which one it uses, a note when it is an older one, and the safe switch
(build a new index beside the old one with progress, read the comparison, then switch or discard)."""

from __future__ import annotations

import time

import gradio as gr

from app.ui.common import Handlers
from app.ui.render import comparison_html
from app.ui_text import text
from rag.errors import RagkbError


class IndexHandlers(Handlers):
    def view(self, kb: str | None, request: gr.Request | None = None) -> dict:
        """The model line (and the older-model note), the state of a new index and its comparison, the buttons."""
        c = self.c
        if not kb:
            return {c.index_info: "", c.index_compare: "", c.index_switch_btn: gr.update(visible=False),
                    c.index_cancel_btn: gr.update(visible=False)}
        try:
            current = self.svc(request).kb(kb)
            note = self.svc(request).embedding_note(kb)
            st = self.svc(request).reindex_status(kb)
        except RagkbError as exc:
            return {c.index_info: f"⚠️ {exc}"}
        lines = [text(request, "index_model", model=current.embedding_model, dim=current.embedding_dim or "?")]
        if note:
            lines.append(f"⚠️ {text(request, 'index_older', model=current.embedding_model, default=self.service.settings.embedding_model)}")
        if st is not None:
            lines.append(self._state(st, request))
        out = {c.index_info: "\n\n".join(lines),
               c.index_compare: comparison_html(st.comparison, request) if st and st.comparison else "",
               c.index_switch_btn: gr.update(visible=bool(st and st.status == "built")),
               c.index_cancel_btn: gr.update(visible=st is not None)}
        if note:  # said where the knowledge base is picked, too
            out[c.kb_status] = f"⚠️ {text(request, 'kb_older_model', model=current.embedding_model)}"
        return out

    @staticmethod
    def _state(st, request) -> str:  # noqa: ANN001
        if st.status == "built":
            return text(request, "index_built", model=st.model, total=st.total)
        if st.status == "failed":
            return text(request, "index_failed", model=st.model, done=st.done, total=st.total, error=st.error or "")
        key = "index_building" if st.running else "index_stopped"
        return text(request, key, model=st.model, done=st.done, total=st.total)

    def on_build(self, kb: str | None, model: str | None, request: gr.Request, progress=gr.Progress()):  # noqa: ANN001, B008
        """Start the build in the background and follow it until it is built (or fails); the knowledge base keeps
        answering from its current index meanwhile."""
        c = self.c
        if not kb:
            yield {c.index_status: text(request, "select_kb")}
            return
        try:
            self.svc(request).start_index_build(kb, (model or "").strip() or None)
        except RagkbError as exc:
            yield {c.index_status: f"⚠️ {exc}"}
            return
        while True:
            st = self.svc(request).reindex_status(kb)
            if st is None or st.status != "building" or not st.running:
                break
            if st.total:
                progress(st.done / st.total, desc=text(request, "embedding", done=st.done, total=st.total))
            yield {c.index_status: self._state(st, request)}
            time.sleep(1.0)
        yield {c.index_status: "", **self.view(kb, request)}

    def on_switch(self, kb: str | None, request: gr.Request) -> dict:
        c = self.c
        if not kb:
            return {c.index_status: text(request, "select_kb")}
        try:
            done = self.svc(request).switch_index(kb)
        except RagkbError as exc:
            return {c.index_status: f"⚠️ {exc}"}
        return {c.index_status: text(request, "index_switched", model=done.embedding_model), c.kb_status: "",
                **self.view(kb, request), **self.documents_view(kb, request)}

    def on_cancel(self, kb: str | None, request: gr.Request) -> dict:
        c = self.c
        if not kb:
            return {c.index_status: text(request, "select_kb")}
        try:
            self.svc(request).cancel_index_build(kb)
        except RagkbError as exc:
            return {c.index_status: f"⚠️ {exc}"}
        return {c.index_status: text(request, "index_discarded"), **self.view(kb, request)}

    def wire(self) -> None:
        c = self.c
        # view() also sets the older-model note where the knowledge base is picked, so every caller lists kb_status
        shown = [c.index_info, c.index_compare, c.index_switch_btn, c.index_cancel_btn, c.kb_status]
        c.kb.change(self.view, [c.kb], shown)  # also when the page load picks the knowledge base
        c.index_build_btn.click(self.on_build, [c.kb, c.index_model], [c.index_status, *shown],
                                concurrency_limit=1, concurrency_id="ingest", show_progress_on=[c.index_status])
        c.index_switch_btn.click(self.on_switch, [c.kb], [c.index_status, *shown, c.docs, c.doc_pick])
        c.index_cancel_btn.click(self.on_cancel, [c.kb], [c.index_status, *shown])
