"""Headings of a PDF that has no outline, found by their font: the sections of reports and filings.

Most business PDFs (earnings releases, 8-Ks, Word exports) have no bookmarks, so their chunks had no
section and a chunk ran on from one heading's text into the next ("Regional Operations … MGM China • Net
revenues of $175 million"). A heading line here is a short line (or a run of up to three lines in the same
font) that is printed larger than the body text and than the line after it, or bold at least at body size
over a lighter line after it, and that does not end like a sentence. The body size is the size used on the
most pages (not the most characters: a code appendix in small print is not the body).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

# pdfium marks soft hyphens and line-break hyphens with U+FFFE / U+0002: not text
PDFIUM_MARKS = "\ufffe\x02"

_BIGGER = 1.1  # LaTeX's \subsection is 12 pt over 10.5 pt body text
_BOLD = 600  # PDF font weight: 400 regular, 700 bold
_SENTENCE_END = re.compile(r"[.,;。，；、]$")
_BOLD_NAME = re.compile(r"bold|black|heavy", re.IGNORECASE)  # "Helvetica-Bold", "Arial-BoldMT", "SemiBold"


@dataclass
class Line:
    text: str
    size: float
    weight: int


def page_lines(textpage, text: str | None = None) -> list[Line]:  # noqa: ANN001
    """The page's text lines with the font size and weight of their characters (the smallest of the
    first, middle and last visible character, so a bold first word does not make a line bold). `text`: the
    page's text as pdfium gives it, when already read."""
    import pypdfium2.raw as pdfium_c

    n = textpage.count_chars()
    text = textpage.get_text_range() if text is None else text
    if len(text) == n:  # one character per index (no character outside the BMP): read the lines from the text
        lines = [[(m.start() + i, c) for i, c in enumerate(m.group())] for m in re.finditer(r"[^\r\n]+", text)]
    else:
        lines = [[]]
        for i in range(n):
            code = pdfium_c.FPDFText_GetUnicode(textpage, i)
            if code in (10, 13):
                if lines[-1]:
                    lines.append([])
            else:
                lines[-1].append((i, chr(code)))
    out = []
    for chars in lines:
        chars = [(i, c) for i, c in chars if c not in PDFIUM_MARKS]
        visible = [i for i, c in chars if not c.isspace()]
        if not visible:  # a line of only marks or spaces (lshort-zh-cn p. 60) is no line
            continue
        probe = {visible[0], visible[len(visible) // 2], visible[-1]}
        size = min(pdfium_c.FPDFText_GetFontSize(textpage, i) for i in probe)
        weight = min(_weight(textpage, i) for i in probe)
        out.append(Line(" ".join("".join(c for _, c in chars).split()), round(size, 1), weight))
    return out


def _weight(textpage, i: int) -> int:  # noqa: ANN001
    """The font's weight; fonts that do not state one (the standard 14, many Type 1 fonts) by their name."""
    import ctypes

    import pypdfium2.raw as pdfium_c

    weight = pdfium_c.FPDFText_GetFontWeight(textpage, i)
    if weight > 0:
        return weight
    buf = ctypes.create_string_buffer(128)
    flags = ctypes.c_int(0)
    pdfium_c.FPDFText_GetFontInfo(textpage, i, buf, len(buf), ctypes.byref(flags))
    return 700 if _BOLD_NAME.search(buf.value.decode("latin-1")) else 400


def body_size(pages: list[list[Line]]) -> float | None:
    """The font size of lines of 20+ characters on the most pages (ties: the most characters)."""
    chars: Counter[float] = Counter()
    on_pages: Counter[float] = Counter()
    for lines in pages:
        long = [ln for ln in lines if len(ln.text) >= 20]
        on_pages.update({ln.size for ln in long})
        for ln in long:
            chars[ln.size] += len(ln.text)
    return max(chars, key=lambda s: (on_pages[s], chars[s])) if chars else None


def _is_heading(text: str, size: float, weight: int, after: Line, body: float) -> bool:
    if len(text) > 120 or _SENTENCE_END.search(text):
        return False
    if text[0] in "(（[【" and text[-1] in ")）]】":
        return False  # a note: "(Dollars in millions)", "（单位：万元）" above every table of a filing
    letters = sum(c.isalpha() for c in text)
    if letters < 2 or letters < 0.5 * len(text.replace(" ", "")):
        return False  # a page number, a row of figures
    bigger = size >= body * _BIGGER and size >= after.size * _BIGGER
    bolder = weight >= _BOLD and weight - after.weight >= 200 and size >= body and size >= after.size
    return bigger or bolder


def page_headings(lines: list[Line], body: float) -> list[tuple[str, float, int]]:
    """(title, size, weight) of the heading lines of one page, in reading order. A chunk's section is the last
    heading before it, not a path: which heading is under which cannot be told from the font reliably (an
    8-K's "Exhibit 99.2" came out under "SEGMENT SALES RESULTS")."""
    runs: list[tuple[list[str], float, int]] = []
    for ln in lines:
        if runs and runs[-1][1] == ln.size and runs[-1][2] == ln.weight:
            runs[-1][0].append(ln.text)
        else:
            runs.append(([ln.text], ln.size, ln.weight))
    found = []
    for (texts, size, weight), (after_texts, after_size, after_weight) in zip(runs, runs[1:]):
        title = " ".join(texts)
        if len(texts) <= 3 and _is_heading(title, size, weight, Line(after_texts[0], after_size, after_weight), body):
            found.append((title, size, weight))
    return found
