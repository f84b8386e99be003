"""`ragkb eval retrieval` on a tiny BEIR-format set written by the test (the public sets are not needed)."""

from __future__ import annotations

import json
import subprocess

from conftest import REPO, cli_env, ragkb_exe

DOCS = {
    "d1": ("Telescopes", "The Falcon telescope observes distant galaxies in infrared light."),
    "d2": ("Mirrors", "Mirror calibration uses a laser interferometer every night."),
    "d3": ("报销", "财务部门在收到完整材料后的五个工作日内完成付款。"),
    "d4": ("年假", "工作满十年的员工享有十天年假。"),
    "d5": ("Kayaks", "Sea kayaks are long and narrow boats for open water."),
    "d6": ("天气", "明天北京有小雨，气温十五度。"),
}
QUERIES = {"q1": ("Which telescope looks at galaxies in infrared?", "d1"), "q2": ("How is the mirror calibrated?", "d2"),
           "q3": ("报销后几天付款？", "d3"), "q4": ("工作十年有几天年假", "d4"), "q5": ("boats for the open sea", "d5")}


def write_set(root):
    (root / "qrels").mkdir(parents=True)
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for i, (t, x) in DOCS.items():
            fh.write(json.dumps({"_id": i, "title": t, "text": x}, ensure_ascii=False) + "\n")
    with open(root / "queries.jsonl", "w", encoding="utf-8") as fh:
        for q, (text, _) in QUERIES.items():
            fh.write(json.dumps({"_id": q, "text": text}, ensure_ascii=False) + "\n")
    with open(root / "qrels" / "test.tsv", "w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for q, (_, d) in QUERIES.items():
            fh.write(f"{q}\t{d}\t1\n")


def test_eval_retrieval_reports_ragkb_and_baselines(tmp_path):
    write_set(tmp_path / "tiny")
    out = tmp_path / "out.json"
    r = subprocess.run([ragkb_exe(), "eval", "retrieval", str(tmp_path / "tiny"), "--json", str(out),
                        "--per-query-dir", str(tmp_path / "pq")], cwd=REPO, env=cli_env(tmp_path / "data"),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    for name in ("ragkb", "bm25", "naive", "bm25_leg", "dense_leg", "rrf_equal"):
        m = result[name]
        assert set(m) >= {"ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10", "recall@100"}
        assert all(0.0 <= v <= 1.0 for v in m.values())
    assert result["ragkb"]["ndcg@10"] >= 0.9 and result["ragkb"]["recall@10"] == 1.0
    ci = result["_ci"]["ragkb-naive"]["ndcg@10"]
    assert ci["ci95_low"] <= ci["diff"] <= ci["ci95_high"]
    assert result["_meta"]["queries"] == 5 and result["_meta"]["documents"] == 6
    per_query = json.loads((tmp_path / "pq" / "tiny.per_query.json").read_text())
    assert set(per_query["ragkb"]) == set(QUERIES)
    assert "ragkb-bm25: nDCG@10 difference" in r.stdout
