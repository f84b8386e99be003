"""Loaders by file type. Each returns a LoadedDocument or raises IngestError with the reason."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders.base import IngestError, LoadedDocument, Segment

SUPPORTED_SUFFIXES = {".pdf": "pdf", ".md": "md", ".markdown": "md", ".txt": "txt", ".docx": "docx", ".html": "html",
                      ".htm": "html"}


def file_type(path: Path) -> str | None:
    return SUPPORTED_SUFFIXES.get(path.suffix.lower())


def load(path: Path, kind: str, *, min_chars_per_page: int = 20, garbled_threshold: float = 0.25, ocr: bool = True,
         ocr_dpi: int = 200, on_ocr_page=None, ocr_model: str = "auto") -> LoadedDocument:  # noqa: ANN001
    if kind == "pdf":
        from ingest.loaders.pdf import load_pdf

        return load_pdf(path, min_chars_per_page=min_chars_per_page, garbled_threshold=garbled_threshold, ocr=ocr,
                        ocr_dpi=ocr_dpi, on_ocr_page=on_ocr_page, ocr_model=ocr_model)
    if kind == "md":
        from ingest.loaders.markdown import load_markdown

        return load_markdown(path)
    if kind == "txt":
        from ingest.loaders.text import load_text

        return load_text(path)
    if kind == "docx":
        from ingest.loaders.office import load_docx

        return load_docx(path)
    if kind == "html":
        from ingest.loaders.office import load_html

        return load_html(path)
    raise IngestError(f"unsupported file type {path.suffix or '(none)'}")


__all__ = ["IngestError", "LoadedDocument", "Segment", "SUPPORTED_SUFFIXES", "file_type", "load"]
