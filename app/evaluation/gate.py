"""`ragkb eval gate`: the data the answerability gate (rag.answer.gate) is chosen on, and the choice.

For answerable and unanswerable questions on the public dev sets, every block the answer chain would retrieve
is scored with the gate's signals (no model call, so a run takes minutes): the old IDF coverage of all the
question's words, the coverage of its topic words only, the dense similarity where the embedder serves the
question's language, and whether question and blocks are in different scripts. A rule refuses a question
when none of its blocks passes; over a grid of thresholds the report gives each rule's false-refusal rate
(answerable questions refused) and its refusal rate on unanswerable ones, per set, and picks the rule with
the most unanswerable refusals among those with <= 2% false refusals on every set.

Sets (all under ../shared/eval/public, or any folder shaped like it):
- cmrc2018_trial: its questions against its passages (answerable); RGB's news questions against the same
  passages (out of scope);
- rgb_zh_dev: questions against all passages (answerable) and against every passage but the positives
  (negatives only: same topic, no answer);
- scifact_train: claims against their abstracts plus 1,000 others (answerable) and without their own (negatives only);
- the manual dev sets in app/evaluation/devsets (questions written about pdf_ingest_dev's two TeX manuals,
  with answers and pages; out-of-scope questions have no answer), plus CMRC questions asked of each manual.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.settings import Settings

DEVSETS = Path(__file__).parent / "devsets"
# dev set -> its PDF, relative to the public evaluation folder
MANUALS = {"lshort_zh": "pdf_ingest_dev/pdfs/lshort-zh-cn.pdf", "ctex_zh": "pdf_ingest_dev/pdfs/ctex.pdf",
           "lshort_en": "pdf_ingest_dev/pdfs/lshort-zh-cn.pdf",
           "jnj_8k": "financebench_dev/pdfs/JOHNSON_JOHNSON_2023_8K_dated-2023-08-30.pdf"}
MAX_FALSE_REFUSALS = 0.02


@dataclass
class Case:
    set: str
    qid: str
    question: str
    kind: str  # "answerable" | "negatives_only" | "out_of_scope"
    blocks: list[dict] = field(default_factory=list)  # per retrieved block: coverage, old_coverage, dense, pair
    unknown: list[str] = field(default_factory=list)  # names in the question no chunk mentions

    @property
    def answerable(self) -> bool:
        return self.kind == "answerable"


def load_manual(name: str) -> list[dict]:
    path = DEVSETS / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def case_for(service, kb: str, set_name: str, qid: str, question: str, kind: str) -> Case:  # noqa: ANN001
    """The blocks the answer chain would retrieve for `question`, with the gate's signals (the chain's own
    `AnswerService.evidence`) and the old rule's coverage of all the question's words."""
    from rag.answer.gate import language_pair, unknown_names

    store = service.store
    hits = service.rerank(question, service.retrieve(kb, [question], service.settings.answer_k))
    index = store.bm25(store.get_row(kb))
    rows = store.registry.chunks_by_ids([h.chunk_id for h in hits])
    blocks = []
    for h, ev in zip(hits, service.evidence(kb, [question], hits)):
        tokens = rows[h.chunk_id].tokens.split(" ") if h.chunk_id in rows else []
        blocks.append({"coverage": round(ev.coverage, 4), "old_coverage": round(index.coverage(question, tokens), 4),
                       # the raw similarity, counted or not under today's thresholds: what a new threshold is chosen on
                       "dense": None if h.dense_score is None else round(h.dense_score, 4),
                       "pair": language_pair(question, h.text)})
    return Case(set_name, qid, question, kind, blocks, unknown_names(question, index, store.chunk_texts))


def collect(public: Path, settings: Settings, limit: int = 100, progress=print) -> list[Case]:  # noqa: ANN001
    """Build the knowledge bases (temporary) and score every dev question's blocks."""
    from app.evaluation.answers import load_qa, scratch_store
    from app.evaluation.retrieval import BeirSet, ingest_corpus, load_beir
    from ingest.pipeline import ingest_paths
    from rag.answer import AnswerService
    from rag.llm import LLMService

    cases: list[Case] = []
    with scratch_store(settings) as (store, work):
        llm = LLMService(store.settings)  # never called: the gate decides before any model call
        service = AnswerService(store, llm)

        def run(kb: str, docs: dict, set_name: str, questions: list[tuple[str, str, str]]) -> None:
            progress(f"[{set_name}] {kb}: ingesting {len(docs)} passages")
            ingest_corpus(store, kb, BeirSet(set_name, docs, {}, {}), work / kb)
            for qid, text, kind in questions:
                cases.append(case_for(service, kb, set_name, qid, text, kind))
            progress(f"[{set_name}] {kb}: {len(questions)} questions scored")

        try:
            rgb_beir, rgb_items, _ = load_qa(public / "rgb_zh_dev", limit)
            cmrc_beir, cmrc_items, _ = load_qa(public / "cmrc2018_trial", limit)
            run("cmrc", cmrc_beir.corpus, "cmrc2018_trial",
                [(it.qid, it.question, "answerable") for it in cmrc_items]
                + [(f"rgb:{it.qid}", it.question, "out_of_scope") for it in rgb_items[: limit // 2]])
            positives = {d for it in rgb_items for d in it.gold_docs} | {d for r in rgb_beir.qrels.values() for d in r}
            run("rgb", rgb_beir.corpus, "rgb_zh_dev", [(it.qid, it.question, "answerable") for it in rgb_items])
            run("rgb_neg", {i: d for i, d in rgb_beir.corpus.items() if i not in positives}, "rgb_zh_dev",
                [(it.qid, it.question, "negatives_only") for it in rgb_items])

            sci = load_beir(public / "scifact_train", limit)
            sci_pos = {d for q in sci.queries for d in sci.qrels[q]}
            others = sorted(set(sci.corpus) - {d for r in sci.qrels.values() for d in r})
            filler = set(random.Random(0).sample(others, min(1000, len(others))))
            run("sci", {i: d for i, d in sci.corpus.items() if i in sci_pos | filler}, "scifact_train",
                [(q, t, "answerable") for q, t in sci.queries.items()])
            run("sci_neg", {i: d for i, d in sci.corpus.items() if i in filler}, "scifact_train",
                [(q, t, "negatives_only") for q, t in sci.queries.items()])

            for name, rel in MANUALS.items():
                pdf = public / rel
                if not pdf.exists():
                    progress(f"[{name}] {pdf} not found: skipped")
                    continue
                progress(f"[{name}] ingesting {pdf.name}")
                ingest_paths(store, name, [pdf])
                items = [it for it in load_manual(name) if not it.get("follows")]
                for it in items:
                    cases.append(case_for(service, name, name, it["id"], it["question"],
                                          "answerable" if it["answers"] else "out_of_scope"))
                for it in cmrc_items[:20]:  # encyclopedia questions asked of a TeX manual
                    cases.append(case_for(service, name, name, f"cmrc:{it.qid}", it.question, "out_of_scope"))
                progress(f"[{name}] {len(items) + 20} questions scored")
        finally:
            llm.close()
    return cases


# --- choosing the rule ------------------------------------------------------------------------
PAIRS = ("zh", "en", "cross")


@dataclass(frozen=True)
class Rule:
    signal: str  # "coverage" (topic words) or "old_coverage" (all the question's words)
    min_coverage: float
    dense: tuple[float | None, float | None, float | None]  # thresholds for PAIRS; None: similarity does not count
    names: bool = False  # a question naming something no chunk mentions is refused

    def refuses(self, case: Case) -> bool:
        if self.names and case.unknown:
            return True
        limits = dict(zip(PAIRS, self.dense))
        return not any(b[self.signal] >= self.min_coverage or (
            b["dense"] is not None and (t := limits.get(b.get("pair", "zh"))) is not None and b["dense"] >= t)
            for b in case.blocks)

    def label(self) -> str:
        dense = ", ".join(f"{p} {t:g}" for p, t in zip(PAIRS, self.dense) if t is not None) or "not counted"
        return (f"{self.signal} >= {self.min_coverage:g} or dense >= ({dense})"
                + ("; refuses names no chunk mentions" if self.names else ""))


def rates(rule: Rule, cases: list[Case]) -> dict:
    """Per set: false-refusal rate (answerable refused) and unanswerable refusal rate, and pooled."""
    out: dict[str, dict] = {}
    groups: dict[str, list[Case]] = {}
    for c in cases:
        groups.setdefault(c.set, []).append(c)
    groups["all"] = cases
    for name, cs in groups.items():
        ans = [c for c in cs if c.answerable]
        una = [c for c in cs if not c.answerable]
        out[name] = {
            "false_refusal_rate": round(sum(rule.refuses(c) for c in ans) / len(ans), 4) if ans else None,
            "unanswerable_refusal_rate": round(sum(rule.refuses(c) for c in una) / len(una), 4) if una else None,
            "answerable": len(ans), "unanswerable": len(una)}
    return out


OLD_RULE = Rule("old_coverage", 0.4, (0.35, 0.35, 0.35))
_NEVER = 9.0  # a threshold no similarity reaches


def choose(cases: list[Case]) -> Rule:
    """The rule with the most unanswerable refusals (pooled) among those with <= 2% false refusals on every set,
    over a grid of topic-word coverage and one dense threshold per language pair (the similarity scale of a
    multilingual model differs between and across languages); ties go to the lower thresholds (fewer refusals of
    questions the dev sets do not cover). Names no chunk mentions are refused, as the chain does."""
    import itertools

    import numpy as np

    sets = sorted({c.set for c in cases})
    # a case passes when one block clears the coverage or its language pair's dense threshold: so only each
    # case's best coverage and best similarity per pair matter, and the whole grid is scored at once
    top_cov = np.array([max((b["coverage"] for b in c.blocks), default=-1.0) for c in cases])
    top_dense = np.full((len(cases), len(PAIRS)), -9.0)
    for i, c in enumerate(cases):
        for b in c.blocks:
            if b["dense"] is not None:
                p = PAIRS.index(b.get("pair", "zh"))
                top_dense[i, p] = max(top_dense[i, p], b["dense"])
    unknown = np.array([bool(c.unknown) for c in cases], dtype=bool)
    answerable = np.array([c.answerable for c in cases], dtype=bool)
    checked = [m for m in (np.array([c.set == s for c in cases]) & answerable for s in sets) if m.any()]
    steps = [x / 100 for x in range(40, 96, 2)] + [_NEVER]
    grid = np.array(list(itertools.product(steps, steps, steps)))  # (limits, pairs), in the order tried
    dense_pass = (top_dense[None, :, :] >= grid[:, None, :]).any(axis=2)  # (limits, cases)
    sums = grid.sum(axis=1)
    best, best_key = None, None
    for c10 in range(20, 85, 5):
        refused = unknown | ~((top_cov >= c10 / 100)[None, :] | dense_pass)
        ok = np.ones(len(grid), dtype=bool)
        for m in checked:
            ok &= refused[:, m].mean(axis=1) <= MAX_FALSE_REFUSALS
        if not ok.any():
            continue
        unanswerable = refused[:, ~answerable].mean(axis=1) if (~answerable).any() else np.full(len(grid), np.nan)
        false = refused[:, answerable].mean(axis=1) if answerable.any() else np.full(len(grid), np.nan)
        # the first of the best in the order tried (lexsort is stable): most unanswerable refused, fewest
        # answerable, lowest thresholds
        tried = np.flatnonzero(ok)
        j = tried[np.lexsort((sums[tried], false[tried], -unanswerable[tried]))[0]]
        key = (unanswerable[j], -false[j], -c10, -sums[j])
        if best_key is None or key > best_key:
            best_key = key
            best = Rule("coverage", c10 / 100, tuple(None if t == _NEVER else float(t) for t in grid[j]), True)
    return best or Rule("coverage", 0.4, (None, None, None), True)


def evaluate(public: Path, settings: Settings, limit: int = 100, cases_path: Path | None = None,
             progress=print) -> dict:  # noqa: ANN001
    """Collect (or reload from `cases_path`) the scored cases, compare the current gate with the old one and
    with the best rule of the grid."""
    if cases_path and cases_path.exists():
        cases = [Case(**{k: v for k, v in d.items() if k in Case.__dataclass_fields__})
                 for d in json.loads(cases_path.read_text(encoding="utf-8"))]
        progress(f"reloaded {len(cases)} scored questions from {cases_path}")
    else:
        cases = collect(public, settings, limit, progress)
        if cases_path:
            cases_path.parent.mkdir(parents=True, exist_ok=True)
            cases_path.write_text(json.dumps([asdict(c) for c in cases], ensure_ascii=False), encoding="utf-8")
    from rag.embeddings import dense_evidence

    current = Rule("coverage", settings.min_lexical_coverage,
                   tuple(dense_evidence(settings, None, p) for p in PAIRS), settings.refuse_unknown_names)
    # the same thresholds with the unknown-names refusal switched the other way: what that rule alone changes
    flipped = Rule(current.signal, current.min_coverage, current.dense, not current.names)
    best = choose(cases)
    result: dict = {"_meta": {"questions": len(cases), "limit": limit, "embedding_model": settings.embedding_model,
                              "max_false_refusals": MAX_FALSE_REFUSALS,
                              "rules": {"old": OLD_RULE.label(), "current": current.label(),
                                        "names flipped": flipped.label(), "best": best.label()}}}
    for name, rule in (("old", OLD_RULE), ("current", current), ("names flipped", flipped), ("best", best)):
        for set_name, r in rates(rule, cases).items():
            result[f"{name} · {set_name}"] = r
    return result
