"""Running headers and footers: the lines a PDF repeats at the top or bottom of its pages.

"30 第三章 文档元素", "§3.6 表格 29", "Annual Report 2023 | 12", "- 7 -": kept in the chunks they become
the model's favourite thing to quote and a false match for every question about that chapter. They are
found per document, without knowing the layout:

- an edge line (first or last non-empty line of a page) whose words repeat unchanged at the same edge
  of at least `min_repeat` pages and 5% of them ("Table of Contents", a document title, "Exhibit 10.79");
- an edge line that starts or ends with the printed page number (arabic, or roman in the front matter):
  the difference between the physical page and that number is the same on at least `min_repeat` pages
  (a section header that appears on one page only still carries the page number at the same offset as
  all the others).

A second line from the edge is removed only together with the first, and only when its words repeat
(two-line headers) or it is a bare page number, so body text and headings next to the edge survive.
"""

from __future__ import annotations

import re
from collections import Counter

_TOKEN = r"(\d{1,4}|(?-i:[ivx]{1,7}))"  # lower-case roman only: "ARTICLE IX" is a heading, "ix" a page
_LEADING = re.compile(r"^\W{0,3}(?:page\s+|第\s*)?" + _TOKEN + r"(?![\w.])", re.IGNORECASE)
_TRAILING = re.compile(r"(?<![\w.])" + _TOKEN + r"(?:\s*页)?(?:\s*(?:/|of)\s*\d{1,4})?\W{0,3}$", re.IGNORECASE)
_ROMAN = re.compile(r"^(x{0,3})(ix|iv|v?i{0,3})$", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")


def _edge_lines(text: str) -> dict[tuple[str, int], int]:
    """{(edge, depth): line index} for the two outermost non-empty lines at the top and at the bottom."""
    idx = [i for i, line in enumerate(text.split("\n")) if line.strip()]
    out: dict[tuple[str, int], int] = {}
    for depth in range(min(2, len(idx))):
        out[("top", depth)] = idx[depth]
        out[("bottom", depth)] = idx[-1 - depth]
    return out


def _number(token: str) -> int | None:
    """An arabic page number, or a small roman one (front matter: i … xxxix)."""
    if token.isdigit():
        return int(token)
    m = _ROMAN.match(token)
    if not m or not token:
        return None
    tens, ones = m.groups()
    values = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "": 0}
    return 10 * len(tens) + values[ones.lower()]


def _page_numbers(line: str, page: int) -> list[tuple[int, tuple[int, int]]]:
    """[(page - n, span of n)] for a number n at the start and at the end of the line
    ("第 1 节 介绍 2": both 1 and 2; which one is the page number shows across pages)."""
    out: list[tuple[int, tuple[int, int]]] = []
    for pattern in (_LEADING, _TRAILING):
        m = pattern.search(line)
        if m and (n := _number(m.group(1))):
            if out and out[0][0] == page - n and m.start() <= out[0][1][0]:  # "12 / 95": the whole "n / N", not "12"
                out[0] = (page - n, m.span())
            else:
                out.append((page - n, m.span()))
    return out


def _identity(line: str) -> str:
    return " ".join(line.split()).casefold()


def strip_running_lines(pages: dict[int, str], min_repeat: int = 3, min_pages: int = 5,
                        max_header_chars: int = 60) -> tuple[dict[int, str], int]:
    """(pages without their running headers/footers, number of lines changed). `pages`: 1-based page -> text.

    Where this edge's page numbers mostly stand alone, or the line is longer than `max_header_chars`,
    words beside the number are body text the extractor glued the number to: only the number goes."""
    if len(pages) < min_pages:  # a few pages that each start with "Chapter n" are headings, not a running header
        return pages, 0
    lines = {p: t.split("\n") for p, t in pages.items()}
    edges = {p: _edge_lines(t) for p, t in pages.items()}
    min_same = max(min_repeat, -(-len(pages) // 20))  # on 5% of the pages: "None." three times is an answer
    same: Counter = Counter()
    offsets: Counter = Counter()
    with_text: Counter = Counter()  # how many of those lines have words beside the number
    for p, e in edges.items():
        for (edge, depth), i in e.items():
            same[(edge, depth, _identity(lines[p][i]))] += 1
            # under the first line only a bare number ("— 12 —") counts: a heading "第 12 节 …" on pages
            # 36-38 would look like a page number
            for d, (a, b) in _page_numbers(lines[p][i], p) if depth == 0 or not _LETTER.search(lines[p][i]) else ():
                offsets[(edge, d)] += 1
                with_text[(edge, d)] += bool((lines[p][i][:a] + lines[p][i][b:]).strip())

    def cleaned(p: int, edge: str, depth: int, line: str) -> str | None:
        """None: the line is not running; "": drop it; else the line without its page number."""
        if same[(edge, depth, _identity(line))] >= min_same and _LETTER.search(line):
            return ""  # the same words on many pages: "Table of Contents", a document title
        for d, (a, b) in _page_numbers(line, p) if depth == 0 or not _LETTER.search(line) else ():
            if offsets[(edge, d)] >= min_repeat:
                rest = (line[:a] + line[b:]).strip()
                headers = 2 * with_text[(edge, d)] > offsets[(edge, d)]  # "§3.6 表格 29" rather than a bare "29"
                return "" if headers and len(rest) <= max_header_chars else rest
        return None

    out: dict[int, str] = {}
    changed = 0
    for p, text in pages.items():
        new: dict[int, str] = {}
        for edge in ("top", "bottom"):
            for depth in (0, 1):
                i = edges[p].get((edge, depth))
                if i is None or i in new:
                    break
                c = cleaned(p, edge, depth, lines[p][i])
                if c is None:
                    break  # the second line goes only with the first
                new[i] = c
                if c:
                    break  # body text with a page number glued on: nothing further in is a header
        changed += len(new)
        out[p] = "\n".join(new.get(i, line) for i, line in enumerate(lines[p]) if new.get(i) != "") if new else text
    return out, changed
