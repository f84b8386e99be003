#!/usr/bin/env python
"""Retrieval latency versus knowledge-base size: ragkb's hybrid search against LangChain's
EnsembleRetriever(BM25Retriever, Chroma), both measured in this run on the same chunks and queries.

Knowledge bases of synthetic chunks (half English, half Chinese, Zipf-distributed words) are written
straight through the store's own write path (registry rows, Chroma upsert, BM25 index), with synthetic
clustered unit vectors so that 100k chunks do not need 100k embedding calls. Queries are real text
embedded by the real model at query time: the latency includes the query embedding, as a user sees it.

Usage: python bench/retrieval_latency.py [--sizes 1000,10000,100000] [--queries 50] [--no-baseline]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.settings import Settings, apply_offline_env  # noqa: E402

apply_offline_env()

CHUNKS_PER_DOC = 500
SYLLABLES = "ka lo mi ne ru sa te vi po da fe gu hi jo ki la mu no pe ri so tu ve wa xo yi ze".split()
HANZI = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后"
         "多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由"
         "其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月"
         "公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严")


def make_vocab(rng: random.Random) -> tuple[list[str], list[str]]:
    en = sorted({"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(6000)})
    zh = sorted({rng.choice(HANZI) + rng.choice(HANZI) for _ in range(6000)})
    return en, zh


def zipf_words(rng: random.Random, vocab: list[str], n: int) -> list[str]:
    weights = [1.0 / (i + 1) ** 1.05 for i in range(len(vocab))]
    return rng.choices(vocab, weights=weights, k=n)


def synthetic_chunks(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """n chunk texts and 2 x 25 query texts drawn from them (half English, half Chinese)."""
    rng = random.Random(seed)
    en, zh = make_vocab(rng)
    texts = []
    for i in range(n):
        if i % 2 == 0:
            texts.append(" ".join(zipf_words(rng, en, 70)) + ".")
        else:
            texts.append("".join(zipf_words(rng, zh, 80)) + "。")
    return texts, en + zh


def synthetic_vectors(n: int, dim: int, seed: int = 0):  # noqa: ANN201
    """Unit vectors around 256 cluster centres: a stand-in for real embeddings (HNSW cost depends on
    size and dimension, not on what the vectors mean)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((256, dim)).astype("float32")
    v = centres[rng.integers(0, 256, n)] + 0.6 * rng.standard_normal((n, dim)).astype("float32")
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def queries_for(texts: list[str], count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        t = texts[rng.randrange(len(texts)) // 2 * 2 + (i % 2)]  # alternate English / Chinese chunks
        if i % 2 == 0:
            words = t.rstrip(".").split()
            start = rng.randrange(0, len(words) - 6)
            out.append(" ".join(words[start:start + 6]) + "?")
        else:
            start = rng.randrange(0, len(t) - 12)
            out.append(t[start:start + 12] + "？")
    return out


def build_kb(store, name: str, texts: list[str], vectors) -> None:  # noqa: ANN001
    """Write the chunks through the store's write path (as the pipeline does), 500 chunks per document."""
    from rag.lexical import tokenize

    kb, _ = store.get_or_create_row(name)
    for d, start in enumerate(range(0, len(texts), CHUNKS_PER_DOC)):
        part = texts[start:start + CHUNKS_PER_DOC]
        doc = store.begin_document(kb, filename=f"doc{d:04d}.txt", source_path=None, sha256=f"{name}-{d}",
                                   file_type="text", size_bytes=sum(len(t) for t in part), pages=None,
                                   chunks=len(part), warnings=None)
        rows = [{"id": f"{doc.id}:{i}", "doc_id": doc.id, "idx": i, "text": t, "filename": doc.filename,
                 "page": None, "section": None, "char_offset": 0, "tokens": tokenize(t)} for i, t in enumerate(part)]
        store.add_chunks(kb, rows, vectors[start:start + len(rows)].tolist())
        store.publish_document(kb, doc)
    store.refresh_bm25(kb)


def ensemble_retriever(store, kb_name: str, texts: list[str]):  # noqa: ANN001, ANN201
    """LangChain's documented hybrid: EnsembleRetriever(BM25Retriever, Chroma retriever), weights 0.5/0.5,
    over the same chunks and the same Chroma collection."""
    from langchain_chroma import Chroma
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever

    from rag.lexical import tokenize

    k = store.settings.retrieval_k
    bm25 = BM25Retriever.from_texts(texts, preprocess_func=tokenize, k=k)  # jieba-aware, as fair as it gets
    kb = store.get_row(kb_name)
    dense = Chroma(client=store.client, collection_name=kb.collection,
                   embedding_function=store.embeddings()).as_retriever(search_kwargs={"k": k})
    return EnsembleRetriever(retrievers=[bm25, dense], weights=[0.5, 0.5])


def timed(fn, queries: list[str]) -> list[float]:  # noqa: ANN001
    out = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--no-baseline", action="store_true", help="Skip EnsembleRetriever (slow at 100k).")
    args = ap.parse_args()
    from rag.retrieval import search
    from rag.store import KnowledgeBaseStore

    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = KnowledgeBaseStore(Settings(data_dir=Path(tmp), _env_file=None))
        dim = len(store.embeddings().embed_query("warm up"))
        for n in sizes:
            texts, _ = synthetic_chunks(n)
            t0 = time.perf_counter()
            name = f"bench {n}"
            build_kb(store, name, texts, synthetic_vectors(n, dim))
            build_s = time.perf_counter() - t0
            queries = queries_for(texts, args.queries)
            for q in queries[:3]:  # warm-up: index load, jieba, embedder
                search(store, name, q)
            ragkb = timed(lambda q: search(store, name, q), queries)
            en = [ms for ms, q in zip(ragkb, queries) if q.endswith("?")]
            zh = [ms for ms, q in zip(ragkb, queries) if q.endswith("？")]
            row = {"chunks": n, "build_s": build_s, "ragkb_p50": statistics.median(ragkb), "ragkb_p95": pct(ragkb, 95),
                   "ragkb_en_p50": statistics.median(en), "ragkb_zh_p50": statistics.median(zh)}
            if not args.no_baseline:
                t1 = time.perf_counter()
                ens = ensemble_retriever(store, name, texts)
                row["ensemble_build_s"] = time.perf_counter() - t1
                for q in queries[:3]:
                    ens.invoke(q)
                base = timed(ens.invoke, queries)
                row.update({"ensemble_p50": statistics.median(base), "ensemble_p95": pct(base, 95)})
            rows.append(row)
            print(f"{n} chunks: ragkb p50 {row['ragkb_p50']:.1f} ms"
                  + (f", EnsembleRetriever p50 {row['ensemble_p50']:.1f} ms" if "ensemble_p50" in row else ""),
                  flush=True)
        store.close()
    print(f"\n{args.queries} queries per size (half English, half Chinese), query embedding included; "
          "2-core CPU unless stated")
    print("| chunks | ragkb p50 ms | ragkb p95 ms | ragkb en p50 | ragkb zh p50 | Ensemble p50 ms | Ensemble p95 ms "
          "| p50 ratio Ensemble/ragkb |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['ensemble_p50'] / r['ragkb_p50']:.1f}x" if "ensemble_p50" in r else "-"
        print(f"| {r['chunks']} | {r['ragkb_p50']:.1f} | {r['ragkb_p95']:.1f} | {r['ragkb_en_p50']:.1f} | "
              f"{r['ragkb_zh_p50']:.1f} | {r.get('ensemble_p50', float('nan')):.1f} | "
              f"{r.get('ensemble_p95', float('nan')):.1f} | {ratio} |")
    goal = [r for r in rows if r["chunks"] >= 100000]
    if goal:
        print(f"goal: p50 < 50 ms at 100k chunks -> {goal[0]['ragkb_p50']:.1f} ms "
              f"({'met' if goal[0]['ragkb_p50'] < 50 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
