"""Prompt economy: fit the context blocks into a token budget by keeping the sentences that carry evidence.

On a CPU the prompt is the answer latency (prefill runs at ~100 tokens/s on 2 cores, decode is cheap
by comparison), so whole 600-character chunks are too expensive. Each block keeps its best-matching
sentence (so every retrieved block stays citable, with its file/page/section header), then the budget
is filled with the next best sentences and with the neighbours of kept ones (the sentence after a
matching one often holds the answer: "只需使用命令：" / "\\tableofcontents"). Kept sentences stay in
document order, dropped stretches become " … ". Tokens are counted with the model's own tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rag.citations import ASKS_NUMBER, NUMBER, evidence_scores, split_sentences

GAP = " … "
MAX_SENTENCE_CHARS = 400  # a "sentence" longer than this (code, a table row run) is cut around its match


@dataclass
class _Sentence:
    block: int
    index: int
    text: str
    score: float
    tokens: int
    kept: bool = False


def trim_blocks(question: str, texts: list[str], budget: int, count: Callable[[str], int],
                fixed: set[int] | frozenset[int] = frozenset()) -> list[str]:
    """The block texts cut down to at most ~`budget` tokens in all (blocks in `fixed` are kept whole).

    `texts` are in rank order (best first); `count` gives a text's token count with the model's tokenizer.
    Blocks that already fit are returned unchanged.
    """
    totals = [count(t) for t in texts]
    if sum(totals) <= budget:
        return list(texts)
    from rag.lexical import tokenize

    asked = set(tokenize(question))
    wants_number = bool(ASKS_NUMBER.search(question))
    sentences: list[_Sentence] = []
    for b, text in enumerate(texts):
        if b in fixed:
            continue
        parts = [_cut(s, asked) for s in split_sentences(text)] or [text.strip()]
        chars = sum(len(p) for p in parts) or 1
        ratio = totals[b] / chars  # tokens per character of this block: one tokenizer call per block
        for i, p in enumerate(parts):
            sentences.append(_Sentence(b, i, p, 0.0, max(1, round(len(p) * ratio))))
    for s, score in zip(sentences, evidence_scores(asked, [set(tokenize(s.text)) for s in sentences])):
        s.score = score + (0.5 if wants_number and score and NUMBER.search(s.text) else 0.0)

    used = sum(totals[b] for b in fixed)
    by_block: dict[int, list[_Sentence]] = {}
    for s in sentences:
        by_block.setdefault(s.block, []).append(s)
    for b in sorted(by_block):  # every block keeps its best sentence (the first one when nothing matches)
        best = max(by_block[b], key=lambda s: (s.score, -s.index))
        best.kept = True
        used += best.tokens

    def value(s: _Sentence) -> float:
        row = by_block[s.block]
        near = [row[j].score for j in (s.index - 1, s.index + 1) if 0 <= j < len(row) and row[j].kept]
        return (s.score + 0.5 * max(near, default=0.0) + (0.05 if near else 0.0)) / (1 + 0.2 * s.block)

    while True:
        candidates = [s for s in sentences if not s.kept and used + s.tokens <= budget and value(s) > 0]
        if not candidates:
            break
        pick = max(candidates, key=value)
        pick.kept = True
        used += pick.tokens

    out = []
    for b, text in enumerate(texts):
        if b in fixed:
            out.append(text)
            continue
        row = by_block[b]
        pieces, last = [], -1
        for s in row:
            if s.kept:
                if pieces and s.index != last + 1:
                    pieces.append(GAP.strip())
                pieces.append(s.text)
                last = s.index
        if row[0].kept is False:
            pieces.insert(0, GAP.strip())
        if row[-1].kept is False:
            pieces.append(GAP.strip())
        out.append(" ".join(pieces))
    return out


def _cut(sentence: str, asked: set[str]) -> str:
    """A sentence too long for a prompt, cut to a window around its first question word."""
    if len(sentence) <= MAX_SENTENCE_CHARS:
        return sentence
    lowered = sentence.lower()
    hits = [lowered.find(w) for w in asked if w and lowered.find(w) >= 0]
    at = min(hits) if hits else 0
    start = max(0, at - MAX_SENTENCE_CHARS // 3)
    piece = sentence[start:start + MAX_SENTENCE_CHARS]
    return ("…" if start else "") + piece + ("…" if start + MAX_SENTENCE_CHARS < len(sentence) else "")
