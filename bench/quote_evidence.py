#!/usr/bin/env python
"""Does the quote fallback show the answer? Measured without an answer call.

When the model's reply says nothing beyond the question ("[1]", "[1] [2] [3] [4]", the question again), the check
stage quotes the cited blocks' evidence (rag.answer.sentences.quote_with_block). Whether that quote holds the answer
depends only on the blocks the model read and on which of them it cited. This script runs the answer pipeline up to
the prompt for each first-turn question of the given sets (retrieval, the gate, a translation when the pipeline asks
for one: that call is real), then quotes three ways a small model cites: the first block holding the gold answer
(the model found it), block 1, and every block. It prints, per scenario and per family, how often the quote holds
the gold answer and its mean length. Run it at two commits to compare quote rules (docs/evaluation.md).

Usage: python bench/quote_evidence.py OUT.jsonl SET... [--public ../shared/eval/public]
  SET: a manual dev set (app/evaluation/devsets/*.jsonl, app/evaluation/heldout/*.jsonl) or NAME:LIMIT for a
  public QA set (cmrc2018_trial:60, rgb_zh_dev:60). OUT.jsonl keeps the blocks: a second run with --score-only OUT.jsonl
  quotes again without retrieving.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.settings import apply_offline_env  # noqa: E402

apply_offline_env()

FAMILIES = {"ctex_zh": "latex", "lshort_zh": "latex", "lshort_en": "latex", "jnj_8k": "financebench",
            "libtasn1": "gnu-manual", "manpages_zh": "manpages", "debian_faq_zh": "debian",
            "debian_reference_zh": "debian", "install_guide_zh": "debian", "maint_guide_zh": "debian",
            "kicad_zh": "kicad", "mime_spec": "spec", "python_tutorial": "python", "cmrc2018_trial": "cmrc",
            "rgb_zh_dev": "rgb"}


def replay(sets: list[str], public: Path, out_path: Path) -> None:
    """Append one record per first-turn question: the blocks as the model would read them, and each sentence's
    similarity to the question (the quote's dense bonus)."""
    import rag.answer.service as service_module
    from app.evaluation.answers import load_qa, scratch_store, with_assembled_model
    from app.evaluation.manual import find_documents
    from app.evaluation.retrieval import ingest_corpus
    from app.services import RagkbService
    from ingest.pipeline import ingest_paths
    from rag.answer.generate import Reply
    from rag.answer.sentences import split_sentences
    from rag.settings import Settings

    seen: dict = {}
    select = service_module.evidence_stage.select

    def capture(svc, kb, turn, found):  # noqa: ANN001, ANN202
        seen.update(passages=select(svc, kb, turn, found), turn=turn, found=found)
        return seen["passages"]

    def no_answer(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202 - the prompt is built; the model is not asked
        return Reply(error="not asked")
        yield  # noqa: B901 - a generator, as rag.answer.generate.generate is

    service_module.evidence_stage.select, service_module.generate = capture, no_answer
    with open(out_path, "a", encoding="utf-8") as out:
        for spec in sets:
            with scratch_store(with_assembled_model(Settings(_env_file=None))) as (store, tmp):
                app = RagkbService(store=store)
                if spec.endswith(".jsonl"):
                    kb = Path(spec).stem
                    items = [json.loads(x) for x in Path(spec).read_text(encoding="utf-8").splitlines() if x.strip()]
                    items = [(it["id"], it["question"], it["answers"]) for it in items if not it.get("follows")]
                    ingest_paths(store, kb, find_documents(Path(spec), public, tmp))
                else:
                    kb, limit = spec.split(":")
                    beir, qa, _ = load_qa(public / kb, int(limit))
                    ingest_corpus(store, kb, beir, tmp / "corpus")
                    items = [(q.qid, q.question, q.answers) for q in qa]
                print(f"[{kb}] {len(items)} questions", file=sys.stderr, flush=True)
                for qid, question, answers in items:
                    seen.clear()
                    list(app.answers.stream(kb, question, []))
                    rec = {"set": kb, "id": qid, "q": question, "answers": answers, "blocks": None}
                    if seen:
                        p, turn, found = seen["passages"], seen["turn"], seen["found"]
                        texts = [b[3] for b in p.blocks]
                        sentences = sorted({x for t in texts for x in split_sentences(t)})
                        sims = dict(zip(sentences, p.similarity(sentences))) if p.similarity and sentences else {}
                        rec.update(standalone=turn.standalone, translated=found.translated, blocks=texts, sims=sims)
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                app.close()


def score(records: list[dict]) -> None:
    from app.evaluation.answers import contains_answer
    from rag.answer.sentences import quote_with_block
    from rag.settings import Settings

    weight = Settings(_env_file=None).evidence_dense_weight
    table: dict = defaultdict(lambda: [0, 0, 0])  # key -> [questions, quote holds the answer, characters]
    for r in records:
        if not r["blocks"] or not r["answers"]:
            continue
        sims = r["sims"]
        similarity = (lambda xs, sims=sims: [sims.get(x, 0.0) for x in xs]) if sims else None
        question, blocks = f"{r['standalone']} {r['translated'] or ''}", r["blocks"]
        holding = [i for i, t in enumerate(blocks) if contains_answer(t, r["answers"])]
        cited = {}
        if holding:
            cited |= {"A the block with the answer": [holding[0]], "C every block": list(range(len(blocks)))}
        if 0 in holding:
            cited["B block 1"] = [0]
        for scenario, blocks_cited in cited.items():
            quote, _ = quote_with_block(question, [blocks[i] for i in blocks_cited], similarity=similarity,
                                        dense_weight=weight)
            for key in (scenario, f"{scenario} / {FAMILIES.get(r['set'], r['set'])}"):
                row = table[key]
                row[0] += 1
                row[1] += contains_answer(quote, r["answers"])
                row[2] += len(quote)
    for key in sorted(table):
        n, held, chars = table[key]
        print(f"{key:42s} questions {n:3d}   quote holds the answer {held:3d}   mean length {chars / n:4.0f} chars")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("sets", nargs="*")
    ap.add_argument("--public", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared/eval/public")
    ap.add_argument("--score-only", action="store_true", help="quote the blocks already in OUT.jsonl")
    args = ap.parse_args()
    if not args.score_only:
        replay(args.sets, args.public, args.out)
    score([json.loads(x) for x in args.out.read_text(encoding="utf-8").splitlines() if x.strip()])


if __name__ == "__main__":
    main()
