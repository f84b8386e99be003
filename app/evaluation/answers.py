"""End-to-end answer evaluation on a QA set in BEIR layout plus `answers.jsonl`.

Two kinds of set are understood (both from ../shared/eval/public, or any set shaped like them):
- CMRC style (`answers`, `doc_id`, `answer_starts`): exact match and character F1 with the CMRC 2018
  conventions (punctuation and spaces removed; F1 on the longest common substring of characters), plus
  containment (the gold answer appears in the reply), which is what a generated sentence can achieve;
- RGB style (`answers`, `positive_ids`, `negative_ids`): containment accuracy with RGB's rule (every
  element must appear; a list element is satisfied by any alternative) and, in a second knowledge base
  that holds every passage except the positives, the refusal rate (the right answer there is "not in
  the knowledge base").

For each question ragkb's real chain answers from a temporary knowledge base built by the real ingest
pipeline; the baseline is the naive LangChain "stuff the top chunks" chain (RecursiveCharacterTextSplitter
1000/200, same embedder, Chroma top-4, the tutorial prompt with numbered passages) on the same LLM.
Citations are judged for both: a cited chunk is correct when it holds the gold span (CMRC: same passage
and the chunk contains the answer text) or belongs to a positive passage (RGB).
Replies are scored as the user sees them: when the model wrote only "[n]", ragkb's reply includes its
quote of the cited passage (`quoted_rate` says how often).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from app.evaluation.retrieval import BeirSet, doc_text, ingest_corpus, load_beir, paired_bootstrap
from rag.answer.claims import lowest_word_support, unsupported_claims
from rag.answer.prompts import QUOTE_LEAD, is_refusal
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.store import KnowledgeBaseStore

NAIVE_K = 4
NAIVE_PROMPT = """You are an assistant for question-answering tasks. Use the following numbered pieces of retrieved context to answer the question. Cite the numbers of the pieces you used like [1]. If you don't know the answer, just say that you don't know. Keep the answer concise.

{context}

Question: {question}
Answer:"""

_CITATION = re.compile(r"\[(\d+)\]")


@dataclass
class QAItem:
    qid: str
    question: str
    answers: list  # CMRC: [str]; RGB: [str | [alternatives]]
    gold_docs: set[str]
    negative_docs: set[str] = field(default_factory=set)


def load_qa(set_dir: Path, limit: int | None = None, seed: int = 0) -> tuple[BeirSet, list[QAItem], str]:
    path = set_dir / "answers.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: an answer evaluation needs gold answers (answers.jsonl)")
    beir = load_beir(set_dir, limit, seed)
    gold = {}
    kind = "cmrc"
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            a = json.loads(line)
            gold[str(a["_id"])] = a
            if "positive_ids" in a:
                kind = "rgb"
    items = []
    for qid, text in beir.queries.items():
        a = gold.get(qid)
        if a is None:
            continue
        if kind == "rgb":
            items.append(QAItem(qid, text, a["answers"], set(a["positive_ids"]), set(a.get("negative_ids", []))))
        else:
            docs = {a["doc_id"]} if a.get("doc_id") else set(beir.qrels.get(qid, {}))
            items.append(QAItem(qid, text, a["answers"], docs))
    return beir, items, kind


# --- scoring ----------------------------------------------------------------------------------
def strip_citations(text: str) -> str:
    return _CITATION.sub("", text)


def cmrc_tokens(text: str) -> list[str]:
    """CMRC 2018 segmentation: every CJK character is a token, runs of letters/digits are one token;
    punctuation and spaces are dropped."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+", text)


def _lcs_len(a: list[str], b: list[str]) -> int:
    """Length of the longest common substring (the CMRC script's F1 is built on it)."""
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def cmrc_f1(prediction: str, gold: str) -> float:
    p, g = cmrc_tokens(prediction), cmrc_tokens(gold)
    lcs = _lcs_len(p, g)
    if not lcs:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(g)
    return 2 * precision * recall / (precision + recall)


def cmrc_em(prediction: str, gold: str) -> float:
    return float("".join(cmrc_tokens(prediction)) == "".join(cmrc_tokens(gold)))


def normalize_answer(text: str) -> str:
    return "".join(cmrc_tokens(text))


def contains_answer(reply: str, answers: list) -> bool:
    """RGB's rule: every element appears in the reply; a list element is satisfied by any alternative. An answer
    that is only symbols (lshort's "$" for "行内公式用什么符号包裹？"), which normalising would erase, must appear
    as written."""
    r = normalize_answer(reply)
    if not answers:
        return False
    for element in answers:
        alts = element if isinstance(element, list) else [element]
        if not any(_in_reply(str(a), reply, r) for a in alts):
            return False
    return True


def _in_reply(answer: str, reply: str, normalized_reply: str) -> bool:
    if n := normalize_answer(answer):
        return n in normalized_reply
    answer = unicodedata.normalize("NFKC", answer).strip()
    return bool(answer) and answer in unicodedata.normalize("NFKC", reply)


def _flat_answers(answers: list) -> list[str]:
    return [str(x) for a in answers for x in (a if isinstance(a, list) else [a])]


def cited_correct(item: QAItem, kind: str, doc_id: str, chunk_text: str) -> bool:
    if doc_id not in item.gold_docs:
        return False
    if kind == "rgb":
        return True
    chunk = normalize_answer(chunk_text)
    return any(normalize_answer(a) and normalize_answer(a) in chunk for a in _flat_answers(item.answers))


def reply_metrics(reply: str, correct: list[bool], error: str | None) -> dict:
    """What every answer evaluation records of one reply; `correct` says, per cited chunk, whether it
    was a right one."""
    text = strip_citations(reply).strip()
    return {"reply": reply[:600], "error": error, "refused": is_refusal(text), "empty": not text,
            "quoted": any(lead in reply for lead in QUOTE_LEAD.values()),
            "citations": len(correct), "correct_citations": sum(correct), "has_correct_citation": float(any(correct))}


def summarize_replies(rows: list[dict]) -> dict:
    n, cited = len(rows) or 1, sum(r["citations"] for r in rows)
    # citation precision is None when nothing was cited at all (no precision to speak of)
    return {"citation_precision": round(sum(r["correct_citations"] for r in rows) / cited, 4) if cited else None,
            "citations_per_question": round(cited / n, 2),
            "with_correct_citation": round(sum(r["has_correct_citation"] for r in rows) / n, 4),
            "refusal_rate": round(sum(r["refused"] for r in rows) / n, 4),
            # replies with nothing but citation marks ("[2]"): the small embedded model does this
            "empty_answer_rate": round(sum(r.get("empty", False) for r in rows) / n, 4),
            # ...which ragkb answers with a quote of the cited passage (rag.answer.sentences.quote_with_block)
            "quoted_rate": round(sum(r.get("quoted", False) for r in rows) / n, 4),
            "errors": sum(1 for r in rows if r["error"]),
            **_unsupported_rate(rows), **_memory_rate(rows)}


def _memory_rate(rows: list[dict]) -> dict:
    """Share of the answers (not refusals, not errors) flagged as the model's own knowledge, and share of
    all questions answered without a refusal or that flag (what a user would take as from the documents)."""
    if not any("memory" in r for r in rows):
        return {}
    answered = [r for r in rows if not r["refused"] and not r["error"]]
    return {"memory_flag_rate": round(sum(r["memory"] for r in answered) / len(answered), 4) if answered else 0.0,
            "answered_unflagged_rate": round(sum(not r["memory"] for r in answered) / max(1, len(rows)), 4)}


def _unsupported_rate(rows: list[dict]) -> dict:
    """Share of the answers (not refusals, not errors) with a sentence whose numbers, commands, paths or
    quoted terms its cited chunks do not contain (rag.answer.claims); only where it was checked."""
    answered = [r for r in rows if "unsupported" in r and not r["refused"] and not r["error"]]
    if not any("unsupported" in r for r in rows):
        return {}
    return {"unsupported_claim_rate": round(sum(r["unsupported"] for r in answered) / len(answered), 4)
            if answered else 0.0}


def score(item: QAItem, kind: str, reply: str, cited: list[tuple[str, str]], error: str | None,
          min_word_support: float = 0.0) -> dict:
    """Per-question metrics; `cited` is [(doc id, chunk text)] of the chunks the reply cites."""
    text = strip_citations(reply).strip()
    m = reply_metrics(reply, [cited_correct(item, kind, d, t) for d, t in cited], error)
    m["contains"] = float(contains_answer(text, item.answers))
    # the cited chunks, whatever their numbers in the reply: a sentence's facts must be in one of them
    together = "\n".join(t for _, t in cited)
    blocks = {n: together for n in range(1, 100)}
    m["unsupported"] = bool(unsupported_claims(reply, blocks, item.question, min_word_support)) if cited else False
    m["word_support"] = lowest_word_support(reply, blocks, item.question) if cited else None
    if kind == "cmrc":
        golds = _flat_answers(item.answers)
        m["em"] = max(cmrc_em(text, g) for g in golds)
        m["f1"] = max(cmrc_f1(text, g) for g in golds)
    return m


def summarize(per_q: dict[str, dict], kind: str) -> dict:
    n = len(per_q) or 1
    rows = list(per_q.values())
    out = {"questions": len(rows),
           "accuracy" if kind == "rgb" else "contains": round(sum(r["contains"] for r in rows) / n, 4),
           **summarize_replies(rows)}
    if kind == "cmrc":
        out["em"] = round(sum(r["em"] for r in rows) / n, 4)
        out["f1"] = round(sum(r["f1"] for r in rows) / n, 4)
    return out


# --- the two systems --------------------------------------------------------------------------
def ragkb_reply(service, kb: str, item: QAItem, names: dict[str, str], store) -> tuple[str, list, str | None, float, dict]:  # noqa: ANN001
    t0 = time.perf_counter()
    ans = service.answer(kb, item.question)
    seconds = time.perf_counter() - t0
    rows = store.registry.chunks_by_ids([s.chunk_id for s in ans.sources if s.kind == "document"])
    doc_names = store.ready_documents(store.get_row(kb))
    cited = []
    for s in ans.sources:
        row = rows.get(s.chunk_id)
        if row is not None:
            cited.append((names.get(doc_names.get(row.doc_id, ""), ""), row.text))
    # the gate refuses before any model call; the chain records its timings only up to where it got
    applied = []  # each rule that changed the answer: the reply and the cited chunks without it
    off_rows = store.registry.chunks_by_ids([c for a in ans.applied for c in a["chunks"]])
    for a in ans.applied:
        applied.append((a["rule"], a["text"], [(names.get(doc_names.get(off_rows[c].doc_id, ""), ""), off_rows[c].text)
                                               for c in a["chunks"] if c in off_rows]))
    return ans.text, cited, ans.error, seconds, {"model_called": "before_llm_ms" in ans.timings,
                                                 "grounding": ans.grounding, "memory": ans.from_memory,
                                                 "ttft_ms": ans.timings.get("ttft_ms"),
                                                 "applied": applied}


class NaiveStuffChain:
    """The LangChain tutorial RAG chain: split 1000/200, embed into Chroma, stuff the top 4 chunks."""

    def __init__(self, docs: dict[str, dict], settings: Settings, workdir: Path, name: str):
        from langchain_core.documents import Document

        from app.evaluation import naive

        chunks = naive.split([Document(page_content=doc_text(d) or " ", metadata={"doc": i}) for i, d in docs.items()])
        self.store = naive.chroma_store(chunks, settings, workdir / f"naive-{name}", name)

    @classmethod
    def from_store(cls, store) -> "NaiveStuffChain":  # noqa: ANN001
        chain = cls.__new__(cls)
        chain.store = store
        return chain

    def reply(self, llm, question: str, k: int = NAIVE_K) -> tuple[str, list, str | None, float]:  # noqa: ANN001
        """(reply, the LangChain documents it cites, error, seconds)."""
        t0 = time.perf_counter()
        docs = self.store.similarity_search(question, k=k)
        context = "\n\n".join(f"[{i}] {d.page_content}" for i, d in enumerate(docs, start=1))
        try:
            text = llm.chat_model().invoke(NAIVE_PROMPT.format(context=context, question=question)).content
            error = None
        except Exception as exc:  # noqa: BLE001 - counted as an error, the run goes on
            text, error = "", f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - t0
        nums = {int(n) for n in _CITATION.findall(text) if 1 <= int(n) <= len(docs)}
        return text, [docs[n - 1] for n in sorted(nums)], error, seconds


def evaluate(set_dir: Path, settings: Settings, limit: int | None = None, out_dir: Path | None = None,
             baseline: bool = True, progress=print) -> dict:  # noqa: ANN001
    from rag.answer import AnswerService
    from rag.llm import LLMService

    beir, items, kind = load_qa(set_dir, limit)
    settings = with_assembled_model(settings)
    result: dict = {"_meta": {"set": beir.name, "kind": kind, "questions": len(items), "documents": len(beir.corpus),
                              "limit": limit, "embedding_model": settings.embedding_model}}
    per_query: dict[str, dict[str, dict]] = {}
    with scratch_store(settings) as (store, workdir):
        s = store.settings
        llm = LLMService(s)
        try:
            runs = [("answers", beir.corpus)]
            if kind == "rgb":  # every passage except the positives: the question has no answer there
                positives = {d for it in items for d in it.gold_docs} | {d for r in beir.qrels.values() for d in r}
                runs.append(("negatives_only", {i: d for i, d in beir.corpus.items() if i not in positives}))
            for run, docs in runs:
                progress(f"[{run}] ingesting {len(docs)} passages with ragkb's pipeline")
                kb = run
                names = ingest_corpus(store, kb, BeirSet(beir.name, docs, {}, {}), workdir / run)
                service = AnswerService(store, llm)
                naive = None
                if baseline:
                    progress(f"[{run}] building the naive baseline (1000/200 splitter + Chroma)")
                    naive = NaiveStuffChain(docs, s, workdir, run)
                systems = {"ragkb": lambda it: ragkb_reply(service, kb, it, names, store)}
                if naive is not None:
                    systems["naive"] = lambda it: _naive_reply(naive, llm, it)
                for name, reply_fn in systems.items():
                    key = f"{name}" if run == "answers" else f"{name}_negatives_only"
                    per_query[key] = {}
                    t0 = time.perf_counter()
                    for n, item in enumerate(items, start=1):
                        reply, cited, error, seconds, extra = reply_fn(item)
                        m = score(item, kind, reply, cited, error, s.claim_min_word_support)
                        m["rules_off"] = {rule: score(item, kind, text, off, error, s.claim_min_word_support)
                                          for rule, text, off in extra.pop("applied", [])}
                        m["seconds"] = round(seconds, 2)
                        m.update(extra)
                        per_query[key][item.qid] = m
                        if n % 10 == 0 or n == len(items):
                            progress(f"[{run}] {name}: {n}/{len(items)} questions")
                    result[key] = summarize(per_query[key], kind)
                    rows = list(per_query[key].values())
                    # every question of the first run has its answer in the knowledge base, none of the second
                    result[key]["false_refusal_rate" if run == "answers" else "unanswerable_refusal_rate"] = \
                        result[key]["refusal_rate"]
                    result[key]["refused_without_model_rate"] = round(
                        sum(1 for r in rows if r["refused"] and not r.get("model_called", True)) / max(1, len(rows)), 4)
                    result[key]["seconds_per_question"] = round((time.perf_counter() - t0) / max(1, len(items)), 2)
                    if rules := rule_effects(rows, ["contains", "has_correct_citation", "refused"]):
                        result[key]["rules"] = rules
            result["_meta"]["model"] = llm.model_in_use  # auto may have picked the 0.5B
        finally:
            llm.close()
    qids = [it.qid for it in items]
    main_metric = "accuracy" if kind == "rgb" else "f1"
    if "naive" in per_query:
        src = "contains" if kind == "rgb" else "f1"
        result["_ci"] = {"ragkb-naive": {
            main_metric: paired_bootstrap([per_query["ragkb"][q][src] for q in qids],
                                          [per_query["naive"][q][src] for q in qids]),
            "with_correct_citation": paired_bootstrap([per_query["ragkb"][q]["has_correct_citation"] for q in qids],
                                                      [per_query["naive"][q]["has_correct_citation"] for q in qids])}}
        if "ragkb_negatives_only" in per_query:
            result["_ci"]["ragkb-naive"]["refusal_rate_negatives_only"] = paired_bootstrap(
                [float(per_query["ragkb_negatives_only"][q]["refused"]) for q in qids],
                [float(per_query["naive_negatives_only"][q]["refused"]) for q in qids])
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{beir.name}.answers.per_query.json").write_text(
            json.dumps(per_query, ensure_ascii=False, indent=1), encoding="utf-8")
    return result


def rule_effects(rows: list[dict], metrics: list[str]) -> dict:
    """Per check-stage rule (rag.answer.check) that fired in any row: how often, and each metric summed over the
    rows with the rule on (as run) and off (its `rules_off` score where it fired, the same score elsewhere).
    The rules only act after the model's reply, so one run gives both sides exactly."""
    names = sorted({rule for r in rows for rule in r.get("rules_off", {})})
    return {rule: {"fired": sum(rule in r.get("rules_off", {}) for r in rows),
                   **{m: {"on": round(sum(float(r[m]) for r in rows), 2),
                          "off": round(sum(float(r["rules_off"][rule][m] if rule in r.get("rules_off", {}) else r[m])
                                           for r in rows), 2)} for m in metrics}} for rule in names}


def _naive_reply(chain: NaiveStuffChain, llm, item: QAItem) -> tuple[str, list, str | None, float, dict]:  # noqa: ANN001
    reply, docs, error, seconds = chain.reply(llm, item.question)
    return reply, [(d.metadata["doc"], d.page_content) for d in docs], error, seconds, {"model_called": True}


@contextmanager
def scratch_store(settings: Settings) -> Iterator[tuple[KnowledgeBaseStore, Path]]:
    """A knowledge-base store in a temporary data directory, and that directory (for files an evaluation writes):
    an evaluation never touches the user's knowledge bases. The store is closed and the directory removed
    afterwards. `settings` should come through with_assembled_model, so the model is not assembled again there."""
    from rag.store import KnowledgeBaseStore

    with tempfile.TemporaryDirectory() as tmp:
        store = KnowledgeBaseStore(settings.model_copy(update={"data_dir": Path(tmp) / "data"}))
        try:
            yield store, Path(tmp)
        finally:
            store.close()


def with_assembled_model(settings: Settings) -> Settings:
    """Evaluations run in a temporary data directory; the embedded model is assembled once in the real one."""
    if settings.llm_base_url or settings.llm_local_model_path:
        return settings
    from rag.llm import local_model_file

    path, alias = local_model_file(settings)
    return settings.model_copy(update={"llm_local_model_path": path, "llm_model": settings.llm_model or alias})
