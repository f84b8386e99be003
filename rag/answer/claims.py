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

from rag.answer.sentences import CITATION, split_sentences
from rag.text import HAN

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
    # "fact": a cited sentence whose facts its blocks lack; "uncited": a whole answer that cites nothing and
    # whose words are mostly not in the retrieved passages (written from the model's own memory)
    kind: str = "fact"

    def as_dict(self) -> dict:
        return {"sentence": self.sentence, "cites": self.cites, "missing": self.missing, "kind": self.kind}


def _norm(text: str) -> str:
    """Width, case and separators do not matter: "１,２００" is "1200", "Foo Bar" is "foobar"."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\s,，_\-–—]+", "", text)


def checkable_facts(sentence: str) -> list[str]:
    """The parts of a sentence that a supporting block must contain verbatim (after normalising)."""
    text = CITATION.sub(" ", sentence)
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


def holds_facts(block: str, facts: list[str]) -> bool:
    """Every one of `facts` (checkable_facts) is in `block`, normalised for width, case and separators."""
    normed = _norm(block)
    return all(_found(f, normed) for f in facts)


_LATIN = re.compile(r"[A-Za-z]")


# How small models frame an answer ("根据上下文，…", "According to block [1], …"): not claims about the documents.
_FRAMING = frozenset("""根据 上下文 文中 文档 信息 内容 描述 提到 提供 所述 可知 如下 以下 引用 原文 段落 资料 知识库 回答 答案
according context block blocks passage passages document documents text mentioned provided information answer""".split())


def _words(text: str):  # noqa: ANN202
    """(surface word, its BM25 tokens) for the words of `text` that carry content (stop words have none)."""
    from rag.lexical import _CJK_RUN, _WORD, _jieba, tokenize

    for i, part in enumerate(_CJK_RUN.split(text)):
        for w in (_jieba().cut(part) if i % 2 else _WORD.findall(part)):
            if w.casefold() in _FRAMING:
                continue
            if (len(w) >= 2 if i % 2 else len(w) >= 3 and not w[0].isdigit()) and (toks := tokenize(w)):
                yield w, toks


def word_support(sentence: str, blocks: list[str], question: str = "") -> tuple[float | None, list[str]]:
    """Share of the sentence's own content words (not in the question) found in `blocks`, and the ones
    not found. Only words in the blocks' script are judged: an English sentence about a Chinese block
    (or the reverse) is a translation, not a claim this check can verify. None: nothing to judge."""
    from rag.lexical import tokenize

    text = " ".join(blocks)
    cjk, latin = len(HAN.findall(text)), len(_LATIN.findall(text))
    judge_cjk, judge_latin = cjk >= 0.1 * (cjk + latin), cjk < 0.1 * (cjk + latin)
    asked = set(tokenize(question))
    seen, normed = set(tokenize(text)), _norm(text)
    judged, missing = [], []
    for w, toks in _words(CITATION.sub(" ", sentence)):
        if set(toks) <= asked or w.casefold() in question.casefold():
            continue
        if not (judge_cjk if HAN.match(w) else judge_latin):
            continue
        judged.append(w)
        if not (set(toks) <= seen or _norm(w) in normed):
            missing.append(w)
    if not judged:
        return None, []
    return round(1 - len(missing) / len(judged), 3), list(dict.fromkeys(missing))


def cited_sentences(answer: str, valid: set[int] | dict) -> list[tuple[str, list[int]]]:
    """(sentence, the valid block numbers it cites) for the answer's sentences that cite any."""
    sentences: list[str] = []
    for sentence in split_sentences(_LIST_MARKER.sub("", answer)):
        if sentences and not CITATION.sub("", sentence).strip(" 。.，,;；"):  # "… payment. [1]": the mark is the
            sentences[-1] += " " + sentence                                # previous sentence's citation
        else:
            sentences.append(sentence)
    out = []
    for sentence in sentences:
        cites = sorted({int(n) for m in CITATION.findall(sentence) for n in re.split(r"\s*[,，、]\s*", m)
                        if int(n) in valid})
        if cites:
            out.append((sentence, cites))
    return out


def unsupported_claims(answer: str, blocks: dict[int, str], question: str = "",
                       min_word_support: float = 0.0) -> list[UnsupportedClaim]:
    """Sentences of `answer` that cite blocks (numbered as in `blocks`) but state a checkable fact none of
    the cited blocks contains, or whose own words are mostly (less than `min_word_support` of them)
    missing from the cited blocks (a name the model remembered: "…议长是麦卡锡[4]" citing a block that
    never names him). Sentences without citations are not judged."""
    normed = {n: _norm(t) for n, t in blocks.items()}
    out = []
    for sentence, cites in cited_sentences(answer, blocks):
        missing = [f for f in checkable_facts(sentence) if not any(_found(f, normed[n]) for n in cites)]
        if min_word_support > 0:
            share, absent = word_support(sentence, [blocks[n] for n in cites], question)
            if share is not None and share < min_word_support:
                missing += [w for w in absent if not any(w in f for f in missing)][:6]
        if missing:
            out.append(UnsupportedClaim(CITATION.sub("", sentence).strip(), cites, missing))
    return out


def lowest_word_support(answer: str, blocks: dict[int, str], question: str = "") -> float | None:
    """The lowest `word_support` of the answer's cited sentences (what `min_word_support` is chosen on)."""
    shares = [word_support(s, [blocks[n] for n in cites], question)[0] for s, cites in cited_sentences(answer, blocks)]
    shares = [x for x in shares if x is not None]
    return min(shares) if shares else None


def grounding(answer: str, blocks: list[str], question: str = "") -> float | None:
    """Share of the answer's own words (tokens not in the question) that occur in the given blocks; None for
    an answer with no words of its own. An answer written from the model's memory ("pd.read_excel ...")
    shares few words with blocks about something else."""
    from rag.lexical import tokenize

    own = set(tokenize(CITATION.sub(" ", answer))) - set(tokenize(question))
    if not own:
        return None
    seen = set()
    for b in blocks:
        seen.update(tokenize(b))
    return round(len(own & seen) / len(own), 3)


def uncited_answer(answer: str, cited: bool, grounded: float | None, min_grounding: float,
                   blocks: list[str] = ()) -> UnsupportedClaim | None:
    """The whole answer flagged when it cites no passage and less than `min_grounding` of its own words
    occur in the passages it was given: the model answered from its memory ("use pandas.read_excel")
    about something the knowledge base does not cover. An uncited answer copied from the passages (a
    command, a name) scores high and is left alone; one in another language than the passages (an
    English answer about a Chinese manual) is a translation whose words cannot be looked up, unless it names
    commands, numbers or quoted terms that none of the passages holds. An uncited answer with no words of its
    own (`grounded` None) is flagged too: "可以画双线。" for "…可以画双线吗？" is a bare yes that no passage backs."""
    from rag.text import query_language

    text = " ".join(CITATION.sub(" ", answer).split())
    if cited or not text:
        return None
    if grounded is None:
        return UnsupportedClaim(text[:200], [], [], kind="uncited")
    if grounded >= min_grounding:
        return None
    if blocks and query_language(answer) != query_language(" ".join(blocks)):
        # its words cannot be looked up, its commands, numbers and names can: "\newcommand defines a new
        # command." given only passages about pictures is the model's memory
        normed = [_norm(b) for b in blocks]  # once, not once per fact
        if all(any(_found(f, n) for n in normed) for f in checkable_facts(text)):  # no facts: nothing to judge
            return None
    return UnsupportedClaim(text[:200], [], [], kind="uncited")
