"""Citations in a streamed answer: keep [n] that point to a context block, drop the rest.

The filter works on the token stream, holding back only a possible citation until it is complete,
so the answer still streams token by token.
"""

from __future__ import annotations

import re

_CITATION = re.compile(r"\[(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\]")
_OPENERS = {"[": "]", "【": "】"}


class CitationFilter:
    def __init__(self, n_blocks: int):
        self.n_blocks = n_blocks
        self.cited: list[int] = []  # block numbers in order of first citation
        self._pending = ""

    def feed(self, text: str) -> str:
        out = []
        for ch in text:
            if self._pending:
                self._pending += ch
                closer = _OPENERS[self._pending[0]]
                if ch == closer:
                    out.append(self._resolve(self._pending))
                    self._pending = ""
                elif len(self._pending) > 16 or not (ch.isdigit() or ch in " ,，、"):
                    out.append(self._pending)  # not a citation after all
                    self._pending = ""
            elif ch in _OPENERS:
                self._pending = ch
            else:
                out.append(ch)
        return "".join(out)

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return rest

    def _resolve(self, token: str) -> str:
        inner = token[1:-1]
        nums = [int(x) for x in re.split(r"\s*[,，、]\s*", inner.strip()) if x.strip().isdigit()]
        if not nums:
            return token
        valid = [n for n in nums if 1 <= n <= self.n_blocks]
        for n in valid:
            if n not in self.cited:
                self.cited.append(n)
        return "".join(f"[{n}]" for n in valid)


def cited_numbers(text: str, n_blocks: int) -> list[int]:
    f = CitationFilter(n_blocks)
    f.feed(text)
    f.flush()
    return f.cited


def strip_invalid(text: str, n_blocks: int) -> str:
    f = CitationFilter(n_blocks)
    return f.feed(text) + f.flush()
