#!/usr/bin/env python
"""Measure PDF ingest against ground truth: probe-sentence recall and outline page attribution.

Usage: python scripts/check_pdf_ingest.py [../shared/eval/public/pdf_ingest_dev] [--json OUT]

Each PDF is ingested with the real pipeline into a temporary knowledge base. Reported per PDF:
- probes (text): share of `probes` found in the extracted text (NFKC, non-word characters removed,
  lower-cased), and probes (chunk): share found inside a single indexed chunk;
- outline titles on the right page: for each bookmark, some chunk containing its title has
  page == the bookmark's 1-based physical page; and section: that chunk's section path ends with the title.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.settings import Settings, apply_offline_env  # noqa: E402

apply_offline_env()


def norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text)).lower()


def check(pdf: Path, truth: dict, store) -> dict:  # noqa: ANN001
    from ingest.pipeline import ingest_paths

    t0 = time.perf_counter()
    summary = ingest_paths(store, pdf.stem, [pdf])
    seconds = time.perf_counter() - t0
    result = summary.results[0]
    if result.status == "failed":
        return {"file": pdf.name, "error": result.reason}
    kb = store.get_row(pdf.stem)
    chunks = store.registry.chunk_rows(kb.id)
    chunk_norm = [(c.page, c.section or "", norm(c.text)) for c in chunks]
    # the extracted text, in page order, without chunk overlaps: rebuild it from the loader
    from ingest.loaders.pdf import load_pdf

    loaded = load_pdf(pdf)
    full = norm("".join(s.text for s in loaded.segments))

    probes = truth.get("probes", [])
    in_text = [p for p in probes if norm(p) in full]
    in_chunk = [p for p in probes if any(norm(p) in c for _, _, c in chunk_norm)]

    outline = truth.get("outline", [])
    on_page, with_section, missing = 0, 0, []
    for entry in outline:
        t = norm(entry["title"])
        holders = [(page, sec) for page, sec, c in chunk_norm if t and t in c]
        if any(page == entry["page_number"] for page, _ in holders):
            on_page += 1
        else:
            missing.append(f'{entry["title"]} (p.{entry["page_number"]}, found on {sorted({p for p, _ in holders})[:5]})')
        if any(page == entry["page_number"] and norm(sec.split(" > ")[-1]) == t for page, sec in holders):
            with_section += 1
    return {
        "file": pdf.name, "pages": result.pages, "chunks": result.chunks, "ingest_seconds": round(seconds, 1),
        "probe_recall_text": f"{len(in_text)}/{len(probes)}" if probes else None,
        "probe_recall_chunk": f"{len(in_chunk)}/{len(probes)}" if probes else None,
        "outline_on_page": f"{on_page}/{len(outline)}",
        "outline_section": f"{with_section}/{len(outline)}",
        "probes_missed": [p for p in probes if p not in in_text][:10],
        "outline_missed": missing[:10],
    }


def main() -> int:
    default = Path(__file__).resolve().parent.parent.parent / "shared/eval/public/pdf_ingest_dev"
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("set_dir", nargs="?", type=Path, default=default)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from rag.store import KnowledgeBaseStore

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        store = KnowledgeBaseStore(Settings(data_dir=Path(tmp), _env_file=None))
        for truth_file in sorted(args.set_dir.glob("*.truth.json")):
            truth = json.loads(truth_file.read_text(encoding="utf-8"))
            pdf = args.set_dir / truth.get("file", "pdfs/" + truth_file.name.replace(".truth.json", ".pdf"))
            r = check(pdf, truth, store)
            results.append(r)
            print(json.dumps(r, ensure_ascii=False, indent=1))
        store.close()
    print("\n| PDF | pages | chunks | ingest s | probes in text | probes in one chunk | outline title on right page | outline section |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['file']} | {r.get('pages')} | {r.get('chunks')} | {r.get('ingest_seconds')} | "
              f"{r.get('probe_recall_text') or '-'} | {r.get('probe_recall_chunk') or '-'} | "
              f"{r.get('outline_on_page')} | {r.get('outline_section')} |")
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
