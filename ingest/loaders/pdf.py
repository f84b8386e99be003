"""PDF: text per page from pypdfium2, outline and encryption from pypdf.

pypdfium2 recovers real Chinese TeX PDFs that pypdf turns into mojibake, and is much faster;
pypdf reads bookmarks and encryption well; a PDF without bookmarks gets its sections from the font of its
heading lines (pdf_headings.py). Pages are 1-based physical page numbers. Every page is
checked: a garbled text layer (fonts without a Unicode map) or a missing one (scans) is reported
instead of being indexed as garbage. Running headers and footers are removed (running_lines.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest.loaders.base import IngestError, LoadedDocument, Segment, page_list
from ingest.loaders.pdf_headings import PDFIUM_MARKS, Line, body_size, page_headings, page_lines
from ingest.loaders.running_lines import strip_running_lines
from rag.pdfium_guard import PDFIUM_LOCK
from rag.text import garble_report

log = logging.getLogger(__name__)
_NO_MARKS = {ord(c): None for c in PDFIUM_MARKS}


@dataclass
class OutlineEntry:
    title: str
    level: int
    page: int  # 1-based
    path: str = ""  # "Chapter > Section"
    offset: int = 0  # where the title starts in the page text (0 when not found)


def _read_outline(path: Path) -> tuple[list[OutlineEntry], str | None]:
    """Bookmarks and title via pypdf; raises IngestError for encrypted files. Best effort otherwise."""
    import pypdf
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(str(path), strict=False)
    except PdfReadError as exc:
        if "encrypt" in str(exc).lower() or "password" in str(exc).lower():
            raise IngestError("encrypted PDF: it needs a password; remove the password and ingest it again") from exc
        return [], None
    except Exception:
        return [], None
    if reader.is_encrypted:
        try:
            ok = reader.decrypt("")
        except Exception:
            ok = 0
        if not ok:
            raise IngestError("encrypted PDF: it needs a password; save an unencrypted copy "
                              "(e.g. qpdf --decrypt --password=... in.pdf out.pdf) and ingest that")
    entries: list[OutlineEntry] = []

    def walk(items, level: int) -> None:  # noqa: ANN001
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:
                continue
            title = (getattr(item, "title", None) or "").strip()
            if title and page is not None and page >= 0:
                entries.append(OutlineEntry(title=" ".join(title.split()), level=level, page=page + 1))

    try:
        walk(reader.outline, 0)
    except Exception as exc:  # a broken outline must not stop the text
        log.debug("outline unreadable in %s: %s", path, exc)
    title = None
    try:
        meta = reader.metadata
        title = (meta.title or "").strip() or None if meta else None
    except Exception:
        pass
    stack: list[tuple[int, str]] = []
    for e in entries:
        while stack and stack[-1][0] >= e.level:
            stack.pop()
        stack.append((e.level, e.title))
        e.path = " > ".join(t for _, t in stack)
    return entries, title


def _font_outline(lines: dict[int, list[Line]], good: dict[int, str]) -> list[OutlineEntry]:
    """Sections from heading lines (pdf_headings.py) for a PDF without bookmarks; a heading that is no longer
    in the page's text (a running header, removed) does not count."""
    body = body_size(list(lines.values()))
    if body is None:
        return []
    return [OutlineEntry(title=t, level=0, page=n, path=t) for n in sorted(good) if n in lines
            for t, _, _ in page_headings(lines[n], body) if _title_pattern(t).search(good[n])]


def _title_pattern(title: str) -> re.Pattern[str]:
    """Match a bookmark title in page text whatever the spacing or case (small caps, 'LaTeX' as 'LATEX')."""
    chars = [re.escape(c) for c in title if not c.isspace()]
    return re.compile(r"\s*".join(chars), re.IGNORECASE)


def _extract_pages(path: Path, fonts: bool = False) -> list[tuple[str, bool, list[Line]]]:
    """(text, has_images, lines with their font when `fonts`) for every page, via pypdfium2 (under the
    process's pdfium lock: rag.pdfium_guard)."""
    with PDFIUM_LOCK:
        return _extract_pages_locked(path, fonts)


def _extract_pages_locked(path: Path, fonts: bool) -> list[tuple[str, bool, list[Line]]]:
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        msg = str(exc).lower()
        if "password" in msg:
            raise IngestError("encrypted PDF: it needs a password; remove the password and ingest it again") from exc
        raise IngestError(f"not a readable PDF (corrupt or truncated file: {exc})") from exc
    pages = []
    try:
        for i in range(len(doc)):
            page = doc[i]
            try:
                textpage = page.get_textpage()
                text = textpage.get_text_range()
                lines = page_lines(textpage, text) if fonts else []
                textpage.close()
                has_images = False
                if len(text.strip()) < 50:
                    has_images = any(True for _ in page.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE], max_depth=2))
            finally:
                page.close()
            text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
            text = text.translate(_NO_MARKS)
            pages.append((text, has_images, lines))
    finally:
        doc.close()
    return pages


def load_pdf(path: Path, min_chars_per_page: int = 20, garbled_threshold: float = 0.25, ocr: bool = True,
             ocr_dpi: int = 200, on_ocr_page: Callable[[int, int], None] | None = None,
             ocr_model: str = "auto") -> LoadedDocument:
    """`ocr`: read pages without a usable text layer (scanned, or garbled) with OCR when the `ocr` extra
    is installed; `on_ocr_page(done, total)` reports each OCR'd page."""
    from ingest.loaders.ocr import HOW_TO_ENABLE, ocr_available, ocr_pdf_pages

    outline, title = _read_outline(path)
    pages = _extract_pages(path, fonts=not outline)
    if not pages:
        raise IngestError("the PDF has no pages")

    good: dict[int, str] = {}
    empty, scanned, garbled = [], [], []
    reasons = []
    layers: dict[int, str] = {}  # the garbled text layers
    for n, (text, has_images, _lines) in enumerate(pages, start=1):
        visible = sum(1 for c in text if not c.isspace())
        if visible < min_chars_per_page:
            (scanned if has_images else empty).append(n)
            continue
        report = garble_report(text)
        if report.score >= garbled_threshold:
            garbled.append(n)
            layers[n] = text
            reasons.append(report.describe())
            continue
        good[n] = text

    ocr_done: list[int] = []
    if ocr and (scanned or garbled) and ocr_available():
        for n, text in ocr_pdf_pages(path, sorted(scanned + garbled), ocr_dpi, on_ocr_page, ocr_model).items():
            # what OCR reads must pass the same checks (a page that shows mojibake OCRs to mojibake)
            if sum(1 for c in text if not c.isspace()) >= min_chars_per_page and \
                    garble_report(text).score < garbled_threshold and _echo_share(text, layers.get(n, "")) < 0.5:
                good[n] = text
                ocr_done.append(n)
        scanned = [n for n in scanned if n not in good]
        garbled = [n for n in garbled if n not in good]
        reasons = reasons if garbled else []
    if not ocr:
        hint = "OCR is off (RAGKB_OCR=false): turn it on, or OCR the file (e.g. ocrmypdf) and add it again"
    elif not ocr_available():
        hint = HOW_TO_ENABLE
    else:
        hint = "OCR found no text on them"

    text_pages = len(good) + len(garbled)
    if not good:
        if garbled:
            raise IngestError(
                f"garbled text layer on {len(garbled)} of {len(pages)} pages ({reasons[0]}): the PDF's fonts "
                "do not map to Unicode, so its text cannot be extracted reliably; export it again as PDF with "
                "embedded Unicode fonts, or OCR it")
        raise IngestError(
            f"no text layer: none of its {len(pages)} pages has extractable text (a scanned or image-only "
            f"PDF); {hint}")
    if garbled and len(garbled) >= 0.3 * text_pages:
        raise IngestError(
            f"garbled text layer on {len(garbled)} of {text_pages} text pages (pages {page_list(garbled)}; "
            f"{reasons[0]}): indexing it would store garbage; export the PDF again with Unicode fonts or OCR it")
    warnings = []
    if garbled:
        warnings.append(f"skipped pages {page_list(garbled)}: garbled text layer")
    if scanned:
        warnings.append(f"skipped pages {page_list(scanned)}: no text layer (scanned images); {hint}")
    if ocr_done:
        warnings.append(f"read {len(ocr_done)} page(s) by OCR (pages {page_list(sorted(ocr_done))}): check the text "
                        "in the document's chunks")

    good, _removed = strip_running_lines(good)  # page headers/footers are not content to retrieve or quote
    if not outline:
        outline = _font_outline({n: p[2] for n, p in enumerate(pages, start=1)}, good)
    segments = _segments(good, outline)
    return LoadedDocument(segments, file_type="pdf", pages=len(pages), warnings=warnings, title=title,
                          ocr_pages=len(ocr_done))


def _echo_share(ocr_text: str, layer: str) -> float:
    """Share of the OCR'd characters (accents and case folded) that occur in the page's garbled text layer:
    high when the page visibly shows mojibake (then OCR only copies it), ~0 when the glyphs were right and
    only the font's Unicode map was missing (then OCR recovers the text)."""
    import unicodedata

    def fold(c: str) -> str:
        return "".join(x for x in unicodedata.normalize("NFKD", c) if not unicodedata.combining(x)).casefold()

    have = {fold(c) for c in layer if not c.isspace()}
    chars = [c for c in ocr_text if not c.isspace()]
    return sum(1 for c in chars if fold(c) in have) / len(chars) if chars and have else 0.0


def _segments(good: dict[int, str], outline: list[OutlineEntry]) -> list[Segment]:
    """Cut each page at the bookmark titles that start on it, so every segment has one section."""
    by_page: dict[int, list[OutlineEntry]] = {}
    for e in outline:
        by_page.setdefault(e.page, []).append(e)
    for page, entries in by_page.items():
        text = good.get(page, "")
        pos = 0
        for e in entries:
            m = _title_pattern(e.title).search(text, pos)
            if m is None:
                m = _title_pattern(e.title).search(text)
            e.offset = m.start() if m else 0
            if m:
                pos = m.end()
        entries.sort(key=lambda e: e.offset)
    current: str | None = None
    segments: list[Segment] = []
    for page in sorted(set(good) | set(by_page)):
        starts = by_page.get(page, [])
        text = good.get(page)
        if text is None:
            if starts:
                current = starts[-1].path
            continue
        cuts = [(0, current)]
        for e in starts:
            if e.offset == 0:
                cuts[0] = (0, e.path)
            elif cuts[-1][0] == e.offset:
                cuts[-1] = (e.offset, e.path)
            else:
                cuts.append((e.offset, e.path))
        carry: tuple[int, str] | None = None  # a heading-only piece waiting to join the next piece
        for i, (start, section) in enumerate(cuts):
            end = cuts[i + 1][0] if i + 1 < len(cuts) else len(text)
            piece = text[start:end]
            if carry is not None:
                start, piece = carry[0], carry[1] + piece
                carry = None
            if not piece.strip():
                continue
            if len(piece.strip()) < 40 and i + 1 < len(cuts):
                carry = (start, piece)
                continue
            segments.append(Segment(text=piece, page=page, section=section, offset=start))
        current = cuts[-1][1]
    return segments
