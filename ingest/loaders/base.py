"""What every loader returns: text segments with their page and section, or an IngestError."""

from __future__ import annotations

from dataclasses import dataclass, field


OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # compound file: an old .doc/.xls, or an encrypted .docx


class IngestError(Exception):
    """A file cannot be ingested; the message says why and what to do, without the file name
    (the pipeline adds the file name when it reports)."""


@dataclass
class Segment:
    """A run of text with one page and one section; chunks never cross segments."""

    text: str
    page: int | None = None  # 1-based physical page for PDFs
    section: str | None = None  # "Chapter > Section" (PDF outline or Markdown headers)
    offset: int = 0  # character offset of `text` in its page (PDF) or in the file (Markdown, TXT)


@dataclass
class LoadedDocument:
    segments: list[Segment]
    file_type: str
    pages: int | None = None
    warnings: list[str] = field(default_factory=list)
    title: str | None = None
    ocr_pages: int = 0  # pages whose text came from OCR


def page_list(pages: list[int]) -> str:
    """'3, 5-8, 12' for a sorted list of page numbers."""
    out: list[str] = []
    start = prev = None
    for p in pages:
        if start is None:
            start = prev = p
        elif p == prev + 1:
            prev = p
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = p
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(out)
