"""The workbench: see what the assistant sees. The retrieval test (ranked chunks with the answer gate's
verdict) and a document's chunks, each of which can be switched off and on."""

from __future__ import annotations

import gradio as gr

from app.ui.common import Handlers
from app.ui.render import esc
from app.ui_text import text
from rag.errors import RagkbError


def why_text(e, request, min_coverage: float) -> str:  # noqa: ANN001
    """The gate's reasons in the UI language (the API and CLI give rag.answer.gate.explain's English)."""
    parts = [text(request, "why_cov", cov=e.coverage, op=">=" if e.coverage >= min_coverage else "<", min=min_coverage)]
    if e.dense is None:
        parts.append(text(request, "why_no_dense"))
    else:
        parts.append(text(request, "why_dense", sim=e.dense, op=">=" if e.dense >= e.min_dense else "<", min=e.min_dense))
    if e.in_prompt and not e.kept:
        parts.append(text(request, "why_top"))
    return "; ".join(parts)


def retrieval_html(explained, request, min_coverage: float = 0.4) -> str:  # noqa: ANN001
    if not explained:
        return f"<p class='rt-none'>{esc(text(request, 'rt_none'))}</p>"
    head = "".join(f"<th>{esc(text(request, k))}</th>" for k in
                   ("rt_rank", "rt_where", "rt_score", "rt_bm25", "rt_dense", "rt_gate", "rt_text"))
    rows = []
    for i, e in enumerate(explained, start=1):
        h = e.hit
        where = " · ".join(str(x) for x in (h.filename, f"p. {h.page}" if h.page else "", h.section or "") if x)
        verdict = "rt_in_prompt" if e.in_prompt else ("rt_kept" if e.kept else "rt_dropped")
        snippet = " ".join(h.text.split())
        rows.append(f"<tr class='{verdict}' data-chunk='{esc(h.chunk_id)}'><td>{i}</td><td>{esc(where)}</td>"
                    f"<td>{h.score:.4f}</td><td>{h.bm25_rank or '—'}</td><td>{h.dense_rank or '—'}</td>"
                    f"<td><b>{esc(text(request, verdict))}</b><br><small>{esc(why_text(e, request, min_coverage))}</small></td>"
                    f"<td>{esc(snippet[:400])}{'…' if len(snippet) > 400 else ''}</td></tr>")
    return f"<table class='rt-table'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def chunks_html(chunks, request) -> str:  # noqa: ANN001
    head = "".join(f"<th>{esc(text(request, k))}</th>" for k in
                   ("col_index", "col_page", "col_section", "col_length", "col_text"))
    rows = []
    for ch in chunks:
        off = "" if ch.enabled else f" <span class='off'>({esc(text(request, 'disabled'))})</span>"
        rows.append(f"<tr class='{'on' if ch.enabled else 'disabled'}' data-chunk='{esc(ch.id)}'><td>{ch.idx}{off}</td>"
                    f"<td>{ch.page or ''}</td><td>{esc(ch.section or '')}</td><td>{len(ch.text)}</td>"
                    f"<td>{esc(ch.text)}</td></tr>")
    return (f"<p>{esc(text(request, 'n_chunks', n=len(chunks)))}</p><table class='chunk-table'><thead><tr>{head}</tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>")


class WorkbenchHandlers(Handlers):
    def on_retrieval_test(self, kb: str | None, query: str, k: float, request: gr.Request) -> dict:
        c = self.c
        if not kb:
            return {c.rt_results: esc(text(request, "select_kb"))}
        if not (query or "").strip():
            return {c.rt_results: esc(text(request, "rt_empty"))}
        try:
            explained = self.svc(request).retrieval_test(kb, query, int(k))
        except RagkbError as exc:
            return {c.rt_results: f"⚠️ {esc(exc)}"}
        return {c.rt_results: retrieval_html(explained, request, self.service.settings.min_lexical_coverage)}

    def on_show_chunks(self, kb: str | None, doc: str | None, contains: str, request: gr.Request) -> dict:
        c = self.c
        if not kb or not doc:
            return {c.chunks_html: "", c.chunk_pick: gr.update(choices=[], value=None)}
        try:
            _, chunks = self.svc(request).document_chunks(kb, doc, contains)
        except RagkbError as exc:
            return {c.chunks_html: f"⚠️ {esc(exc)}", c.chunk_pick: gr.update(choices=[], value=None)}
        choices = [(f"#{ch.idx}" + (f" p.{ch.page}" if ch.page else "") + (" ✗" if not ch.enabled else "") +
                    f" {' '.join(ch.text.split())[:40]}", ch.id) for ch in chunks]
        return {c.chunks_html: chunks_html(chunks, request), c.chunk_pick: gr.update(choices=choices, value=None)}

    def switch(self, enabled: bool):  # noqa: ANN201
        def handler(kb: str | None, doc: str | None, chunk: str | None, contains: str, request: gr.Request) -> dict:
            c = self.c
            if not kb or not chunk:
                return {c.chunk_status: text(request, "select_chunk")}
            try:
                ch = self.svc(request).set_chunk_enabled(kb, chunk, enabled)
            except RagkbError as exc:
                return {c.chunk_status: f"⚠️ {exc}"}
            shown = self.on_show_chunks(kb, doc, contains, request)
            shown[c.chunk_pick] = gr.update(choices=shown[c.chunk_pick]["choices"], value=ch.id)
            return {**shown, c.chunk_status: text(request, "chunk_enabled" if enabled else "chunk_disabled", n=ch.idx)}
        return handler

    def wire(self) -> None:
        c = self.c
        rt = [c.kb, c.rt_query, c.rt_k]
        c.rt_run.click(self.on_retrieval_test, rt, [c.rt_results])
        c.rt_query.submit(self.on_retrieval_test, rt, [c.rt_results])
        shown = [c.chunks_html, c.chunk_pick]
        c.doc_pick.change(self.on_show_chunks, [c.kb, c.doc_pick, c.chunk_filter], shown)
        c.chunk_filter.submit(self.on_show_chunks, [c.kb, c.doc_pick, c.chunk_filter], shown)
        switch_in = [c.kb, c.doc_pick, c.chunk_pick, c.chunk_filter]
        c.disable_chunk_btn.click(self.switch(False), switch_in, [*shown, c.chunk_status])
        c.enable_chunk_btn.click(self.switch(True), switch_in, [*shown, c.chunk_status])
