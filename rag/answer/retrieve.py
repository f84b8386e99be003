"""Retrieve: the blocks for a turn, judged by the answerability gate, and the user corrections that apply.

Hybrid search (rag.retrieval) for every query, fused by reciprocal rank; the gate (rag.answer.gate) keeps the
blocks that are evidence for the question. When most blocks found are in the other language (an English
question about a Chinese manual), the question is translated once and searched again with both; the gate then
judges a block by its similarity to the question in the block's own language, never across languages.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field

from rag.answer.generate import ms
from rag.answer.prompts import language_of
from rag.errors import RagkbError
from rag.events import Status
from rag.retrieval import SearchHit, leg_weights, search
from rag.text import SOME_CHINESE, cjk_ratio


@dataclass
class Found:
    """What retrieval found for a turn."""

    retrieved: list[SearchHit]  # ranked, before the gate
    hits: list[SearchHit]  # what the model may see: the gate's picks
    translated: str | None = None  # the question in the documents' language, when it was translated
    unknown: list[str] = field(default_factory=list)  # names in the question that no chunk mentions
    corrections: list = field(default_factory=list)  # user corrections that answer it (rag.corrections)


@dataclass
class ExplainedHit:
    """A retrieved block as the answer gate sees it."""

    hit: SearchHit
    coverage: float  # share of the question's topic words in the block (IDF-weighted)
    dense: float | None  # cosine similarity, None when the embedder does not serve the language
    kept: bool  # the gate keeps it as evidence
    in_prompt: bool  # the model would see it (rag.answer.gate.prompt_picks)
    why: str
    min_dense: float = 1.0  # the similarity from which it counts, for its model and pair of languages


def find(svc, kb: str, turn, timings: dict) -> Generator:  # noqa: ANN001
    """The Found for `turn` in knowledge base `kb`; yields a status line when the question is translated."""
    t1 = time.perf_counter()
    retrieved = svc.rerank(turn.standalone, svc.retrieve(kb, turn.queries, svc.settings.answer_k))
    timings["retrieval_ms"] = ms(t1)
    found = Found(retrieved, svc.relevant(kb, turn.queries, retrieved))
    # what it names that no chunk mentions (the gate then kept nothing): refused, no translation call
    found.unknown = [] if found.hits else unknown_names(svc, kb, turn.standalone)
    if not found.unknown and (target := other_language(svc, kb, turn.standalone, retrieved)) is not None:
        yield Status("searching with the question in the documents' language")
        t3 = time.perf_counter()
        found.translated = svc.translate(turn.standalone, target)
        timings["translate_ms"] = ms(t3)
        if found.translated:
            turn.queries.append(found.translated)
            t3 = time.perf_counter()
            fused = svc.rerank(turn.standalone, svc.retrieve(kb, turn.queries, svc.settings.answer_k))
            found.retrieved, found.hits = fused, svc.relevant(kb, turn.queries, fused, found.translated)
            timings["retrieval_ms"] += ms(t3)
    found.corrections = svc.corrections_for(kb, [turn.question, *turn.queries])
    return found


def retrieve(svc, kb: str, queries: list[str], k: int) -> list[SearchHit]:  # noqa: ANN001
    """Search every query and fuse the rankings by reciprocal rank (one query: its own ranking)."""
    s = svc.settings
    fetch = max(k, s.rerank_candidates if s.rerank_model else k)
    queries = [q for q in queries if q.strip()]
    rankings = [search(svc.store, kb, q, k=fetch) for q in queries]
    similarity: dict[str, dict[str, float]] = {}  # the gate judges a dense score by the languages of its query
    for q, ranking in zip(queries, rankings):
        for hit in ranking:
            hit.extra["dense_query"] = q
            hit.extra["similarity"] = similarity.setdefault(hit.chunk_id, {})  # {query: its score} of this chunk
            if hit.dense_score is not None:
                hit.extra["similarity"][q] = hit.dense_score
    if len(rankings) == 1:
        return rankings[0]
    fused: dict[str, float] = {}
    best: dict[str, SearchHit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + 1.0 / (s.rrf_k + rank)
            prev = best.get(hit.chunk_id)
            if prev is None or (hit.dense_score or -1) > (prev.dense_score or -1):
                best[hit.chunk_id] = hit
    out = []
    for cid in sorted(fused, key=lambda c: -fused[c])[:fetch]:
        best[cid].score = fused[cid]
        out.append(best[cid])
    return out


def rerank(svc, question: str, hits: list[SearchHit]) -> list[SearchHit]:  # noqa: ANN001
    """Hits reordered by the cross-encoder of RAGKB_RERANK_MODEL (unset: unchanged)."""
    if not svc.settings.rerank_model or not hits:
        return hits
    if svc._reranker is None:
        from sentence_transformers import CrossEncoder

        from rag.embeddings import resolve_model_path

        try:
            svc._reranker = CrossEncoder(resolve_model_path(svc.settings.rerank_model),
                                         device=svc.settings.resolved_device())
        except Exception as exc:
            raise RagkbError(f"Cannot load the reranker '{svc.settings.rerank_model}': {exc}. ragkb does not "
                             "download models: copy it to this machine and set RAGKB_RERANK_MODEL to its path, "
                             "or unset RAGKB_RERANK_MODEL.") from exc
    scores = svc._reranker.predict([(question, h.text) for h in hits])
    for h, s in zip(hits, scores):
        h.extra["rerank_score"] = float(s)
    return sorted(hits, key=lambda h: -h.extra["rerank_score"])


def evidence(svc, kb: str, questions: list[str], hits: list[SearchHit], translated: str | None = None) -> list:  # noqa: ANN001
    """rag.answer.gate.Evidence of each hit for the question (any of its formulations): what the gate
    judges, and what `ragkb eval gate` measures. With `translated` (the question in the documents' language, one
    of `questions`), a hit's similarity counts only to a formulation in the hit's own language."""
    from rag.answer.gate import block_evidence, language_pair, topic_words
    from rag.embeddings import dense_evidence

    row = svc.store.get_row(kb)
    index = svc.store.bm25(row)
    chunks = svc.store.registry.chunks_by_ids([h.chunk_id for h in hits])
    tokens = {cid: r.tokens.split(" ") for cid, r in chunks.items()}
    dense_counts = any(leg_weights(svc.store, q, row.embedding_model)[0] > 0 for q in questions)
    word_sets = [topic_words(q) for q in questions]
    out = []
    for h in hits:
        query, dense = h.extra.get("dense_query", questions[0] if questions else ""), h.dense_score
        if translated:  # the best similarity to a formulation in the block's language, else none
            same = [(s, q) for q, s in h.extra.get("similarity", {}).items() if language_pair(q, h.text) != "cross"]
            dense, query = max(same) if same else (None, "")
        pair = language_pair(query, h.text)
        min_dense = dense_evidence(svc.settings, row.embedding_model, pair, translated=query == translated) \
            if dense_counts and questions and dense is not None else None
        out.append(block_evidence(index, word_sets, tokens.get(h.chunk_id, []), dense, min_dense))
    return out


def gate(svc, kb: str, questions: list[str], hits: list[SearchHit],
         translated: str | None = None) -> tuple[list, list[bool], list[int]]:  # noqa: ANN001
    """Each hit's evidence, whether the gate keeps it, and the positions the model sees
    (rag.answer.gate.prompt_picks)."""
    from rag.answer.gate import passes, prompt_picks

    s = svc.settings
    evs = evidence(svc, kb, questions, hits, translated)
    kept = [passes(ev, s.min_lexical_coverage) for ev in evs]
    if any(kept) and questions and unknown_names(svc, kb, questions[0]):  # refused anyway when none passes
        kept = [False] * len(kept)
    return evs, kept, prompt_picks(kept, s.answer_k)


def relevant(svc, kb: str, question: str | list[str], hits: list[SearchHit],  # noqa: ANN001
             translated: str | None = None) -> list[SearchHit]:
    """The hits the model sees (rag.answer.gate.prompt_picks): none when no hit is evidence for the
    question (its topic words, or close in embedding space, with any of its formulations), and the chain
    refuses without a model call; else the best-ranked hit and the hits that are evidence, RAGKB_ANSWER_K at most."""
    questions = [question] if isinstance(question, str) else [q for q in question if q.strip()]
    if not hits:
        return []
    evs, kept, picks = gate(svc, kb, questions, hits, translated)
    for h, ev, ok in zip(hits, evs, kept):
        h.extra["coverage"] = round(ev.coverage, 3)
        h.extra["evidence"] = ok
    return [hits[i] for i in picks]


def explain(svc, kb: str, query: str, k: int | None = None) -> list[ExplainedHit]:  # noqa: ANN001
    """The retrieval test: the ranked blocks the chain would see for `query` (same retrieval, same
    reranker), each with the gate's verdict and why, and whether it would go into the prompt."""
    from rag.answer.gate import explain as why_of

    hits = rerank(svc, query, retrieve(svc, kb, [query], k or svc.settings.answer_k))
    evs, kept, picks = gate(svc, kb, [query], hits)
    unknown = [] if any(kept) else unknown_names(svc, kb, query)  # a question with such a name keeps no block
    out = []
    for i, (h, ev) in enumerate(zip(hits, evs)):
        why = why_of(ev, svc.settings.min_lexical_coverage)
        if unknown:
            why += f"; the question names {', '.join(unknown)}, which no chunk mentions: refused whatever the coverage"
        if i in picks and not kept[i]:
            why += "; in the prompt all the same: the best-ranked block goes in whenever another block passes"
        out.append(ExplainedHit(h, round(ev.coverage, 3), ev.dense, kept[i], i in picks, why, ev.min_dense))
    return out


def unknown_names(svc, kb: str, question: str) -> list[str]:  # noqa: ANN001
    """What the question names that no chunk of the knowledge base mentions (rag.answer.gate.unknown_names);
    with any, the gate refuses. Empty with RAGKB_REFUSE_UNKNOWN_NAMES off."""
    if not svc.settings.refuse_unknown_names:
        return []
    from rag.answer.gate import unknown_names as unknown

    return unknown(question, svc.store.bm25(svc.store.get_row(kb)), svc.store.chunk_texts)


def other_language(svc, kb: str, question: str, retrieved: list[SearchHit]) -> str | None:  # noqa: ANN001
    """The language to translate `question` into before searching again: the other one, when most blocks
    retrieved for it are written in it (an English question about a Chinese manual). Else None: no model call.
    (Also translating when only some are and none is evidence let "在 Word 中插入页码？" through the gate on
    ctex's English code listings, answered from the model's memory.) Needs `relevant` to have judged them."""
    if not svc.settings.translate_question or not retrieved:
        return None
    lang = language_of(question)
    other = {"zh": "en", "en": "zh"}[lang]
    share = language_share(svc, kb, lang)
    # a language this rare in the knowledge base is its appendix or its listings (lshort's English license, the
    # installation guide's example preseed file): a block there is no sign that the question found its words
    if share < svc.settings.translate_minority_share:
        return other
    # a block in the question's own language that the gate kept: the question found its words (with a
    # multilingual embedder most retrieved blocks can be in the other language all the same: "支持哪些文件格式？"
    # on the two-language samples was translated, and the English page then took the Chinese one's place)
    if any(h.extra.get("evidence") and language_of(h.text) == lang for h in retrieved):
        return None
    if 2 * sum(language_of(h.text) == other for h in retrieved) > len(retrieved):
        return other
    return other if share < svc.settings.translate_below_share else None


def language_share(svc, kb: str, lang: str) -> float:  # noqa: ANN001
    """The share of the knowledge base's chunks written in `lang` ('zh'/'en'), counted once per change of the
    knowledge base (its generation). A chunk with any real Chinese in it (5% of its letters) is Chinese: a Chinese
    manual quotes English commands, options and code on most pages, an English one holds no Chinese (counted by
    each chunk's majority, ctex's Chinese manual was 21% Chinese, by this 38%)."""
    row = svc.store.get_row(kb)
    key = (row.id, svc.store.registry.generation(row.id))
    shares = svc._language_shares.get(key)
    if shares is None:
        rows = svc.store.registry.chunk_rows(row.id, svc.store.registry.ready_doc_ids(row.id))
        zh = sum(cjk_ratio(r.text) >= SOME_CHINESE for r in rows) / max(1, len(rows))
        shares = {"zh": zh, "en": 1.0 - zh if rows else 0.0}
        svc._language_shares = {key: shares, **{k: v for k, v in svc._language_shares.items() if k[0] != row.id}}
    return shares.get(lang, 0.0)


def corrections_for(svc, kb: str, questions: list[str]) -> list:  # noqa: ANN001
    """User corrections that answer one of `questions` in this knowledge base, best first."""
    if svc.conversations is None:
        return []
    from rag.corrections import match_corrections

    rows = svc.conversations.corrections(kb)
    if not rows:
        return []
    model = svc.store.get_row(kb).embedding_model
    embed = (lambda texts: svc.cached_embed(texts, model)) \
        if any(leg_weights(svc.store, q, model)[0] > 0 for q in questions) else None
    return match_corrections(questions, rows, embed=embed)
