#!/usr/bin/env python
"""Ingest throughput: ragkb's pipeline against the raw embedding model and the naive LangChain pipeline.

In one run, on the same files:
- ragkb: `ingest_paths` into a fresh knowledge base (load, clean, chunk, tokenize, embed, write Chroma,
  registry and BM25 index), pages/s and chunks/s;
- raw encode: the embedding model's `encode` on exactly the chunks ragkb produced, nothing else; the
  physical limit of this pipeline on this CPU. ragkb's overhead = ragkb time / encode time - 1 (goal < 10%);
- naive: PyPDFLoader (TextLoader for .md/.txt) + RecursiveCharacterTextSplitter(1000, 200) +
  `Chroma.from_documents` with the same embedding model.

Usage: python bench/ingest_throughput.py [FILES_OR_FOLDERS ...]
(default: the FinanceBench PDFs in ../shared/eval/public when present, first 4 by name; else app/samples)
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
FINANCEBENCH = ROOT.parent / "shared/eval/public/financebench_dev/pdfs"


def default_inputs() -> list[Path]:
    if FINANCEBENCH.is_dir():
        return sorted(FINANCEBENCH.glob("*.pdf"))[:4]
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs", nargs="*", type=Path)
    args = ap.parse_args()
    from ingest.pipeline import ingest_paths
    from rag.store import KnowledgeBaseStore

    files = expand(args.inputs or default_inputs())
    if not files:
        print("no input files", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", _env_file=None)
        store = KnowledgeBaseStore(settings)
        emb = store.embeddings()  # load the model outside every timing (all three share it)
        emb.embed_documents(["warm up", "预热"])

        t0 = time.perf_counter()
        summary = ingest_paths(store, "bench", files)
        ragkb_s = time.perf_counter() - t0
        failed = [f"{r.name}: {r.reason}" for r in summary.failed]
        pages = sum(r.pages or 1 for r in summary.ingested)
        rows = store.registry.chunk_rows(store.get_row("bench").id)
        texts = [r.text for r in rows]

        model = getattr(emb, "_client", None) or getattr(emb, "client", None)  # the SentenceTransformer
        t1 = time.perf_counter()
        if model is not None:
            model.encode(texts, batch_size=settings.embedding_batch_size, normalize_embeddings=True)
        else:
            emb.embed_documents(texts)
        encode_s = time.perf_counter() - t1
        store.close()

        t2 = time.perf_counter()
        naive_pages, naive_chunks = naive_pipeline(files, settings, Path(tmp))
        naive_s = time.perf_counter() - t2

    print(f"{len(files)} files, {pages} pages; ragkb {len(texts)} chunks, naive {naive_chunks} chunks"
          + (f"; failed: {failed}" if failed else ""))
    print("| pipeline | seconds | pages/s | chunks/s |")
    print("|---|---|---|---|")
    print(f"| ragkb ingest | {ragkb_s:.1f} | {pages / ragkb_s:.2f} | {len(texts) / ragkb_s:.1f} |")
    print(f"| raw encode of ragkb's chunks | {encode_s:.1f} | {pages / encode_s:.2f} | {len(texts) / encode_s:.1f} |")
    print(f"| naive LangChain (PyPDFLoader + splitter + Chroma.from_documents) | {naive_s:.1f} | "
          f"{naive_pages / naive_s:.2f} | {naive_chunks / naive_s:.1f} |")
    overhead = ragkb_s / encode_s - 1
    print(f"ragkb overhead over raw encode: {overhead * 100:+.1f}% (goal < 10%); "
          f"ragkb vs naive wall time: {naive_s / ragkb_s:.2f}x faster" if ragkb_s < naive_s else
          f"ragkb overhead over raw encode: {overhead * 100:+.1f}% (goal < 10%); "
          f"naive is {ragkb_s / naive_s:.2f}x faster than ragkb")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
