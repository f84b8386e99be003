"""The answer service: one staged pipeline, composed in `AnswerService.stream`.

resolve the turn (rag.answer.turn) -> retrieve and judge (rag.answer.retrieve) -> select evidence
(rag.answer.evidence) -> build the prompt (rag.answer.prompts) -> generate (rag.answer.generate) -> check
(rag.answer.check) -> present (here: the sources the answer cited, and Done).

Output is a stream of AnswerEvent that every face renders the same way: status lines, answer tokens, then
the sources the answer actually cited (a citation to no retrieved block is removed from the text and never shown).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from rag.answer import check as check_stage
from rag.answer import evidence as evidence_stage
from rag.answer import retrieve as retrieve_stage
from rag.answer import turn as turn_stage
from rag.answer.generate import generate, ms
from rag.answer.prompts import NEVER_MENTIONED, NO_ANSWER, OTHER_LANGUAGE_HINT, answer_messages
from rag.answer.retrieve import ExplainedHit  # noqa: F401 - re-exported for the faces
from rag.errors import RagkbError
from rag.events import Answer, AnswerEvent, Done, Failed, Sources, Token, collect
from rag.llm import LLMService, describe_llm_error, is_llm_error
from rag.retrieval import SearchHit
from rag.store import KnowledgeBaseStore

log = logging.getLogger(__name__)


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

    # -- the pipeline -----------------------------------------------------------------------
    def stream(self, kb: str, question: str, history: list[tuple[str, str]] | None = None) -> Iterator[AnswerEvent]:
        """Answer `question` about knowledge base `kb`; history is [(role, text)] with role user/assistant."""
        t0, timings = time.perf_counter(), {}
        try:
            self.store.get_row(kb)  # unknown knowledge base: a clear error before any model call
            turn = yield from turn_stage.resolve(self, question, history or [], timings)
            found = yield from retrieve_stage.find(self, kb, turn, timings)
            if not found.hits and not found.corrections:  # nothing is evidence: refused without a model call
                yield from self._refusal(kb, turn, found, timings)
                return
            t2 = time.perf_counter()
            passages = evidence_stage.select(self, kb, turn, found)
            prompt = turn_stage.messages(answer_messages(turn.asked, passages.blocks, turn.earlier,
                                                         self.llm.endpoint()[1]))
            timings.update(prompt_ms=ms(t2), before_llm_ms=ms(t0))
            reply = yield from generate(self.llm.chat_model(), prompt, len(passages.blocks), timings, t2, self._error,
                                        turn.lang)
        except RagkbError as exc:  # unknown knowledge base, model unavailable, model mismatch...
            yield Failed(str(exc))
            yield Done(timings=timings)
            return
        except Exception as exc:  # the model failed while resolving the turn or counting the prompt's tokens
            if not is_llm_error(exc):
                raise
            yield Failed(self._error(exc))
            yield Done(timings=timings)
            return
        if reply.error or not reply.shown.strip():  # failed, or a server that dropped the request
            yield Failed(reply.error or f"The model server at {self._base_url()} returned an empty answer; ask "
                         "again (if it keeps happening, check the server's log).")
            yield Done(timings=timings, partial=reply.shown)
            return
        checked = yield from check_stage.check(self, turn, found, passages, reply)
        timings["total_ms"] = ms(t0)
        if checked.attributed is not None:
            passages.sources[checked.attributed - 1].attributed = True
        used = set(reply.cited) | ({s.n for s in passages.sources if s.kind == "correction"} if not checked.refused else set())
        yield Sources([] if checked.refused and not found.corrections else [s for s in passages.sources if s.n in used])
        yield Done(refused=checked.refused, standalone_question=turn.standalone, grounding=checked.grounded,
                   unsupported_claims=[c.as_dict() for c in checked.claims], timings=timings, retrieved=len(found.hits),
                   corrections=len(found.corrections), quoted=checked.quoted, stopped=reply.stopped,
                   applied=[{**a, "pages": [passages.sources[n - 1].page for n in a["cited"]],
                             "files": [passages.sources[n - 1].filename for n in a["cited"]],
                             "chunks": [passages.sources[n - 1].chunk_id for n in a["cited"]]} for a in checked.applied],
                   # the server's own count; ours only for a server that reports no usage
                   prompt_tokens=reply.usage["input_tokens"] if reply.usage else
                   self.llm.count_tokens("\n".join(m.content for m in prompt)),
                   completion_tokens=(reply.usage or {}).get("output_tokens"), read=[b[3] for b in passages.blocks])

    def _refusal(self, kb: str, turn, found, timings: dict) -> Iterator[AnswerEvent]:  # noqa: ANN001
        """The refusal when no retrieved block is evidence: what the question names that no document mentions, or
        a hint when the embedding model cannot match the question's language."""
        lang = turn.lang
        if found.unknown:
            named = ("、" if lang == "zh" else ", ").join(f"“{n}”" for n in found.unknown)
            yield Token(f"{NO_ANSWER[lang]}{'' if lang == 'zh' else ' '}{NEVER_MENTIONED[lang].format(names=named)}")
        else:
            yield Token(NO_ANSWER[lang] + self._language_hint(kb, lang, turn.queries, found.retrieved))
        yield Sources([])
        yield Done(refused=True, standalone_question=turn.standalone, timings=timings,
                   reason=f"the knowledge base never mentions {', '.join(found.unknown)}" if found.unknown
                   else "nothing relevant retrieved")

    def answer(self, kb: str, question: str, history: list[tuple[str, str]] | None = None) -> Answer:
        return collect(self.stream(kb, question, history)).result(question)

    # -- the stages' faces for the workbench and the evaluation ---------------------------------
    def retrieve(self, kb: str, queries: list[str], k: int) -> list[SearchHit]:
        return retrieve_stage.retrieve(self, kb, queries, k)

    def rerank(self, question: str, hits: list[SearchHit]) -> list[SearchHit]:
        return retrieve_stage.rerank(self, question, hits)

    def evidence(self, kb: str, questions: list[str], hits: list[SearchHit], translated: str | None = None) -> list:
        return retrieve_stage.evidence(self, kb, questions, hits, translated)

    def relevant(self, kb: str, question: str | list[str], hits: list[SearchHit],
                 translated: str | None = None) -> list[SearchHit]:
        return retrieve_stage.relevant(self, kb, question, hits, translated)

    def explain(self, kb: str, query: str, k: int | None = None) -> list[ExplainedHit]:
        return retrieve_stage.explain(self, kb, query, k)

    def language_share(self, kb: str, lang: str) -> float:
        return retrieve_stage.language_share(self, kb, lang)

    def corrections_for(self, kb: str, questions: list[str]) -> list:
        return retrieve_stage.corrections_for(self, kb, questions)

    def translate(self, question: str, target: str) -> str | None:
        return turn_stage.translate(self, question, target)

    # -- process-wide helpers ---------------------------------------------------------------
    def warm_up(self) -> None:
        """Load what a first question would otherwise wait for: the embedding model, the embedded model server
        and, in its prompt cache, the fixed system prompt. Only logged on failure: a question reports it."""
        t0 = time.perf_counter()
        try:
            for model in dict.fromkeys([self.settings.embedding_model, *(k.embedding_model for k in self.store.list())]):
                self.store.embeddings(model=model).embed_query("warm up")
            if self.llm.embedded:
                self.llm.chat_model(max_tokens=1).invoke(turn_stage.messages(answer_messages("hello", [])))
        except Exception as exc:  # noqa: BLE001 - a background nicety; the first question reports real errors
            log.warning("warm-up incomplete (%s: %s); the first question will load what is missing",
                        type(exc).__name__, exc)
            return
        log.info("warm-up done in %.1f s", time.perf_counter() - t0)

    def cached_embed(self, texts: list[str], model: str) -> list[list[float]]:
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

    def _error(self, exc: BaseException) -> str:
        return describe_llm_error(exc, self._base_url(), self.llm.settings.llm_timeout)

    def _base_url(self) -> str:
        resolved = getattr(self.llm, "_resolved", None)
        return resolved[0] if resolved else (self.llm.settings.llm_base_url or "the embedded model server")
