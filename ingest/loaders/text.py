"""Plain-text files in whatever encoding Chinese and English users actually have."""

from __future__ import annotations

import codecs
from pathlib import Path

from ingest.loaders.base import OLE_MAGIC, IngestError, LoadedDocument, Segment
from rag.text import garble_report

_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
]
# Encodings tried for non-UTF-8 text, in order of how common they are among our users.
_FALLBACKS = ("gb18030", "big5", "shift_jis", "euc-kr", "cp1252")


# Files of another format saved under a text extension: a PDF is mostly ASCII and decodes, and was indexed as
# pages of "%PDF-1.4 … stream …" (bench/fuzz_inputs.py).
_OTHER_FORMATS = [(b"%PDF-", "a PDF file", ".pdf"), (b"PK\x03\x04", "a zip archive (a Word .docx?)", ".docx"),
                  (OLE_MAGIC, "an old Office document (.doc, .xls)", None),
                  (b"\x89PNG", "a PNG image", None), (b"\xff\xd8\xff", "a JPEG image", None), (b"GIF8", "a GIF image", None)]


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Return (text, encoding). Raises IngestError for binary data or text in no known encoding."""
    for magic, what, ext in _OTHER_FORMATS:
        if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:len(magic)] == magic:
            todo = f"rename it to {ext} and add it again" if ext else "it holds no text to search"
            raise IngestError(f"this is {what}, not text: {todo}")
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(enc), enc + " (BOM)"
            except UnicodeDecodeError as exc:
                raise IngestError(f"starts with a {enc} byte-order mark but is not valid {enc}: {exc.reason}") from exc
    if b"\x00" in data[:8192]:
        enc = _bomless_utf16(data)
        if enc:
            return data.decode(enc), enc
        raise IngestError("binary data (contains NUL bytes), not text; is it really a text file?")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    candidates = []
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    if best is not None and best.encoding:
        candidates.append(best.encoding)
    candidates += [e for e in _FALLBACKS if e not in candidates]
    for enc in candidates:
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        if garble_report(text).score < 0.25 and _control_share(text) < 0.01:
            return text, enc
    raise IngestError("not valid text in UTF-8, UTF-16, GB18030/GBK, Big5 or another known encoding "
                      "(binary file?); save it as UTF-8 and ingest it again")


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM: ASCII characters put NUL bytes in every other position."""
    sample = data[:4096]
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    half = len(sample) / 2
    enc = "utf-16-le" if odd > 0.3 * half and even < 0.05 * half else \
        "utf-16-be" if even > 0.3 * half and odd < 0.05 * half else None
    if enc:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            return None
        return enc if _control_share(text) < 0.01 else None
    return None


def _control_share(text: str) -> float:
    if not text:
        return 0.0
    bad = sum(1 for c in text if (ord(c) < 32 and c not in "\t\n\r\f\v\x1b") or c == "\x7f")
    return bad / len(text)


def read_text(path: Path) -> str:
    data = path.read_bytes()
    text, _enc = decode_bytes(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise IngestError("contains only whitespace")
    return text


def load_text(path: Path) -> LoadedDocument:
    text = read_text(path)
    return LoadedDocument([Segment(text=text, offset=0)], file_type="txt")
