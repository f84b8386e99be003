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

from rag.answer.sentences import ASKS_NUMBER, NUMBER, dense_bonus, evidence_scores, split_sentences

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
                fixed: set[int] | frozenset[int] = frozenset(),
                similarity: Callable[[list[str]], list[float]] | None = None, dense_weight: float = 0.0) -> list[str]:
    """The block texts cut down to at most ~`budget` tokens in all (blocks in `fixed` are kept whole).

    `texts` are in rank order (best first); `count` gives a text's token count with the model's tokenizer.
    Blocks that already fit are returned unchanged. With `similarity` (each sentence's cosine similarity to the
    question, by the knowledge base's embedder: any language) a sentence also scores `dense_weight` times how far
    it is above the median sentence, relative to the best one: a paraphrase or a sentence in the other language
    shares no words with the question.
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
    for s, bonus in zip(sentences, dense_bonus(similarity, [s.text for s in sentences], dense_weight)):
        s.score += bonus

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


@dataclass
class Passages:
    """The evidence the model is given, numbered from 1: user corrections first, then document blocks cut to the
    sentences that carry the question's evidence."""

    blocks: list[tuple]  # (filename, page, section, text as the model reads it)
    sources: list  # rag.events.Source of each block, same numbering
    full_texts: dict[int, str]  # number -> whole block text (claims are checked on whole blocks)
    n_corrections: int
    matched: str  # what sentences are matched with: the question asked, and its translation
    similarity: Callable[[list[str]], list[float]] | None = None  # sentences -> similarity to the question


def select(svc, kb: str, turn, found) -> Passages:  # noqa: ANN001
    """The Passages for a turn: the gate's blocks cut to their evidence within RAGKB_ANSWER_CONTEXT_TOKENS, else the
    budget the model affords (rag.llm.LLMService.context_tokens), counted with its tokenizer; user corrections are
    never cut."""
    from rag.corrections import CORRECTION_FILENAME
    from rag.events import Source

    corrections, hits = found.corrections, found.hits
    blocks = [(CORRECTION_FILENAME, None, f"corrected answer to: {c.question}", c.answer) for c in corrections]
    blocks += [(h.filename, h.page, h.section, model_text(svc.settings, h)) for h in hits]
    sources = [Source(n=n, filename=CORRECTION_FILENAME, page=None, section=c.question, snippet=c.answer[:400],
                      score=round(c.score, 4), doc_id="", chunk_id=f"correction:{c.id}", kind="correction")
               for n, c in enumerate(corrections, start=1)]
    sources += [_source(len(corrections) + i, h) for i, h in enumerate(hits, start=1)]
    # the model is asked the user's question; the passages' sentences are matched with its translation too
    matched = f"{turn.asked} {found.translated}" if found.translated else turn.asked
    full = {n: b[3] for n, b in enumerate(blocks, start=1)}
    similarity = _similarity(svc, kb, turn, found)
    budget = svc.settings.answer_context_tokens
    if budget is None:
        budget = svc.llm.context_tokens()
    if budget:
        texts = trim_blocks(matched, [b[3] for b in blocks], budget, svc.llm.count_tokens,
                            fixed=set(range(len(corrections))), similarity=similarity,
                            dense_weight=svc.settings.evidence_dense_weight)
        blocks = [(*b[:3], t) for b, t in zip(blocks, texts)]
    for src, b in zip(sources, blocks):
        src.evidence = " ".join(b[3].split())
    return Passages(blocks, sources, full, len(corrections), matched, similarity)


def _similarity(svc, kb: str, turn, found) -> Callable[[list[str]], list[float]] | None:  # noqa: ANN001
    """Cosine similarity of sentences to the question (and its translation: the better of the two) by the knowledge
    base's embedder, or None when that embedder does not serve the question's language (rag.retrieval.leg_weights)."""
    if not found.hits or not svc.settings.evidence_dense_weight:
        return None
    from rag.retrieval import leg_weights

    model = svc.store.get_row(kb).embedding_model
    queries = [q for q in (turn.asked, found.translated) if q and leg_weights(svc.store, q, model)[0] > 0]
    if not queries:
        return None
    import numpy as np

    embedder = svc.store.embeddings(model=model)
    known: dict[str, float] = {}  # the quote of the check stage asks again for sentences already scored
    asked: list = []  # the questions' vectors, embedded on first use: blocks that fit need none

    def similarity(sentences: list[str]) -> list[float]:
        if not asked:
            q = np.asarray([embedder.embed_query(x) for x in queries], dtype=np.float32)
            asked.append(q / (np.linalg.norm(q, axis=1, keepdims=True) + 1e-9))
        if missing := list(dict.fromkeys(x for x in sentences if x not in known)):
            d = np.asarray(embedder.embed_documents([x[:400] for x in missing]), dtype=np.float32)
            d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-9
            known.update(zip(missing, (d @ asked[0].T).max(axis=1).tolist()))
        return [known[x] for x in sentences]

    return similarity


def model_text(settings, hit) -> str:  # noqa: ANN001
    """The block as the model reads it: without its instruction-like sentences (rag.answer.injection), which its
    source lists as left out."""
    if not settings.defuse_instructions:
        return hit.text
    from rag.answer.injection import defuse

    found = defuse(hit.text)
    if found.dropped:
        hit.extra["left_out"] = found.dropped
    return found.text


def _source(n: int, hit):  # noqa: ANN001, ANN202
    from rag.events import Source

    snippet = " ".join(hit.text.split())
    return Source(n=n, filename=hit.filename, page=hit.page, section=hit.section,
                  snippet=snippet[:400] + ("…" if len(snippet) > 400 else ""), score=round(hit.score, 6),
                  doc_id=hit.doc_id, chunk_id=hit.chunk_id, left_out=list(hit.extra.get("left_out", [])))
