"""Source preview: pick a cited source, see its PDF page with the passage highlighted, or for the other
formats its section with the passage marked (all text escaped: no document HTML is ever live)."""

from __future__ import annotations

import io

import gradio as gr

from app.ui.common import Handlers
from app.ui.render import esc
from app.ui_text import text
from rag.errors import RagkbError


def preview_choices(sources: list[dict]) -> list[tuple[str, str]]:
    """Dropdown entries for the cited document sources: "[n] file, p. N", valued "doc_id chunk_id": the value
    carries what the preview needs, so a pick does not depend on other session state."""
    return [(f"[{s['n']}] {s['filename']}" + (f", p. {s['page']}" if s.get("page") else ""),
             f"{s['doc_id']} {s['chunk_id']}")
            for s in sources if s.get("kind", "document") == "document" and s.get("doc_id") and s.get("chunk_id")]


def preview_update(sources: list[dict]) -> dict:
    return {"choices": preview_choices(sources), "value": None}


class PreviewHandlers(Handlers):
    def on_pick(self, kb: str | None, pick: str | None, request: gr.Request) -> dict:
        c = self.c
        doc_id, _, chunk_id = (pick or "").partition(" ")
        if not kb or not doc_id or not chunk_id:
            return {c.preview_image: gr.update(value=None, visible=False), c.preview_text: ""}
        try:
            view = self.svc(request).source_view(kb, doc_id, chunk_id)
            if view.page is not None:
                from PIL import Image

                png, boxes = self.svc(request).page_image(kb, doc_id, view.page, view.passage)
                note = "" if boxes else f"<p class='preview-note'>{esc(text(request, 'no_highlight'))}</p>"
                return {c.preview_image: gr.update(value=Image.open(io.BytesIO(png)), visible=True),
                        c.preview_text: note}
        except RagkbError as exc:
            return {c.preview_image: gr.update(value=None, visible=False),
                    c.preview_text: f"<p class='preview-note'>{esc(text(request, 'no_preview', why=exc))}</p>"}
        where = " > ".join(x for x in (view.filename, view.section or "") if x)
        return {c.preview_image: gr.update(value=None, visible=False),
                c.preview_text: f"<div class='preview-where'><b>{esc(where)}</b></div><div class='preview-body'>"
                                f"{esc(view.before)}<mark>{esc(view.passage)}</mark>{esc(view.after)}</div>"}

    def wire(self) -> None:
        c = self.c
        c.src_pick.input(self.on_pick, [c.kb, c.src_pick], [c.preview_image, c.preview_text])
