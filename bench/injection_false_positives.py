"""How often rag.answer.injection takes a sentence of an ordinary document for an order to the model: every sentence
of the public dev corpora (CMRC, RGB, SciFact passages; the lshort and ctex manuals and FinanceBench filings as
extracted text) through `defuse`, counts per family and each flagged sentence printed for a person to read.

    python bench/injection_false_positives.py ../shared/eval/public [--pdfs N]"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def corpus_texts(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            out.append(f"{d.get('title') or ''}\n{d.get('text') or ''}")
    return out


def pdf_texts(paths: list[Path]) -> list[str]:
    import pypdfium2 as pdfium

    out = []
    for p in paths:
        doc = pdfium.PdfDocument(str(p))
        out += [page.get_textpage().get_text_range() for page in doc]
        doc.close()
    return out


def main() -> None:
    from rag.answer.injection import _PIECES, defuse

    ap = argparse.ArgumentParser()
    ap.add_argument("public", type=Path)
    ap.add_argument("--pdfs", type=int, default=10, help="FinanceBench filings to read (the largest family)")
    args = ap.parse_args()
    pub = args.public
    fams = {
        "CMRC (zh encyclopedia)": lambda: corpus_texts(pub / "cmrc2018_trial" / "corpus.jsonl"),
        "RGB (zh news)": lambda: corpus_texts(pub / "rgb_zh_dev" / "corpus.jsonl"),
        "SciFact (en abstracts)": lambda: corpus_texts(pub / "scifact_train" / "corpus.jsonl"),
        "LaTeX manuals (lshort, ctex)": lambda: pdf_texts(sorted((pub / "pdf_ingest_dev" / "pdfs").glob("*.pdf"))),
        "FinanceBench filings (en)": lambda: pdf_texts(sorted((pub / "financebench_dev" / "pdfs").glob("*.pdf"))[:args.pdfs]),
    }
    print("| family | texts | sentences | flagged | share | seconds |\n|---|---|---|---|---|---|")
    flagged_all: dict[str, list[str]] = {}
    for name, load in fams.items():
        texts = load()
        t0 = time.perf_counter()
        sentences = sum(1 for t in texts for p in _PIECES.findall(t) if p.strip())
        flagged = [s for t in texts for s in defuse(t).dropped]
        secs = time.perf_counter() - t0
        flagged_all[name] = flagged
        print(f"| {name} | {len(texts)} | {sentences} | {len(flagged)} | {len(flagged) / max(sentences, 1):.5%} | {secs:.1f} |")
    for name, flagged in flagged_all.items():
        print(f"\n{name}:")
        for s in flagged:
            print("  -", " ".join(s.split())[:200])


if __name__ == "__main__":
    main()
