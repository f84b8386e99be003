#!/usr/bin/env python
"""Recompute rag/e5_small_means.npy: the mean multilingual-e5-small vector of Chinese and of English queries and
passages, which rag.e5_small subtracts before comparing (language-mean centering).

e5 puts text of one language close together whatever it says, so an English question about a Chinese manual
ranked the manual's English pages (a license, code listings) above the Chinese page that answers it. Subtracting
each language's mean vector removes that shared direction (Libovický et al., 2020, "On the language neutrality of
pre-trained multilingual representations"). The means come from the public dev sets: Chinese questions and
passages of CMRC 2018 and RGB, English claims and abstracts of SciFact and FinanceBench's questions and evidence.
None of the manual dev sets or held-out files is used, so the cross-language check on the TeX manuals stays clean.

Usage: python bench/e5_language_means.py [--public ../shared/eval/public] [--per-source 300]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.settings import apply_offline_env  # noqa: E402

apply_offline_env()
ROOT = Path(__file__).resolve().parent.parent


def sample(path: Path, key: str, n: int, cut: int = 1200) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [str(r[key])[:cut] for r in rows if str(r.get(key) or "").strip()]
    return random.Random(0).sample(texts, min(n, len(texts)))


def main() -> int:
    import numpy as np

    from rag.e5_small import MEANS_FILE, E5SmallEmbeddings

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--public", type=Path, default=ROOT.parent / "shared" / "eval" / "public")
    ap.add_argument("--per-source", type=int, default=300)
    args = ap.parse_args()
    pub, n = args.public, args.per_source
    fb = [json.loads(line) for line in (pub / "financebench_dev/questions.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = {
        ("query", "zh"): sample(pub / "cmrc2018_trial/queries.jsonl", "text", n) + sample(pub / "rgb_zh_dev/queries.jsonl", "text", n),
        ("passage", "zh"): sample(pub / "cmrc2018_trial/corpus.jsonl", "text", n) + sample(pub / "rgb_zh_dev/corpus.jsonl", "text", n),
        ("query", "en"): sample(pub / "scifact_train/queries.jsonl", "text", n) + [q["question"] for q in fb],
        ("passage", "en"): sample(pub / "scifact_train/corpus.jsonl", "text", n)
        + [e["evidence_text"][:1200] for q in fb for e in q["evidence"]],
    }
    emb = E5SmallEmbeddings(center=False)
    means = np.zeros((2, 2, emb.dim), dtype=np.float32)
    for (kind, lang), items in texts.items():
        vectors = np.array([emb.embed_query(t) for t in items] if kind == "query" else emb.embed_documents(items))
        means[0 if kind == "query" else 1, 0 if lang == "zh" else 1] = vectors.mean(axis=0)
        print(f"{kind} {lang}: {len(items)} texts, mean norm {np.linalg.norm(vectors.mean(axis=0)):.3f}")
    np.save(MEANS_FILE, means)
    print(f"wrote {MEANS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
