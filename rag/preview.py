"""Source preview: a PDF page rendered as an image with the cited passage's text boxes highlighted.

The passage is found on the page through pdfium's own text search (line by line, so a passage that
the loader cleaned or re-flowed is still found); nothing of the document is ever rendered as HTML.
A page read by OCR has no text layer: it is shown without a highlight.
"""

from __future__ import annotations

import io
from pathlib import Path

from rag.errors import RagkbError
from rag.pdfium_guard import PDFIUM_LOCK

HIGHLIGHT = (255, 214, 0, 110)  # translucent yellow (RGBA)


def passage_pieces(passage: str, min_len: int = 4) -> list[str]:
    """The lines of a passage worth searching for (long enough to be specific)."""
    pieces = []
    for line in passage.splitlines():
        line = " ".join(line.split())
        if len(line) >= min_len:
            pieces.append(line)
    return pieces


def render_page(pdf: Path, page: int, highlight: str | None = None, scale: float = 1.5) -> tuple[bytes, int]:
    """(PNG bytes, number of highlighted boxes) of 1-based `page`."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

    with PDFIUM_LOCK:  # pdfium is not thread-safe (rag.pdfium_guard)
        doc = pdfium.PdfDocument(str(pdf))
        try:
            if not 1 <= page <= len(doc):
                raise RagkbError(f"No page {page}: the document has {len(doc)} page(s).")
            p = doc[page - 1]
            try:
                bitmap = p.render(scale=scale)
                try:
                    image = bitmap.to_pil().convert("RGBA")  # a copy: the bitmap is closed here, not by a finaliser
                finally:
                    bitmap.close()
                boxes = _boxes(p, highlight) if highlight else []
                height = p.get_height()
            finally:
                p.close()
        finally:
            doc.close()
    if boxes:
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        for left, bottom, right, top in boxes:
            draw.rectangle([left * scale, (height - top) * scale, right * scale, (height - bottom) * scale],
                           fill=HIGHLIGHT)
        image = Image.alpha_composite(image, overlay)
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG")
    return out.getvalue(), len(boxes)


def _find(textpage, text: str) -> list[tuple[float, float, float, float]]:  # noqa: ANN001
    searcher = textpage.search(text, match_case=False, match_whole_word=False)
    try:
        found = searcher.get_next()
    finally:
        searcher.close()
    if found is None:
        return []
    index, count = found
    return [textpage.get_rect(i) for i in range(textpage.count_rects(index, count))]


def _boxes(page, passage: str) -> list[tuple[float, float, float, float]]:  # noqa: ANN001
    textpage = page.get_textpage()
    rects = []
    try:
        for piece in passage_pieces(passage):
            found = _find(textpage, piece)
            if found:
                rects += found
                continue
            # re-flowed or cleaned (line breaks, dropped headers): find it window by window
            for start in range(0, min(len(piece), 1600), 16):
                rects += _find(textpage, piece[start:start + 16]) if len(piece[start:start + 16].strip()) >= 4 else []
    finally:
        textpage.close()
    return rects
