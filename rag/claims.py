"""Claims checked against their sources: every answer sentence that cites a block must find its checkable
facts in that block.

A small model cites [1] after a number that block gives for something else, or after a command it
remembers. What can be checked without a model is what must be copied exactly: numbers, dates,
versions, URLs, paths, commands (\\tableofcontents, `pip install x`) and quoted terms. A sentence whose
such facts are missing from every block it cites is reported as unsupported; the faces flag it instead
of showing it as supported.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from rag.citations import _CITATION, split_sentences

_URL = re.compile(r"https?://[^\s<>\"'）)\]】]+", re.IGNORECASE)
_PATH = re.compile(r"(?<![\w/])(?:~|\.{1,2})?/(?:[\w.\-]+/)*[\w.\-]+|\b[A-Za-z]:\\[\w\\.\-]+")
_COMMAND = re.compile(r"\\[A-Za-z@]+\*?")
_CODE = re.compile(r"`([^`\n]{1,80})`")
_QUOTED = re.compile(r"[“「『\"]([^”」』\"\n]{2,60})[”」』\"]")
_LIST_MARKER = re.compile(r"^\s*(?:\d{1,2}[.、)）]|[-*•])\s+", re.MULTILINE)  # "1. ", "- ": layout, not facts
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,，]*(?:\.\d+)?%?")


@dataclass
class UnsupportedClaim:
    sentence: str
    cites: list[int]
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"sentence": self.sentence, "cites": self.cites, "missing": self.missing}


def _norm(text: str) -> str:
    """Width, case and separators do not matter: "１,２００" is "1200", "Foo Bar" is "foobar"."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\s,，_\-–—]+", "", text)


def checkable_facts(sentence: str) -> list[str]:
    """The parts of a sentence that a supporting block must contain verbatim (after normalising)."""
    text = _CITATION.sub(" ", sentence)
    facts: list[str] = []
    for pattern in (_URL, _PATH, _COMMAND):
        facts += pattern.findall(text)
        text = pattern.sub(" ", text)
    facts += [m.strip() for m in _CODE.findall(text)]
    facts += [m.strip() for m in _QUOTED.findall(text)]
    text = _QUOTED.sub(" ", _CODE.sub(" ", text))
    facts += [n.rstrip(",，") for n in _NUMBER.findall(text) if any(c.isdigit() for c in n)]
    return list(dict.fromkeys(f for f in facts if _norm(f)))


_ZH_DIGITS = {"0": "零〇", "1": "一", "2": "二两", "3": "三", "4": "四", "5": "五", "6": "六", "7": "七", "8": "八",
              "9": "九", "10": "十"}


def _found(fact: str, block: str) -> bool:
    """`fact` in the normalised block; a small number may be written in Chinese there ("2" as 两)."""
    n = _norm(fact)
    return n in block or any(c in block for c in _ZH_DIGITS.get(n, ""))


def unsupported_claims(answer: str, blocks: dict[int, str]) -> list[UnsupportedClaim]:
    """Sentences of `answer` that cite blocks (numbered as in `blocks`) but state a checkable fact none of
    the cited blocks contains. Sentences without citations or without checkable facts are not judged."""
    normed = {n: _norm(t) for n, t in blocks.items()}
    sentences: list[str] = []
    for sentence in split_sentences(_LIST_MARKER.sub("", answer)):
        if sentences and not _CITATION.sub("", sentence).strip(" 。.，,;；"):  # "… payment. [1]": the mark is the
            sentences[-1] += " " + sentence                                # previous sentence's citation
        else:
            sentences.append(sentence)
    out = []
    for sentence in sentences:
        cites = sorted({int(n) for m in _CITATION.findall(sentence) for n in re.split(r"\s*[,，、]\s*", m)
                        if int(n) in blocks})
        if not cites:
            continue
        missing = [f for f in checkable_facts(sentence) if not any(_found(f, normed[n]) for n in cites)]
        if missing:
            out.append(UnsupportedClaim(_CITATION.sub("", sentence).strip(), cites, missing))
    return out


def grounding(answer: str, blocks: list[str], question: str = "") -> float | None:
    """Share of the answer's own words (tokens not in the question) that occur in the given blocks; None for
    an answer with no words of its own. An answer written from the model's memory ("pd.read_excel ...")
    shares few words with blocks about something else."""
    from rag.lexical import tokenize

    own = set(tokenize(_CITATION.sub(" ", answer))) - set(tokenize(question))
    if not own:
        return None
    seen = set()
    for b in blocks:
        seen.update(tokenize(b))
    return round(len(own & seen) / len(own), 3)
