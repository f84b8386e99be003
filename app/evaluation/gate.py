"""`ragkb eval gate`: the data the answerability gate (rag.answerability) is chosen on, and the choice.

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
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.settings import Settings

DEVSETS = Path(__file__).parent / "devsets"
# dev set -> its PDF, relative to the public evaluation folder
MANUALS = {"lshort_zh": "pdf_ingest_dev/pdfs/lshort-zh-cn.pdf", "ctex_zh": "pdf_ingest_dev/pdfs/ctex.pdf",
           "lshort_en": "pdf_ingest_dev/pdfs/lshort-zh-cn.pdf"}
MAX_FALSE_REFUSALS = 0.02


@dataclass
class Case:
    set: str
    qid: str
    question: str
    kind: str  # "answerable" | "negatives_only" | "out_of_scope"
    blocks: list[dict] = field(default_factory=list)  # per retrieved block: coverage, old_coverage, dense, cjk
    cross: bool = False
    unknown: list[str] = field(default_factory=list)  # names in the question no chunk mentions

    @property
    def answerable(self) -> bool:
        return self.kind == "answerable"


def load_manual(name: str) -> list[dict]:
    path = DEVSETS / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def cjk_share(text: str) -> float:
    letters = [c for c in text if c.isalnum()]
    return sum(1 for c in letters if _CJK.match(c)) / len(letters) if letters else 0.0


def cross_language(question: str, texts: list[str]) -> bool:
    """A question in one script about blocks in another (an English question on a Chinese manual): a rule
    variant measured in the grid lets such a question through to the model (not chosen: README)."""
    if not texts:
        return False
    q = cjk_share(question)
    blocks = sum(cjk_share(t) for t in texts) / len(texts)
    return (q < 0.2 and blocks > 0.5) or (q > 0.5 and blocks < 0.2)


def case_for(service, kb: str, set_name: str, qid: str, question: str, kind: str) -> Case:  # noqa: ANN001
    """The blocks the answer chain would retrieve for `question`, with the gate's signals (the chain's own
    `AnswerService.evidence`) and the old rule's coverage of all the question's words."""
    from rag.answerability import unknown_names

    store = service.store
    hits = service.rerank(question, service.retrieve(kb, [question], service.settings.answer_k))
    index = store.bm25(store.get_row(kb))
    rows = store.registry.chunks_by_ids([h.chunk_id for h in hits])
    blocks = []
    for h, ev in zip(hits, service.evidence(kb, [question], hits)):
        tokens = rows[h.chunk_id].tokens.split(" ") if h.chunk_id in rows else []
        blocks.append({"coverage": round(ev.coverage, 4), "old_coverage": round(index.coverage(question, tokens), 4),
                       "dense": None if ev.dense is None else round(ev.dense, 4)})
    return Case(set_name, qid, question, kind, blocks, cross_language(question, [h.text for h in hits]),
                unknown_names(question, index, store.chunk_texts))


def collect(public: Path, settings: Settings, limit: int = 100, progress=print) -> list[Case]:  # noqa: ANN001
    """Build the knowledge bases (temporary) and score every dev question's blocks."""
    from app.evaluation.answers import load_qa
    from app.evaluation.retrieval import BeirSet, ingest_corpus, load_beir
    from ingest.pipeline import ingest_paths
    from rag.chain import AnswerService
    from rag.llm import LLMService
    from rag.store import KnowledgeBaseStore

    cases: list[Case] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        s = settings.model_copy(update={"data_dir": work / "data"})
        store = KnowledgeBaseStore(s)
        llm = LLMService(s)  # never called: the gate decides before any model call
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
            store.close()
    return cases


# --- choosing the rule ------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    signal: str  # "coverage" (topic words) or "old_coverage" (all the question's words)
    min_coverage: float
    min_dense: float
    cross_passes: bool  # a cross-language question always reaches the model
    names: bool = False  # a question naming something no chunk mentions is refused

    def refuses(self, case: Case) -> bool:
        if self.names and case.unknown:
            return True
        if self.cross_passes and case.cross:
            return False
        return not any(b[self.signal] >= self.min_coverage or (b["dense"] is not None and b["dense"] >= self.min_dense)
                       for b in case.blocks)

    def label(self) -> str:
        return (f"{self.signal} >= {self.min_coverage:g} or dense >= {self.min_dense:g}"
                + ("; cross-language passes" if self.cross_passes else "")
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


OLD_RULE = Rule("old_coverage", 0.4, 0.35, False)


def choose(cases: list[Case]) -> tuple[Rule, list[tuple[Rule, dict]]]:
    """The rule with the most unanswerable refusals (pooled) among those with <= 2% false refusals on every
    set; ties go to the lower thresholds (fewer refusals of questions the dev sets do not cover)."""
    grid = []
    for signal in ("coverage", "old_coverage"):
        for cross in (True, False):
            for names in (False, True):
                for c10 in range(10, 85, 5):
                    # dense similarity has each model's own scale: MiniLM's unrelated text sits near 0.1,
                    # multilingual-e5-small's near 0.75
                    for d100 in [*range(20, 75, 5), *range(75, 96), 101]:
                        rule = Rule(signal, c10 / 100, d100 / 100, cross, names)
                        grid.append((rule, rates(rule, cases)))

    def ok(r: dict) -> bool:
        return all(v["false_refusal_rate"] is None or v["false_refusal_rate"] <= MAX_FALSE_REFUSALS
                   for k, v in r.items() if k != "all")

    feasible = [(rule, r) for rule, r in grid if ok(r)]
    pool = feasible or grid
    best = max(pool, key=lambda x: (x[1]["all"]["unanswerable_refusal_rate"] or 0,
                                    -(x[1]["all"]["false_refusal_rate"] or 0), -x[0].min_coverage, -x[0].min_dense))
    return best[0], grid


def evaluate(public: Path, settings: Settings, limit: int = 100, cases_path: Path | None = None,
             progress=print) -> dict:  # noqa: ANN001
    """Collect (or reload from `cases_path`) the scored cases, compare the current gate with the old one and
    with the best rule of the grid."""
    if cases_path and cases_path.exists():
        cases = [Case(**d) for d in json.loads(cases_path.read_text(encoding="utf-8"))]
        progress(f"reloaded {len(cases)} scored questions from {cases_path}")
    else:
        cases = collect(public, settings, limit, progress)
        if cases_path:
            cases_path.parent.mkdir(parents=True, exist_ok=True)
            cases_path.write_text(json.dumps([asdict(c) for c in cases], ensure_ascii=False), encoding="utf-8")
    from rag.embeddings import dense_evidence

    current = Rule("coverage", settings.min_lexical_coverage, dense_evidence(settings) or 1.0, False,
                   settings.refuse_unknown_names)
    # the same thresholds with the unknown-names refusal switched the other way: what that rule alone changes
    flipped = Rule(current.signal, current.min_coverage, current.min_dense, False, not current.names)
    best, _grid = choose(cases)
    result: dict = {"_meta": {"questions": len(cases), "limit": limit, "embedding_model": settings.embedding_model,
                              "max_false_refusals": MAX_FALSE_REFUSALS,
                              "rules": {"old": OLD_RULE.label(), "current": current.label(),
                                        "names flipped": flipped.label(), "best": best.label()}}}
    for name, rule in (("old", OLD_RULE), ("current", current), ("names flipped", flipped), ("best", best)):
        for set_name, r in rates(rule, cases).items():
            result[f"{name} · {set_name}"] = r
    return result
