"""Source preview: pick a cited source, see its PDF page with the passage highlighted, or for the other
formats its section with the passage marked (all text escaped: no document HTML is ever live)."""

from __future__ import annotations

import io

import gradio as gr

from app.ui.common import Handlers
from app.ui.render import esc
from app.ui_text import text
from rag.errors import RagkbError


def preview_choices(sources: list[dict]) -> list[tuple[str, int]]:
    """Dropdown entries for the cited document sources: "[n] file, p. N"."""
    return [(f"[{s['n']}] {s['filename']}" + (f", p. {s['page']}" if s.get("page") else ""), i)
            for i, s in enumerate(sources) if s.get("kind", "document") == "document" and s.get("doc_id")]


def preview_update(sources: list[dict]) -> dict:
    return {"choices": preview_choices(sources), "value": None}


class PreviewHandlers(Handlers):
    def on_pick(self, kb: str | None, sources: list, pick, request: gr.Request) -> dict:  # noqa: ANN001
        c = self.c
        if pick is None or not kb or not sources or not 0 <= int(pick) < len(sources):
            return {c.preview_image: gr.update(value=None, visible=False), c.preview_text: ""}
        src = sources[int(pick)]
        try:
            view = self.service.source_view(kb, src["doc_id"], src["chunk_id"])
            if view.page is not None:
                from PIL import Image

                png, boxes = self.service.page_image(kb, src["doc_id"], view.page, view.passage)
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
        c.src_pick.input(self.on_pick, [c.kb, c.src_state, c.src_pick], [c.preview_image, c.preview_text])
