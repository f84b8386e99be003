"""Sentences of retrieved text: splitting, scoring against a question, the citation mark, quoting.

The text primitives every stage shares (evidence selection, the generation filters, the post-reply check,
the claim check), so that none of those imports another.
"""

from __future__ import annotations

import re
from collections import Counter

from rag.text import HAN

CITATION = re.compile(r"\[(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\]")

SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=\.)\s+|\n\s*\n")
CJK_LINE_BREAK = re.compile(r"(?<=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])\n(?=[\u3400-\u9fff\uff00-\uffef])")
ASKS_NUMBER = re.compile(r"何时|什么时候|哪一?年|哪一?天|几|多少|多久|多长|多大|多高|when\b|how (?:many|much|long|old|far)|what year",
                         re.IGNORECASE)
NUMBER = re.compile(r"\d|[一二三四五六七八九十百千万两]+(?:年|月|日|天|个|人|次|岁|元|倍)")
_ENDINGS = ("。", "！", "？", "!", "?", ".", "；", ";")
_PUNCTUATION = r"[\s,，、.。:：;；!！?？\-–—()（）\"'“”‘’]"
_PUNCTUATION_ONLY = re.compile(_PUNCTUATION + "*")
_PUNCTUATIONS = re.compile(_PUNCTUATION + "+")


def only_citations(answer: str) -> bool:
    """True when a reply holds citation marks and nothing else ("[2]", "[1][3]。")."""
    rest = CITATION.sub("", answer)
    return rest != answer and _PUNCTUATION_ONLY.fullmatch(rest) is not None




def split_sentences(text: str) -> list[str]:
    """Sentences of a chunk, with PDF line breaks inside Chinese sentences joined ("付\\n款" -> "付款")."""
    text = CJK_LINE_BREAK.sub("", text)
    return [" ".join(s.split()) for s in SENTENCE_END.split(text) if s and s.strip()]


def evidence_scores(asked: set[str], words: list[set[str]]) -> list[float]:
    """How much of the question (its tokens, `asked`) each sentence (its tokens, `words`) holds: a question
    word counts more when fewer of the sentences contain it (the passage's topic, named everywhere,
    tells nothing apart)."""
    spread = Counter(w for ws in words for w in ws & asked)
    return [sum(1 / spread[w] for w in ws & asked) for ws in words]


_BULLET = re.compile(r"[•·▪●◦‣]\s*\S")
_LIST_INTRO = re.compile(r"[：:]\s*(?:[•·▪●◦‣]|$)")
_LISTING_LINE = re.compile(r"(?:^|\s)\d{1,5} (?=[{}\\%<〈])")


def code_listing(sentence: str) -> bool:
    """A sentence cut out of a code listing: numbered source lines ("16 { 17 Please~update~…", ctex's
    implementation chapters) or LaTeX3 code with no Chinese and ~ for its spaces."""
    return len(_LISTING_LINE.findall(sentence)) >= 2 or (not HAN.search(sentence) and sentence.count("~") >= 3)


def dense_bonus(similarity, texts: list[str], weight: float) -> list[float]:  # noqa: ANN001
    """`weight` times how far each text's similarity to the question (`similarity(texts)`, the knowledge base's
    embedder: any language) is above the median text's, relative to the best one: 0 up to the median, `weight` for
    the best. Zeros without a similarity, a weight or enough texts to compare."""
    if similarity is None or weight <= 0 or len(texts) < 3:
        return [0.0] * len(texts)
    sims = similarity(texts)
    mid, top = sorted(sims)[len(sims) // 2], max(sims)
    return [weight * max(0.0, x - mid) / (top - mid) if top > mid else 0.0 for x in sims]


def _scored_sentences(question: str, blocks: list[str], similarity=None,  # noqa: ANN001
                      dense_weight: float = 0.0) -> list[tuple[int, str, float]]:
    """(block index, sentence, score) for every sentence of `blocks`, scored as `quote_with_block` explains."""
    from rag.answer.gate import topic_words
    from rag.lexical import tokenize

    asked = topic_words(question)  # 用/命令/哪个 say what is asked: a sentence is not better for repeating them
    sentences = [(b, s) for b, block in enumerate(blocks) for s in split_sentences(block)]  # (block index, sentence)
    words = [set(tokenize(s)) for _, s in sentences]
    overlap = evidence_scores(asked, words)
    dense = dense_bonus(similarity, [s for _, s in sentences], dense_weight)
    wants_number = bool(ASKS_NUMBER.search(question))
    out = []
    for i, (b, s) in enumerate(sentences):
        value = overlap[i] + dense[i]
        if not words[i] - asked:
            value *= 0.1
        if code_listing(s):  # a user asked in words: numbered source lines are no answer to quote
            value *= 0.1
        if wants_number and NUMBER.search(s):
            value += 0.5
        out.append((b, s, value))
    return out


def quote_with_block(question: str, blocks: list[str], max_chars: int = 300, similarity=None,  # noqa: ANN001
                     dense_weight: float = 0.0) -> tuple[str, int | None]:
    """The sentence of `blocks` that best matches `question` (with its block's next best, `_with_second`), and the
    index of the block it is from.

    Small local models sometimes reply with nothing but "[2]" (or the question again): they found the
    passage but wrote no answer. Quoting the cited passage's best sentence gives the user the source text.
    A question word counts more when fewer sentences contain it (the passage's topic, named everywhere,
    tells nothing apart); a sentence that adds nothing to the question (a heading, a bare name) counts
    little; a number or date counts for questions that ask when / how many; with `similarity`, closeness to the
    question in the embedder's space counts too (`dense_bonus`).
    """
    sentences = _scored_sentences(question, blocks, similarity, dense_weight)
    if not sentences:
        return "", None
    best = max(range(len(sentences)), key=lambda i: (sentences[i][2], -i))
    quote = sentences[best][1]
    if _LIST_INTRO.search(quote):  # "两个主流发行版为： • TeX Live …": the other items' first sentences belong to it
        items = [s for b, s, _ in sentences[best + 1:] if b == sentences[best][0] and _BULLET.match(s)]
        for item in items[:5]:
            if len(quote) + len(item) + 3 > max_chars:
                break
            quote = f"{quote} … {item}"
    else:  # the best sentence often introduces the answer, or is the section title, and another one holds it
        quote = _with_second(sentences, best, max_chars)
    return (quote if len(quote) <= max_chars else quote[: max_chars - 1] + "…"), sentences[best][0]


def _heading(sentence: str) -> bool:
    """A section title rather than a sentence: short, with no sentence ending."""
    return len(sentence) < 20 and not sentence.endswith(_ENDINGS)


def _with_second(sentences: list[tuple[int, str, float]], best: int, max_chars: int) -> str:
    """The best sentence and the next best one of its block that matches the question at all, in document order
    (" … " between them when they are not neighbours), when both fit in `max_chars`. "The first thing to do is to
    create a new project." came without "Click File → New Project."; with the second sentence the quote held the
    answer for 237 of 279 questions whose answer was in the cited block, against 192 (docs/evaluation.md)."""
    block, quote = sentences[best][0], sentences[best][1]
    others = [i for i, (b, text, value) in enumerate(sentences)
              if b == block and i != best and value > 0 and not _heading(text)]
    if not others:
        return quote
    second = max(others, key=lambda i: (sentences[i][2], -i))
    text = sentences[second][1]
    gap = " " if abs(second - best) == 1 else " … "
    if len(quote) + len(gap) + len(text) > max_chars:
        return quote
    return f"{text}{gap}{quote}" if second < best else f"{quote}{gap}{text}"


def better_block(question: str, blocks: list[str], cited: list[int], margin: float, similarity=None,  # noqa: ANN001
                 dense_weight: float = 0.0) -> int | None:
    """The index of an uncited block whose best sentence matches `question` at least `margin` times better than
    any sentence of the cited blocks (indexes in `cited`), or None. The small model sometimes marks the wrong
    block: "[3]" for "hyperref 宏包中哪个命令把一段文字作为超链接？" where [3] is about \\hyperref and [1] says
    "把一段文字作为超链接： \\href{⟨url⟩}{⟨text⟩}"."""
    best: dict[int, float] = {}
    for b, _, value in _scored_sentences(question, blocks, similarity, dense_weight):
        best[b] = max(best.get(b, 0.0), value)
    if not best or margin <= 0:
        return None
    top = max(best, key=lambda b: (best[b], -b))
    cited_best = max((best.get(b, 0.0) for b in cited), default=0.0)
    return top if top not in cited and best[top] > 0 and best[top] >= margin * cited_best else None
