"""Test PDFs written with reportlab: Chinese and English text, bookmarks, scans, encryption, garbage."""

from __future__ import annotations

from pathlib import Path


def _wrap(text: str, width: int) -> list[str]:
    lines, cur = [], ""
    for ch in text:
        cur += ch
        if len(cur) >= width:
            lines.append(cur)
            cur = ""
    if cur:
        lines.append(cur)
    return lines


def make_pdf(path: Path, pages: list[list[tuple[str, str]]], *, cjk: bool = False,
             outline: list[tuple[str, int, int]] | None = None, encrypt: str | None = None,
             title: str | None = None, header=None, footer=None) -> Path:  # noqa: ANN001
    """pages: per page a list of (kind, text) with kind 'h' (heading, larger), 'b' (bold heading at the
    paragraphs' size; not with cjk) or 'p' (paragraph).
    outline: (title, 1-based page, level) bookmarks. header/footer: page number -> running line (or None)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    font = "Helvetica"
    if cjk:
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.cidfonts import UnicodeCIDFont

        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
        font = "STSong-Light"
    kwargs = {}
    if encrypt:
        from reportlab.lib import pdfencrypt

        kwargs["encrypt"] = pdfencrypt.StandardEncryption(encrypt, canPrint=0)
    c = canvas.Canvas(str(path), pagesize=A4, **kwargs)
    if title:
        c.setTitle(title)
    marks = {}
    for (t, page, level) in outline or []:
        marks.setdefault(page, []).append((t, level))
    width = 34 if cjk else 85
    for n, blocks in enumerate(pages, start=1):
        y = 800
        for i, (t, level) in enumerate(marks.get(n, [])):
            key = f"p{n}-{i}"
            c.bookmarkPage(key)
            c.addOutlineEntry(t, key, level=level)
        c.setFont(font, 9)
        if header and header(n):
            c.drawString(50, 820, header(n))
        if footer and footer(n):
            c.drawString(290, 25, footer(n))
        for kind, text in blocks:
            size = 16 if kind == "h" else 11
            c.setFont(font + "-Bold" if kind == "b" else font, size)
            for line in _wrap(text, width if kind == "p" else 200):
                c.drawString(50, y, line)
                y -= size + 6
            y -= 8
        c.showPage()
    c.save()
    return path


def make_scanned_pdf(path: Path, pages: int = 2) -> Path:
    """Pages that are only an image: what a scanner produces before OCR."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas
    import io
    import struct
    import zlib

    def png(w: int, h: int) -> bytes:
        raw = b"".join(b"\x00" + bytes([(x * 7 + y * 3) % 256 for x in range(w)]) for y in range(h))
        def chunk(tag, data):  # noqa: ANN001
            return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

    img = ImageReader(io.BytesIO(png(120, 160)))
    c = canvas.Canvas(str(path), pagesize=A4)
    for _ in range(pages):
        c.drawImage(img, 40, 100, width=500, height=680)
        c.showPage()
    c.save()
    return path
