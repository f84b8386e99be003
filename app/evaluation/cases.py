"""Re-ask the questions users flagged in the web UI and score today's answers: a regression set.

Input is the web UI's "Evaluation set" export (`RagkbService.bad_cases_jsonl`), one JSON object per
line, or any file shaped like it: `question`, `kb`, and optionally `expected_answer` (a user
correction), `answer` (the answer the user saw) and `type`. Cases with an expected answer are scored
against it (containment and token F1, CMRC tokens: a CJK character or a run of letters/digits);
thumbs-down cases have no gold, so the report says whether today's answer differs from the disliked
one, refuses, or cites a source.

By default the chain answers WITHOUT the stored user corrections: a correction answers its own
question by construction, so what a regression set asks is whether the documents and the model get
it right on their own. `with_corrections=True` answers as the user would see it today.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.evaluation.answers import cmrc_tokens, normalize_answer, strip_citations
from rag.answer.prompts import is_refusal
from rag.errors import RagkbError
from rag.settings import Settings

# A reply "matches" a user's expected answer when it contains it or shares this much of its tokens.
MATCH_F1 = 0.5


@dataclass
class Case:
    line: int
    kb: str
    question: str
    expected: str | None  # the answer a user verified (corrections); None for thumbs-down
    before: str  # the answer the user saw then
    kind: str


class CasesFileError(RagkbError):
    """The cases file cannot be used at all (missing, unreadable, no usable line)."""


def load_cases(path: Path, kb: str | None = None) -> tuple[list[Case], list[str]]:
    """The usable cases of a JSONL file and, for every other line, why it was skipped (with its number)."""
    if not path.is_file():
        raise CasesFileError(f"{path}: file not found (export it from the web UI's Evaluation set tab)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CasesFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    cases, skipped = [], []
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError as exc:
            skipped.append(f"{path.name}:{n}: not JSON ({exc.msg})")
            continue
        if not isinstance(rec, dict):
            skipped.append(f"{path.name}:{n}: not a JSON object")
            continue
        question = str(rec.get("question") or "").strip()
        target = kb or str(rec.get("kb") or "").strip()
        if not question:
            skipped.append(f"{path.name}:{n}: no question")
            continue
        if not target:
            skipped.append(f"{path.name}:{n}: no knowledge base (give one with --kb)")
            continue
        expected = str(rec.get("expected_answer") or "").strip() or None
        cases.append(Case(n, target, question, expected, str(rec.get("answer") or ""),
                          str(rec.get("type") or ("correction" if expected else "thumbs_down"))))
    if not cases:
        raise CasesFileError(f"{path}: no usable case" + (f" ({'; '.join(skipped[:3])})" if skipped else " (empty file)"))
    return cases, skipped


def token_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 (SQuAD style) on CMRC tokens, so Chinese, English and mixed text all work."""
    p, g = cmrc_tokens(prediction), cmrc_tokens(gold)
    common = sum((Counter(p) & Counter(g)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def score_case(case: Case, reply: str, sources: list, error: str | None) -> dict:
    text = strip_citations(reply).strip()
    row = {"line": case.line, "kb": case.kb, "type": case.kind, "question": case.question, "reply": reply[:600],
           "error": error, "refused": is_refusal(text), "cited": bool(sources),
           "changed": normalize_answer(text) != normalize_answer(strip_citations(case.before)),
           "sources": [f"{s.filename}" + (f" p.{s.page}" if s.page else "") for s in sources]}
    if case.expected is not None:
        expected = normalize_answer(case.expected)
        row["expected_answer"] = case.expected
        row["contains_expected"] = bool(expected) and expected in normalize_answer(text)
        row["expected_f1"] = round(token_f1(text, case.expected), 4)
        row["matches_expected"] = row["contains_expected"] or row["expected_f1"] >= MATCH_F1
    return row


def summarize(rows: list[dict]) -> dict:
    n = len(rows) or 1
    out = {"cases": len(rows), "changed_rate": round(sum(r["changed"] for r in rows) / n, 4),
           "refusal_rate": round(sum(r["refused"] for r in rows) / n, 4),
           "cited_rate": round(sum(r["cited"] for r in rows) / n, 4),
           "errors": sum(1 for r in rows if r["error"])}
    if rows and "expected_f1" in rows[0]:
        out["matches_expected"] = round(sum(r["matches_expected"] for r in rows) / n, 4)
        out["contains_expected"] = round(sum(r["contains_expected"] for r in rows) / n, 4)
        out["expected_f1"] = round(sum(r["expected_f1"] for r in rows) / n, 4)
    return out


def evaluate(path: Path, settings: Settings, kb: str | None = None, with_corrections: bool = False,
             out_dir: Path | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Answer every case with the real chain on the user's own knowledge bases; per-case rows and a summary."""
    from rag.answer import AnswerService
    from rag.conversations import ConversationStore
    from rag.store import KnowledgeBaseStore

    say = progress or (lambda _m: None)
    cases, skipped = load_cases(path, kb)
    for reason in skipped:
        say(f"skipped {reason}")
    store = KnowledgeBaseStore(settings)
    service = AnswerService(store, conversations=ConversationStore(store.registry) if with_corrections else None)
    rows: list[dict] = []
    t0 = time.perf_counter()
    try:
        for i, case in enumerate(cases, start=1):
            ans = service.answer(case.kb, case.question)
            row = score_case(case, ans.text, ans.sources, ans.error)
            rows.append(row)
            verdict = "error" if row["error"] else ("matches" if row.get("matches_expected") else
                                                    ("refused" if row["refused"] else "answered"))
            say(f"[{i}/{len(cases)}] {case.kb}: {case.question[:60]} -> {verdict}")
    finally:
        service.llm.close()
        store.close()
    result: dict = {}
    corrections = [r for r in rows if "expected_f1" in r]
    thumbs = [r for r in rows if "expected_f1" not in r]
    if corrections:
        result["corrections"] = summarize(corrections)
    if thumbs:
        result["thumbs_down"] = summarize(thumbs)
    result["_meta"] = {"file": str(path), "cases": len(rows), "skipped": skipped, "with_corrections": with_corrections,
                       "match_rule": f"contains the expected answer or token F1 >= {MATCH_F1}",
                       "seconds": round(time.perf_counter() - t0, 1)}
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(out_dir / f"{path.stem}.per_case.jsonl", "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    result["_rows"] = rows
    return result
