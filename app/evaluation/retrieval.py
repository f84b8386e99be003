"""Retrieval evaluation on a BEIR-format set (corpus.jsonl, queries.jsonl, qrels/*.tsv).

The corpus is ingested with ragkb's real pipeline into a temporary knowledge base; each query is
searched and scored at document level (a document's rank is its best chunk's rank). In the same run
and on the same inputs:
- baselines: `bm25`, plain bm25s over whole documents (same jieba/stemming tokenizer), and `naive`,
  the LangChain tutorial pipeline (RecursiveCharacterTextSplitter 1000/200, the same embedding model,
  Chroma similarity search, no hybrid);
- ragkb's own legs alone and plain (unweighted) RRF, so the fusion rule is checked against its better leg;
- a paired bootstrap 95% confidence interval of ragkb minus each baseline.
"""

from __future__ import annotations

import csv
import json
import math
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rag.settings import Settings


@dataclass
class BeirSet:
    name: str
    corpus: dict[str, dict]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(set_dir: Path, limit: int | None = None, seed: int = 0) -> BeirSet:
    corpus = {}
    with open(set_dir / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            corpus[str(d["_id"])] = d
    queries = {}
    with open(set_dir / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            queries[str(q["_id"])] = q["text"]
    qrels: dict[str, dict[str, int]] = {}
    qrel_files = sorted((set_dir / "qrels").glob("*.tsv"))
    if not qrel_files:
        raise FileNotFoundError(f"{set_dir}/qrels/*.tsv not found: not a BEIR-format set")
    with open(qrel_files[0], encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if int(row["score"]) > 0:
                qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(row["score"])
    queries = {q: t for q, t in queries.items() if q in qrels}
    if limit and limit < len(queries):
        keep = sorted(random.Random(seed).sample(sorted(queries), limit))
        queries = {q: queries[q] for q in keep}
    return BeirSet(set_dir.name, corpus, queries, qrels)


def doc_metrics(ranked_docs: list[str], relevant: dict[str, int]) -> dict[str, float]:
    """nDCG@10, MRR@10 and Recall@1/5/10/100 for one query."""
    dcg = sum((2 ** relevant.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked_docs[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum((2 ** r - 1) / math.log2(i + 2) for i, r in enumerate(ideal))
    rr = next((1.0 / (i + 1) for i, d in enumerate(ranked_docs[:10]) if d in relevant), 0.0)
    out = {"ndcg@10": dcg / idcg if idcg else 0.0, "mrr@10": rr}
    for k in (1, 5, 10, 100):
        out[f"recall@{k}"] = len(set(ranked_docs[:k]) & set(relevant)) / len(relevant)
    return out


def mean_metrics(per_query: list[dict[str, float]]) -> dict[str, float]:
    keys = per_query[0].keys() if per_query else []
    return {k: round(sum(m[k] for m in per_query) / len(per_query), 4) for k in keys}


def ingest_corpus(store, kb: str, beir: BeirSet, workdir: Path) -> dict[str, str]:  # noqa: ANN001
    """Write each corpus document as a text file and ingest the folder; returns filename -> doc id."""
    from ingest.pipeline import ingest_paths

    folder = workdir / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    names = {}
    for n, (doc_id, d) in enumerate(beir.corpus.items()):
        fname = f"d{n:07d}.txt"
        (folder / fname).write_text(doc_text(d) or " ", encoding="utf-8")
        names[f"corpus/{fname}"] = doc_id
    summary = ingest_paths(store, kb, [folder])
    failed = [r for r in summary.failed]
    if failed:
        print(f"warning: {len(failed)} corpus documents failed to ingest, e.g. {failed[0].name}: {failed[0].reason}")
    return names


def rank_documents(hits, names: dict[str, str]) -> list[str]:  # noqa: ANN001
    seen, ranked = set(), []
    for h in hits:
        d = names.get(h.filename)
        if d is not None and d not in seen:
            seen.add(d)
            ranked.append(d)
    return ranked


def doc_text(d: dict) -> str:
    title = (d.get("title") or "").strip()
    return f"{title}\n\n{d.get('text', '')}" if title else d.get("text", "")


def bm25_baseline(beir: BeirSet) -> dict[str, list[str]]:
    """Plain BM25 over whole documents: {query id: ranked doc ids (top 100)}."""
    import bm25s
    import numpy as np

    from rag.lexical import tokenize

    ids = list(beir.corpus)
    index = bm25s.BM25()
    index.index([tokenize(doc_text(beir.corpus[i])) or ["\u0000"] for i in ids], show_progress=False)
    out = {}
    for qid, text in beir.queries.items():
        tokens = [t for t in tokenize(text) if t in index.vocab_dict]
        if not tokens:
            out[qid] = []
            continue
        scores = index.get_scores(tokens)
        top = np.argsort(-scores, kind="stable")[:100]
        out[qid] = [ids[i] for i in top if scores[i] > 0]
    return out


def naive_baseline(beir: BeirSet, settings: Settings, workdir: Path) -> dict[str, list[str]]:
    """The LangChain tutorial RAG retriever: 1000/200 character chunks, same embedder, Chroma top-k."""
    from langchain_core.documents import Document

    from app.evaluation import naive

    chunks = naive.split([Document(page_content=doc_text(d) or " ", metadata={"doc": i})
                          for i, d in beir.corpus.items()])
    store = naive.chroma_store(chunks, settings, workdir / "naive")
    out = {}
    for qid, text in beir.queries.items():
        ranked, seen = [], set()
        for doc in store.similarity_search(text, k=100):
            d = doc.metadata["doc"]
            if d not in seen:
                seen.add(d)
                ranked.append(d)
        out[qid] = ranked
    return out


def paired_bootstrap(a: list[float], b: list[float], n: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean difference a-b over paired queries with a 95% bootstrap confidence interval."""
    import numpy as np

    diff = np.asarray(a) - np.asarray(b)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n, len(diff)))].mean(axis=1)
    return {"diff": round(float(diff.mean()), 4), "ci95_low": round(float(np.percentile(means, 2.5)), 4),
            "ci95_high": round(float(np.percentile(means, 97.5)), 4)}


def evaluate(set_dir: Path, settings: Settings, limit: int | None = None, data_dir: Path | None = None,
             out_dir: Path | None = None, baselines: bool = True) -> dict:
    from rag.retrieval import leg_weights, search
    from rag.store import KnowledgeBaseStore

    beir = load_beir(set_dir, limit)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        s = settings.model_copy(update={"data_dir": data_dir or workdir / "data"})
        store = KnowledgeBaseStore(s)
        t0 = time.perf_counter()
        names = ingest_corpus(store, "eval", beir, workdir)
        ingest_s = time.perf_counter() - t0
        configs = {
            "ragkb": None,  # the weights ragkb uses for each query's language
            "bm25_leg": (0.0, 1.0),
            "dense_leg": (1.0, 0.0),
            "rrf_equal": (1.0, 1.0),
        }
        per_query: dict[str, dict[str, dict]] = {c: {} for c in configs}
        t1 = time.perf_counter()
        for qid, text in beir.queries.items():
            for cfg, weights in configs.items():
                hits = search(store, "eval", text, k=100, fetch_k=200, weights=weights)
                per_query[cfg][qid] = doc_metrics(rank_documents(hits, names), beir.qrels[qid])
        search_s = time.perf_counter() - t1
        weights_used = {q: leg_weights(store, t) for q, t in list(beir.queries.items())[:1]}
        store.close()
        timings = {}
        if baselines:
            t2 = time.perf_counter()
            ranked = bm25_baseline(beir)
            per_query["bm25"] = {q: doc_metrics(ranked[q], beir.qrels[q]) for q in beir.queries}
            timings["bm25_seconds"] = round(time.perf_counter() - t2, 1)
            t3 = time.perf_counter()
            ranked = naive_baseline(beir, s, workdir)
            per_query["naive"] = {q: doc_metrics(ranked[q], beir.qrels[q]) for q in beir.queries}
            timings["naive_seconds"] = round(time.perf_counter() - t3, 1)
    result = {cfg: mean_metrics(list(pq.values())) for cfg, pq in per_query.items()}
    qids = list(beir.queries)
    result["_ci"] = {
        f"ragkb-{base}": {metric: paired_bootstrap([per_query["ragkb"][q][metric] for q in qids],
                                                   [per_query[base][q][metric] for q in qids])
                          for metric in ("ndcg@10", "mrr@10", "recall@10")}
        for base in ("bm25", "naive", "bm25_leg", "dense_leg") if base in per_query
    }
    result["_meta"] = {"set": beir.name, "queries": len(beir.queries), "documents": len(beir.corpus),
                       "embedding_model": settings.embedding_model, "ingest_seconds": round(ingest_s, 1),
                       "search_seconds_all_configs": round(search_s, 1), **timings,
                       "example_weights": {q: list(w) for q, w in weights_used.items()}}
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{beir.name}.per_query.json").write_text(json.dumps(per_query, indent=1), encoding="utf-8")
    return result
