"""Spaces back between English words in OCR'd lines.

The PP-OCRv4 recogniser (trained mostly on Chinese) drops most spaces in English print:
"2023Second-Quarterreportedsalesgrowthof6.3%to$25.5Billion". Such a line is one BM25 token and a poor
embedding, and a user searching "reported sales" never finds it. Lines that are mostly Latin letters with
far too few spaces are re-spaced with wordninja (word frequencies, dynamic programming); Chinese lines, TeX
commands (\\tableofcontents) and properly spaced lines are left as they are.
"""

from __future__ import annotations

import re

_RUN = re.compile(r"[A-Za-z]{4,}")
_LONG_RUN = re.compile(r"[A-Za-z]{15,}")
# a word glued to a number: "growthof6.3%to$25.5", "increasing2023" (not "latex3", "utf8", "mp3", "Q2")
_WORD_BEFORE_NUMBER = re.compile(
    r"(?<![A-Za-z])(of|to|in|at|by|on|for|from|and|or|was|were|is|are|than|over|about|per|vs|with)(?=[$€£¥\d])"
    r"|(?<=[a-z]{6})(?=\d)")
_NUMBER_BEFORE_WORD = re.compile(r"(?<=\d)(?=[A-Z][a-z]{2,}|[a-z]{3,})|(?<=%)(?=[A-Za-z]{2,})")
_KEEP_ALONE = {"a", "A", "I"}


def _english(line: str) -> tuple[bool, bool]:
    """(mostly English letters, glued: on average more than 12 letters between spaces; English has ~5)."""
    letters = sum(1 for c in line if c.isascii() and c.isalpha())
    others = sum(1 for c in line if not c.isspace() and not (c.isascii() and c.isalpha()))
    english = letters >= 4 and letters >= 2 * others
    return english, english and letters >= 12 and letters / (line.count(" ") + 1) > 12


def restore_spaces(line: str) -> str:
    """`line` with the spaces between English words put back (Chinese and spaced lines come back as they are)."""
    english, glued = _english(line)
    if not english:
        return line
    try:
        import wordninja
    except ImportError:  # the ocr extra without it: the text stays as read
        wordninja = None

    def split(m: re.Match) -> str:
        run = m.group(0)
        if m.start() > 0 and line[m.start() - 1] == "\\":  # a TeX command is one word
            return run
        words: list[str] = []
        for part in wordninja.split(run):  # a stray letter belongs to its neighbour ("C oviD" -> "CoviD")
            if words and len(words[-1]) == 1 and words[-1] not in _KEEP_ALONE:
                words[-1] += part
            else:
                words.append(part)
        if len(words) > 1 and len(words[-1]) == 1 and words[-1] not in _KEEP_ALONE:
            last = words.pop()
            words[-1] += last
        return " ".join(words)

    # a glued line: every run of letters; a spaced line: only runs too long to be one word
    out = (_RUN if glued else _LONG_RUN).sub(split, line) if wordninja else line
    out = _WORD_BEFORE_NUMBER.sub(r"\1 ", out)
    return _NUMBER_BEFORE_WORD.sub(" ", out)
