"""The answer chain: condense a follow-up, retrieve, check relevance, prompt, stream, cite.

Built from LangChain runnables and the hybrid retriever. Output is a stream of AnswerEvent that
every face renders the same way: status lines, answer tokens, then the sources the answer
actually cited (a citation to no retrieved block is removed from the text and never shown).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda

from rag.citations import (
    BlankRunGuard,
    CitationFilter,
    RefusalHold,
    SourceEchoFilter,
    TrailingBlankHold,
    adds_nothing,
    attribute,
    better_block,
    names_fewer,
    names_nothing,
    quote_with_block,
    without_echoed_sections,
)
from rag.claims import grounding, uncited_answer, unsupported_claims
from rag.context import trim_blocks
from rag.corrections import CORRECTION_FILENAME
from rag.errors import LLMUnavailable, RagkbError
from rag.events import Answer, AnswerEvent, Done, Failed, Source, Sources, Status, Token, collect
from rag.followup import needs_context, substitute_answer_name, substitute_referent
from rag.llm import LLMService, describe_llm_error
from rag.prompts import (
    NEVER_MENTIONED, NO_ANSWER, OTHER_LANGUAGE_HINT, OTHER_LANGUAGE_QUOTE, QUOTE_LEAD, answer_messages, condense_messages, is_refusal, language_of,
    multi_query_messages, translate_messages,
)
from rag.retrieval import SearchHit, search
from rag.store import KnowledgeBaseStore

log = logging.getLogger(__name__)


def _messages(pairs: list[tuple[str, str]]):
    cls = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [cls[role](content=content) for role, content in pairs]


@dataclass
class ExplainedHit:
    """A retrieved block as the answer gate sees it."""

    hit: SearchHit
    coverage: float  # share of the question's topic words in the block (IDF-weighted)
    dense: float | None  # cosine similarity, None when the embedder does not serve the language
    kept: bool  # the gate keeps it as evidence
    in_prompt: bool  # the model would see it (rag.answerability.prompt_picks)
    why: str
    min_dense: float = 1.0  # the similarity from which it counts, for its model and pair of languages


class AnswerService:
    """One per process; shared by the CLI, the web UI and the API."""

    def __init__(self, store: KnowledgeBaseStore, llm: LLMService | None = None, conversations=None):  # noqa: ANN001
        self.store = store
        self.settings = store.settings
        self.llm = llm or LLMService(store.settings)
        self.conversations = conversations  # a rag.conversations.ConversationStore: enables user corrections
        self._reranker = None
        self._vectors: dict[tuple[str, str], list[float]] = {}  # (model, text) -> embedding, for corrections
        self._vectors_lock = threading.Lock()
        self._language_shares: dict[tuple[str, int], dict[str, float]] = {}

    # -- steps ------------------------------------------------------------------------------
    def condense(self, question: str, history: list[tuple[str, str]]) -> tuple[str, bool]:
        """(standalone question, made whole?) for a follow-up: made whole by the model's rewrite, or without it when
        its pronoun points at the one name the previous answer gave (`substitute_answer_name`). When the model cannot
        rewrite it (in time, or plausibly), the back-reference is replaced by the previous question's topic
        (`substitute_referent`); the answer prompt then also shows the last exchange."""
        recent = history[-self.settings.history_turns:] if self.settings.history_turns else []
        last_user = next((c for r, c in reversed(recent) if r == "user"), "")
        if not recent or not last_user:
            return question, False
        # "它" for what the previous answer named (\footnote): that name, no model call (both rewrites below
        # resolve the pronoun from the previous question only); a whole question, asked alone like a rewrite
        last_answer = next((c for r, c in reversed(recent) if r == "assistant"), "")
        if self.settings.follow_answer_name and (named := substitute_answer_name(question, last_user, last_answer)):
            return named, True
        if not self.settings.condense_question:
            return self._substituted(question, last_user), False
        s = self.settings
        try:
            chain = RunnableLambda(lambda q: _messages(condense_messages(q, recent))) | \
                self.llm.chat_model(temperature=0.0, max_tokens=s.condense_max_tokens,
                                    timeout=min(s.condense_timeout, s.llm_timeout)) | StrOutputParser()
            out = chain.invoke(question).strip().strip('"“”').splitlines()
        except Exception as exc:
            if "Timeout" not in type(exc).__name__:
                raise
            log.info("follow-up rewrite took over %.0f s; resolved without the model", s.condense_timeout)
            return self._substituted(question, last_user), False
        text = _REWRITE_LABEL.sub("", out[0].strip() if out else "").strip().strip('"“”')
        if _plausible_rewrite(text, question) and text != question and \
                "".join(last_user.split()) not in "".join(text.split()):  # not just both questions pasted together
            return text, True
        return self._substituted(question, last_user), False

    def _substituted(self, question: str, last_user: str) -> str:
        """The follow-up with its back-reference replaced by the previous question's topic (`substitute_referent`).
        A previous question in the other language is translated first (one capped call): its English topic in a
        Chinese follow-up ("commands produce the number and the page of a cross reference需要编译几次？") matched
        neither language's words and the gate refused a question the manual answers."""
        lang = language_of(question)
        if self.settings.translate_question and language_of(last_user) != lang:
            last_user = self.translate(last_user, lang) or last_user
        return substitute_referent(question, last_user)

    def translate(self, question: str, target: str) -> str | None:
        """`question` in language `target` ('zh'/'en') by the model, capped like the follow-up rewrite; None when
        it took too long or did not come back as a translated question (small models answer instead)."""
        s = self.settings
        source = language_of(question)
        try:
            chain = RunnableLambda(lambda q: _messages(translate_messages(q, source, target))) | \
                self.llm.chat_model(temperature=0.0, max_tokens=s.condense_max_tokens,
                                    timeout=min(s.condense_timeout, s.llm_timeout)) | StrOutputParser()
            out = chain.invoke(question).strip().splitlines()
        except Exception as exc:
            if "Timeout" not in type(exc).__name__:
                raise
            log.info("question translation took over %.0f s; searched in the question's language only",
                     s.condense_timeout)
            return None
        text = _TRANSLATION_LABEL.sub("", out[0] if out else "").strip().strip('"“”`')
        return text if _plausible_translation(text, question, target) else None

    def _other_language(self, kb: str, question: str, retrieved: list[SearchHit]) -> str | None:
        """The language to translate `question` into before searching again: the other one, when most blocks
        retrieved for it are written in it (an English question about a Chinese manual). Else None: no model call.
        (Also translating when only some are and none is evidence let "在 Word 中插入页码？" through the gate on
        ctex's English code listings, answered from the model's memory.) Needs `relevant` to have judged them."""
        if not self.settings.translate_question or not retrieved:
            return None
        lang = language_of(question)
        # a block in the question's own language that the gate kept: the question found its words (with a
        # multilingual embedder most retrieved blocks can be in the other language all the same: "支持哪些文件格式？"
        # on the two-language samples was translated, and the English page then took the Chinese one's place)
        if any(h.extra.get("evidence") and language_of(h.text) == lang for h in retrieved):
            return None
        other = {"zh": "en", "en": "zh"}[lang]
        if 2 * sum(language_of(h.text) == other for h in retrieved) > len(retrieved):
            return other
        share = self.settings.translate_below_share
        return other if share and self.language_share(kb, lang) < share else None

    def language_share(self, kb: str, lang: str) -> float:
        """The share of the knowledge base's chunks written in `lang` ('zh'/'en'), counted once per change of the
        knowledge base (its generation)."""
        from collections import Counter

        row = self.store.get_row(kb)
        key = (row.id, self.store.registry.generation(row.id))
        shares = self._language_shares.get(key)
        if shares is None:
            rows = self.store.registry.chunk_rows(row.id, self.store.registry.ready_doc_ids(row.id))
            counts = Counter(language_of(r.text) for r in rows)
            shares = {k: v / max(1, len(rows)) for k, v in counts.items()}
            self._language_shares = {key: shares, **{k: v for k, v in self._language_shares.items() if k[0] != row.id}}
        return shares.get(lang, 0.0)

    def reformulate(self, question: str) -> list[str]:
        n = self.settings.multi_query_count
        chain = RunnableLambda(lambda q: _messages(multi_query_messages(q, n))) | \
            self.llm.chat_model(temperature=0.3, max_tokens=160) | StrOutputParser()
        lines = [ln.strip(" -*0123456789.、)") for ln in chain.invoke(question).splitlines()]
        return [ln for ln in lines if ln and ln != question][:n]

    def retrieve(self, kb: str, queries: list[str], k: int) -> list[SearchHit]:
        """Search every query and fuse the rankings by reciprocal rank (one query: its own ranking)."""
        fetch = max(k, self.settings.rerank_candidates if self.settings.rerank_model else k)
        rankings = [search(self.store, kb, q, k=fetch) for q in queries if q.strip()]
        for q, ranking in zip([q for q in queries if q.strip()], rankings):
            for hit in ranking:  # the gate judges a dense score by the languages of the query that scored it
                hit.extra["dense_query"] = q
        if len(rankings) == 1:
            return rankings[0]
        fused: dict[str, float] = {}
        best: dict[str, SearchHit] = {}
        for ranking in rankings:
            for rank, hit in enumerate(ranking, start=1):
                fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + 1.0 / (self.settings.rrf_k + rank)
                prev = best.get(hit.chunk_id)
                if prev is None or (hit.dense_score or -1) > (prev.dense_score or -1):
                    best[hit.chunk_id] = hit
        order = sorted(fused, key=lambda c: -fused[c])[:fetch]
        out = []
        for cid in order:
            h = best[cid]
            h.score = fused[cid]
            out.append(h)
        return out

    def rerank(self, question: str, hits: list[SearchHit]) -> list[SearchHit]:
        if not self.settings.rerank_model or not hits:
            return hits
        if self._reranker is None:
            from sentence_transformers import CrossEncoder

            from rag.embeddings import resolve_model_path

            try:
                self._reranker = CrossEncoder(resolve_model_path(self.settings.rerank_model),
                                              device=self.settings.resolved_device())
            except Exception as exc:
                raise RagkbError(f"Cannot load the reranker '{self.settings.rerank_model}': {exc}. ragkb does not "
                                 "download models: copy it to this machine and set RAGKB_RERANK_MODEL to its path, "
                                 "or unset RAGKB_RERANK_MODEL.") from exc
        scores = self._reranker.predict([(question, h.text) for h in hits])
        for h, s in zip(hits, scores):
            h.extra["rerank_score"] = float(s)
        return sorted(hits, key=lambda h: -h.extra["rerank_score"])

    def evidence(self, kb: str, questions: list[str], hits: list[SearchHit]) -> list:
        """rag.answerability.Evidence of each hit for the question (any of its formulations): what the gate
        judges, and what `ragkb eval gate` measures."""
        from rag.answerability import block_evidence, language_pair, topic_words
        from rag.embeddings import dense_evidence
        from rag.retrieval import leg_weights

        row = self.store.get_row(kb)
        index = self.store.bm25(row)
        tokens = {cid: r.tokens.split(" ") for cid, r in self.store.registry.chunks_by_ids([h.chunk_id for h in hits]).items()}
        dense_counts = any(leg_weights(self.store, q, row.embedding_model)[0] > 0 for q in questions)
        word_sets = [topic_words(q) for q in questions]
        return [block_evidence(index, word_sets, tokens.get(h.chunk_id, []), h.dense_score,
                               dense_evidence(self.settings, row.embedding_model,
                                              language_pair(h.extra.get("dense_query", questions[0]), h.text))
                               if dense_counts and questions else None) for h in hits]

    def _gate(self, kb: str, questions: list[str], hits: list[SearchHit]) -> tuple[list, list[bool], list[int]]:
        """Each hit's evidence, whether the gate keeps it, and the positions the model sees
        (rag.answerability.prompt_picks)."""
        from rag.answerability import passes, prompt_picks

        evs = self.evidence(kb, questions, hits)
        kept = [passes(ev, self.settings.min_lexical_coverage) for ev in evs]
        if any(kept) and questions and self.unknown_names(kb, questions[0]):  # refused anyway when none passes
            kept = [False] * len(kept)
        s = self.settings
        dense_kept = [ev.dense is not None and ev.dense >= ev.min_dense for ev in evs]
        return evs, kept, prompt_picks(kept, s.answer_k, [ev.coverage for ev in evs], s.prompt_min_relative_coverage,
                                       dense_kept)

    def unknown_names(self, kb: str, question: str) -> list[str]:
        """What the question names that no chunk of the knowledge base mentions (rag.answerability.unknown_names);
        with any, the gate refuses. Empty with RAGKB_REFUSE_UNKNOWN_NAMES off."""
        if not self.settings.refuse_unknown_names:
            return []
        from rag.answerability import unknown_names

        return unknown_names(question, self.store.bm25(self.store.get_row(kb)), self.store.chunk_texts)

    def model_text(self, hit: SearchHit) -> str:
        """The block as the model reads it: without its instruction-like sentences (rag.injection), which its
        source lists as left out."""
        if not self.settings.defuse_instructions:
            return hit.text
        from rag.injection import defuse

        found = defuse(hit.text)
        if found.dropped:
            hit.extra["left_out"] = found.dropped
        return found.text

    def relevant(self, kb: str, question: str | list[str], hits: list[SearchHit]) -> list[SearchHit]:
        """The hits the model sees (rag.answerability.prompt_picks): none when no hit is evidence for the
        question (its topic words, or close in embedding space, with any of its formulations), and the chain
        refuses without a model call; else the best-ranked hit and the hits that are evidence, RAGKB_ANSWER_K at most."""
        questions = [question] if isinstance(question, str) else [q for q in question if q.strip()]
        if not hits:
            return []
        evs, kept, picks = self._gate(kb, questions, hits)
        for h, ev, ok in zip(hits, evs, kept):
            h.extra["coverage"] = round(ev.coverage, 3)
            h.extra["evidence"] = ok
        return [hits[i] for i in picks]

    def explain(self, kb: str, query: str, k: int | None = None) -> list[ExplainedHit]:
        """The retrieval test: the ranked blocks the chain would see for `query` (same retrieval, same
        reranker), each with the gate's verdict and why, and whether it would go into the prompt."""
        from rag.answerability import explain

        hits = self.rerank(query, self.retrieve(kb, [query], k or self.settings.answer_k))
        evs, kept, picks = self._gate(kb, [query], hits)
        unknown = [] if any(kept) else self.unknown_names(kb, query)  # a question with such a name keeps no block
        out = []
        for i, (h, ev) in enumerate(zip(hits, evs)):
            why = explain(ev, self.settings.min_lexical_coverage)
            if unknown:
                why += f"; the question names {', '.join(unknown)}, which no chunk mentions: refused whatever the coverage"
            if i in picks and not kept[i]:
                why += "; in the prompt all the same: the best-ranked block goes in whenever another block passes"
            out.append(ExplainedHit(h, round(ev.coverage, 3), ev.dense, kept[i], i in picks, why, ev.min_dense))
        return out

    def corrections_for(self, kb: str, questions: list[str]) -> list:
        """User corrections that answer one of `questions` in this knowledge base, best first."""
        if self.conversations is None:
            return []
        from rag.corrections import match_corrections
        from rag.retrieval import leg_weights

        rows = self.conversations.corrections(kb)
        if not rows:
            return []
        model = self.store.get_row(kb).embedding_model
        embed = (lambda texts: self._cached_embed(texts, model)) \
            if any(leg_weights(self.store, q, model)[0] > 0 for q in questions) else None
        return match_corrections(questions, rows, embed=embed)

    def warm_up(self) -> None:
        """Load what a first question would otherwise wait for: the embedding model, the embedded model server
        and, in its prompt cache, the fixed system prompt. Only logged on failure: a question reports it."""
        t0 = time.perf_counter()
        try:
            for model in dict.fromkeys([self.settings.embedding_model, *(k.embedding_model for k in self.store.list())]):
                self.store.embeddings(model=model).embed_query("warm up")
            if self.llm.embedded:
                self.llm.chat_model(max_tokens=1).invoke(_messages(answer_messages("hello", [])))
        except Exception as exc:  # noqa: BLE001 - a background nicety; the first question reports real errors
            log.warning("warm-up incomplete (%s: %s); the first question will load what is missing",
                        type(exc).__name__, exc)
            return
        log.info("warm-up done in %.1f s", time.perf_counter() - t0)

    def _cached_embed(self, texts: list[str], model: str) -> list[list[float]]:
        """Embeddings of correction questions (and recent questions) are computed once per model, not per question."""
        with self._vectors_lock:  # chats run in parallel threads
            known = {t: self._vectors[(model, t)] for t in texts if (model, t) in self._vectors}
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            known.update(zip(missing, self.store.embeddings(model=model).embed_documents(missing)))
            with self._vectors_lock:
                if len(self._vectors) + len(missing) > 4096:
                    self._vectors.clear()
                self._vectors.update(((model, t), known[t]) for t in missing)
        return [known[t] for t in texts]

    # -- the whole chain --------------------------------------------------------------------
    def stream(self, kb: str, question: str, history: list[tuple[str, str]] | None = None) -> Iterator[AnswerEvent]:
        """Answer `question` about knowledge base `kb`; history is [(role, text)] with role user/assistant."""
        t0 = time.perf_counter()
        history = history or []
        lang = language_of(question)
        timings: dict[str, float] = {}
        try:
            self.store.get_row(kb)  # unknown knowledge base: a clear error before any model call
            standalone, rewritten = question, False
            follow_up = bool(history) and needs_context(question)  # a complete new question costs no model call
            if follow_up:
                if self.settings.condense_question:
                    yield Status("understanding the follow-up question")
                standalone, rewritten = self.condense(question, history)
                timings["condense_ms"] = _ms(t0)
            queries = [standalone]
            if rewritten:  # the model's rewrite may drift: the deterministic one is searched too
                last_user = next((c for r, c in reversed(history) if r == "user"), "")
                resolved = substitute_referent(question, last_user)
                if resolved != standalone:
                    queries.append(resolved)
            if self.settings.multi_query:
                queries += self.reformulate(standalone)
            t1 = time.perf_counter()
            retrieved = self.rerank(standalone, self.retrieve(kb, queries, self.settings.answer_k))
            timings["retrieval_ms"] = _ms(t1)
            hits = self.relevant(kb, queries, retrieved)
            translated = None
            # what it names that no chunk mentions (the gate then kept nothing): refused below, no translation call
            unknown = [] if hits else self.unknown_names(kb, standalone)
            if not unknown and (target := self._other_language(kb, standalone, retrieved)) is not None:
                yield Status("searching with the question in the documents' language")
                t3 = time.perf_counter()
                translated = self.translate(standalone, target)
                timings["translate_ms"] = _ms(t3)
                if translated:
                    queries.append(translated)
                    t3 = time.perf_counter()
                    fused = self.rerank(standalone, self.retrieve(kb, queries, self.settings.answer_k))
                    # the fused ranking can push out the one block that was evidence: then keep the first ranking
                    if (fused_hits := self.relevant(kb, queries, fused)) or not hits:
                        retrieved, hits = fused, fused_hits
                    timings["retrieval_ms"] += _ms(t3)
            corrections = self.corrections_for(kb, [question, *queries])
        except RagkbError as exc:  # unknown knowledge base, model unavailable, model mismatch...
            yield Failed(str(exc))
            yield Done(timings=timings)
            return
        except Exception as exc:  # the model failed during condensing / reformulating
            if _is_llm_error(exc):
                yield Failed(describe_llm_error(exc, self._base_url(), self.llm.settings.llm_timeout))
                yield Done(timings=timings)
                return
            raise

        if not hits and not corrections:
            if unknown:
                named = ("、" if lang == "zh" else ", ").join(f"“{n}”" for n in unknown)
                yield Token(f"{NO_ANSWER[lang]}{'' if lang == 'zh' else ' '}{NEVER_MENTIONED[lang].format(names=named)}")
            else:
                yield Token(NO_ANSWER[lang] + self._language_hint(kb, lang, queries, retrieved))
            yield Sources([])
            yield Done(refused=True, standalone_question=standalone, timings=timings,
                       reason=f"the knowledge base never mentions {', '.join(unknown)}" if unknown
                       else "nothing relevant retrieved")
            return

        t2 = time.perf_counter()
        # User corrections come first: the model is told they override the documents.
        blocks = [(CORRECTION_FILENAME, None, f"corrected answer to: {c.question}", c.answer) for c in corrections]
        blocks += [(h.filename, h.page, h.section, self.model_text(h)) for h in hits]
        context = [_correction_source(n, c) for n, c in enumerate(corrections, start=1)]
        context += [_source(len(context) + i, h) for i, h in enumerate(hits, start=1)]
        # A follow-up made whole without the model ("那有序列表呢？" -> "有序列表用哪个环境？") is asked as such: with the
        # elliptic question and the last exchange instead, the small model repeated the previous answer (itemize).
        # (not the last resort "<previous topic> <follow-up>": that one the model reads better with the exchange)
        whole = rewritten or (follow_up and self.settings.ask_substituted and standalone != question
                              and not standalone.endswith(question.strip()) and not needs_context(standalone))
        earlier = _last_exchange(history) if follow_up and not whole else None
        asked = standalone if whole else question
        # The model is asked the user's question (asked in the passages' language alone it answered fewer dev
        # questions right; the translation beside it is RAGKB_ASK_WITH_TRANSLATION, off); the passages' sentences
        # are matched with both.
        matched = f"{asked} {translated}" if translated else asked
        full_texts = {n: b[3] for n, b in enumerate(blocks, start=1)}  # claims are checked on whole blocks
        try:
            blocks = self.fit_context(matched, blocks, fixed=set(range(len(corrections))))
            # the small model reads Chinese blocks better with the Chinese words beside the English ones (it said
            # "not in the context" to English questions with the answer in front of it); asked the other way round
            # (a Chinese question, its English translation) it answered in English or lost the answer (ctex dev)
            # ... but only when no block is in the question's own language: beside an English block that answers it
            # ("How do I add a new user account?", the generated two-language manual) the model copied the block
            beside = (translated and language_of(translated) == "zh" and self.settings.ask_with_translation
                      and all(language_of(text) != lang for text in full_texts.values()))  # whole blocks: an
            # excerpt of a Chinese page can start with its English example ("Or you can use \\[12pt] to add …")
            question_for_model = f"{asked}（{translated}）" if beside else asked
            # (its language is then that of both together: Chinese; told to answer in English instead, the model
            # refused more: lshort English dev 8 -> 7 of 18)
            pairs = answer_messages(question_for_model, blocks, earlier)
        except Exception as exc:
            if not _is_llm_error(exc) and not isinstance(exc, RagkbError):
                raise
            yield Failed(str(exc) if isinstance(exc, RagkbError) else
                              describe_llm_error(exc, self._base_url(), self.llm.settings.llm_timeout))
            yield Done(timings=timings)
            return
        prompt = _messages(pairs)
        timings["prompt_ms"] = _ms(t2)
        timings["before_llm_ms"] = _ms(t0)
        citations = CitationFilter(len(blocks))
        echo = SourceEchoFilter()
        hold = RefusalHold()
        blank = BlankRunGuard()
        trailing = TrailingBlankHold()
        parts: list[str] = []
        usage = None
        try:
            model = self.llm.chat_model()
            first = True
            for chunk in model.stream(prompt):
                if chunk.usage_metadata:  # the server's own count, in the last chunk
                    usage = chunk.usage_metadata
                text = chunk.content if isinstance(chunk.content, str) else ""
                if not text:
                    continue
                if first:
                    timings["ttft_ms"] = _ms(t0)
                    timings["llm_ttft_ms"] = _ms(t2)
                    first = False
                out = trailing.feed(hold.feed(echo.feed(citations.feed(text))))
                if out:
                    parts.append(out)
                    yield Token(out)
                if blank.feed(text):  # closing the stream stops the server's generation too
                    break
            rest = hold.feed(echo.feed(citations.flush()) + echo.flush())
            if held := hold.flush():
                worded = [h.extra.get("coverage", 0.0) >= self.settings.min_lexical_coverage for h in hits]
                rest = self._instead_of_refusal(held, lang, matched, blocks, len(corrections), citations, worded)
            rest = trailing.feed(rest)  # blank space at the very end is dropped
            if rest:
                parts.append(rest)
                yield Token(rest)
        except LLMUnavailable as exc:
            yield Failed(str(exc))
            yield Done(timings=timings, partial="".join(parts))
            return
        except Exception as exc:
            if "No generation chunks" in str(exc):  # LangChain: the server streamed nothing at all
                pass  # reported as an empty answer below
            elif not _is_llm_error(exc):
                raise
            else:
                yield Failed(describe_llm_error(exc, self._base_url(), self.llm.settings.llm_timeout))
                yield Done(timings=timings, partial="".join(parts))
                return
        answer = "".join(parts)
        if not answer.strip():  # a server that dropped the request (e.g. interrupted by another one)
            yield Failed(f"The model server at {self._base_url()} returned an empty answer; "
                                       "ask again (if it keeps happening, check the server's log).")
            yield Done(timings=timings, partial="")
            return
        refused = is_refusal(answer)
        asked_all = " ".join(dict.fromkeys(q for q in (question, standalone, translated) if q))
        attributed = None
        if not refused and not citations.cited:
            attributed = attribute(answer, [b[3] for b in blocks], question=f"{asked} {translated or ''}")
            if attributed is not None:
                citations.cited.append(attributed)
                yield Token(f" [{attributed}]")
        quoted = False
        shown = answer if attributed is None else f"{answer} [{attributed}]"  # what the user reads
        # e.g. only "[2]", the question repeated, no command named for "用什么命令…", or one of "两个…": quote the source
        # "[1] [3.5.2 对齐环境]" says nothing, nor "[1] 第 5 章 网络" (a block's heading line)
        said = without_echoed_sections(shown, [b[2] for b in blocks] + [_first_line(b[3]) for b in blocks])
        if citations.cited and (adds_nothing(said, asked_all) or (not refused and self.settings.quote_unnamed and (
                names_nothing(said, asked_all) or names_fewer(said, asked_all)))):
            quoted_q = f"{standalone} {translated or ''}"
            texts = [b[3] for b in blocks]
            other = better_block(quoted_q, texts, [n - 1 for n in citations.cited], self.settings.quote_other_block_margin)
            if other is not None:  # the model marked a block that does not say it; another one plainly does
                citations.cited.append(other + 1)
                quote, i = quote_with_block(quoted_q, [texts[other]])
                mark = f" [{other + 1}]"
            else:
                quote, i = quote_with_block(quoted_q, [texts[n - 1] for n in citations.cited])
                # several blocks cited ("[1] [2] [3] [4]"): say which one the quote is from
                mark = f" [{citations.cited[i]}]" if len(set(citations.cited)) > 1 else ""
            if quote:
                yield Token(f"\n\n{QUOTE_LEAD[lang]}“{quote}”{mark}")
                quoted = True
        timings["total_ms"] = _ms(t0)
        if attributed is not None:
            context[attributed - 1].attributed = True
        used = set(citations.cited) | ({s.n for s in context if s.kind == "correction"} if not refused else set())
        sources = [] if refused and not corrections else [s for s in context if s.n in used]
        claims = [] if refused else unsupported_claims(answer, full_texts, asked_all, self.settings.claim_min_word_support)
        grounded = None if refused else grounding(answer, list(full_texts.values()), asked_all)
        if not refused and (memory := uncited_answer(answer, bool(citations.cited), grounded,
                                                     self.settings.uncited_min_grounding, list(full_texts.values()))):
            claims.append(memory)
        yield Sources(sources)
        yield Done(refused=refused, standalone_question=standalone, unsupported_claims=[c.as_dict() for c in claims],
                   grounding=grounded, timings=timings, retrieved=len(hits), corrections=len(corrections), quoted=quoted,
                   # the server's own count; ours only for a server that reports no usage
                   prompt_tokens=usage["input_tokens"] if usage else self.llm.count_tokens("\n".join(c for _, c in pairs)),
                   completion_tokens=(usage or {}).get("output_tokens"))

    @staticmethod
    def _instead_of_refusal(reply: str, lang: str, question: str, blocks: list[tuple], n_corrections: int,
                            citations: CitationFilter, worded: list[bool]) -> str:
        """The model's refusal, or, when the question and the document blocks are in different languages
        (where the small model refuses with the answer in front of it: English questions about the Chinese
        lshort manual), the most relevant sentence of the blocks in the other language, cited and said to be a
        quote. For an English question each block is judged alone: ctex's blocks mix Chinese prose with code
        listings, joined they read as English, and "What does \\ctexset do?" was refused with "\\ctexset 采用
        LATEX3 风格的键值设置…" in block [2]. Only a block that holds the question's (or its translation's) topic
        words is quoted (`worded`): cross-language similarity lets merely related blocks into the prompt, and the
        model's refusal of "What do the operating systems need for GPUs?" became a quote about installing."""
        if not is_refusal(reply):
            return reply
        # the refusal in the user's language: the model refused a rewritten Chinese follow-up in English
        refusal = NO_ANSWER[lang]
        docs = [b[3] for b in blocks[n_corrections:]]
        if not docs:
            return refusal
        if lang == "en":  # block by block: code listings made ctex's Chinese blocks read as English when joined
            other = [i for i, d in enumerate(docs) if language_of(d) == "zh"]
        else:
            other = list(range(len(docs))) if language_of(" ".join(docs)) != lang else []
        other = [i for i in other if i < len(worded) and worded[i]]
        if not other:
            return refusal
        quote, i = quote_with_block(question, [docs[j] for j in other])
        if not quote:
            return refusal
        n = n_corrections + other[i] + 1
        citations.cited[:] = [n]
        return f"{OTHER_LANGUAGE_QUOTE[lang]}“{quote}” [{n}]"

    def _language_hint(self, kb: str, lang: str, queries: list[str], retrieved: list[SearchHit]) -> str:
        """For a refusal: a Chinese question, English documents, an embedding model that serves no Chinese (the
        default one): only literal matches were possible, so say so and what to do."""
        from rag.retrieval import leg_weights
        from rag.text import cjk_ratio

        model = self.store.get_row(kb).embedding_model
        if lang != "zh" or not retrieved or any(leg_weights(self.store, q, model)[0] > 0 for q in queries):
            return ""
        if cjk_ratio(retrieved[0].text) >= 0.1:  # the best literal match is Chinese: the language was no obstacle
            return ""
        return OTHER_LANGUAGE_HINT.format(model=model.rsplit("/", 1)[-1], kb=kb)

    def fit_context(self, question: str, blocks: list[tuple], fixed: set[int]) -> list[tuple]:
        """Blocks cut to the sentences that carry the question's evidence, within RAGKB_ANSWER_CONTEXT_TOKENS
        (counted with the model's tokenizer); user corrections (`fixed`) are never cut."""
        budget = self.settings.answer_context_tokens
        if not budget:
            return blocks
        texts = trim_blocks(question, [b[3] for b in blocks], budget, self.llm.count_tokens, fixed=fixed)
        return [(*b[:3], t) for b, t in zip(blocks, texts)]

    def _base_url(self) -> str:
        resolved = getattr(self.llm, "_resolved", None)
        return resolved[0] if resolved else (self.llm.settings.llm_base_url or "the embedded model server")

    def answer(self, kb: str, question: str, history: list[tuple[str, str]] | None = None) -> Answer:
        return collect(self.stream(kb, question, history)).result(question)


def _last_exchange(history: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The last user question and the answer to it, as (role, text) turns."""
    for i in range(len(history) - 1, -1, -1):
        if history[i][0] == "user":
            return [("user", history[i][1])] + [("assistant", c) for r, c in history[i + 1:i + 2] if r == "assistant"]
    return []


# What small models put before a rewrite: "Rewritten question:", "Standalone question:", "改写后的问题："
_REWRITE_LABEL = re.compile(r"^\s*(?:(?:rewritten|standalone|complete|full|new)\s+)?(?:follow-up\s+)?question\s*[:：]|"
                            r"^\s*(?:改写后?的?|重写后?的?|独立|完整的?)?问题\s*[:：]", re.IGNORECASE)


_TRANSLATION_LABEL = re.compile(r"^\s*(?:chinese|english|translation|中文|英文|翻译)\s*[:：]\s*", re.IGNORECASE)


def _first_line(text: str) -> str | None:
    """A block's first line when it is short enough to be a heading (what the model sometimes copies as its reply)."""
    line = text.strip().split("\n", 1)[0].strip()
    return line if 0 < len(line) <= 40 else None


def _plausible_translation(text: str, question: str, target: str) -> bool:
    """A translated question, not an answer: in the target language, about as long, still a question when the
    original was one ("What is the capital of Australia?" came back as "澳大利亚的首都是悉尼。")."""
    from rag.text import query_language

    if not text or text == question.strip() or len(text) > 2 * len(question) + 40 or "[" in text:
        return False
    if query_language(text) != target:
        return False
    return not question.strip().endswith(("?", "？")) or text.endswith(("?", "？"))


def _plausible_rewrite(text: str, question: str) -> bool:
    """Small models sometimes answer instead of rewriting; such output must not steer retrieval."""
    if not text or len(text) > 4 * len(question) + 200:
        return False
    if "[" in text or "【" in text:  # citations: it answered
        return False
    from rag.lexical import tokenize
    from rag.text import query_language

    if query_language(text) != query_language(question):
        return False
    asked = set(tokenize(question))  # the rewrite must still ask what the follow-up asked
    return not asked or len(asked & set(tokenize(text))) / len(asked) >= 0.5


def _source(n: int, hit: SearchHit, attributed: bool = False) -> Source:
    snippet = " ".join(hit.text.split())
    return Source(n=n, filename=hit.filename, page=hit.page, section=hit.section,
                  snippet=snippet[:400] + ("…" if len(snippet) > 400 else ""), score=round(hit.score, 6),
                  doc_id=hit.doc_id, chunk_id=hit.chunk_id, attributed=attributed,
                  left_out=list(hit.extra.get("left_out", [])))


def _correction_source(n: int, c) -> Source:  # noqa: ANN001
    return Source(n=n, filename=CORRECTION_FILENAME, page=None, section=c.question, snippet=c.answer[:400],
                  score=round(c.score, 4), doc_id="", chunk_id=f"correction:{c.id}", kind="correction")


def _is_llm_error(exc: BaseException) -> bool:
    """Errors of the model call (connection, timeout, HTTP status), as opposed to bugs."""
    import openai

    mod = type(exc).__module__ or ""
    return isinstance(exc, (openai.APIError, ConnectionError, TimeoutError)) or \
        mod.startswith(("openai", "httpx", "httpcore", "langchain_openai"))


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
