"""Headings found by their font (ingest/loaders/pdf_headings.py) against the bookmarks of PDFs that have them.

A PDF without bookmarks gets its sections from its heading lines. To see how well that works, it is run on
PDFs that do have bookmarks, as if they had none, and compared page by page: a found heading is right when
a bookmark title starting on that page is in it or it is in the title (letters and digits only, case
folded); recall is the share of bookmark titles found that way. Precision undercounts: headings that are
real but not bookmarked (a GFDL appendix's sections, a texinfo function definition, "Contents") count as
wrong. The extra time is reading the fonts against reading the text alone, same run.

    python bench/pdf_headings.py PDF [PDF ...] [--show 10]
"""

from __future__ import annotations

import argparse
import re
import time
from collections import defaultdict
from pathlib import Path


def _norm(s: str) -> str:
    return re.sub(r"\W", "", s).casefold()


def measure(path: Path, show: int) -> dict:
    from ingest.loaders.pdf import _extract_pages, _read_outline
    from ingest.loaders.pdf_headings import body_size, page_headings

    outline, _ = _read_outline(path)
    titles: dict[int, list[str]] = defaultdict(list)
    for e in outline:
        titles[e.page].append(_norm(e.title))
    t0 = time.perf_counter()
    _extract_pages(path, fonts=False)
    t1 = time.perf_counter()
    pages = _extract_pages(path, fonts=True)
    t2 = time.perf_counter()
    lines = {n: page[2] for n, page in enumerate(pages, start=1)}
    body = body_size(list(lines.values()))
    found = right = hit = 0
    wrong: list[tuple[int, str]] = []
    for n, page in lines.items():
        titles_found = [title for title, _, _ in page_headings(page, body)] if body else []
        heads = [_norm(t) for t in titles_found]
        for h, title in zip(heads, titles_found):
            found += 1
            if any(t and h and (t in h or h in t) for t in titles[n]):
                right += 1
            else:
                wrong.append((n, title))
        hit += sum(1 for t in titles[n] if any(t and h and (t in h or h in t) for h in heads))
    n_titles = sum(len(v) for v in titles.values())
    print(f"{path.name}: {len(pages)} pages, {n_titles} bookmarks, body {body} pt; found {found} headings, "
          f"precision {right / max(found, 1):.2f}, recall {hit / max(n_titles, 1):.2f}; "
          f"text {t1 - t0:.2f} s, text and fonts {t2 - t1:.2f} s")
    for n, title in wrong[:show]:
        print(f"   not a bookmark: p.{n} {title[:80]}")
    return {"file": path.name, "precision": right / max(found, 1), "recall": hit / max(n_titles, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pdfs", nargs="+", type=Path)
    ap.add_argument("--show", type=int, default=0, help="print this many found headings that are not bookmarks")
    args = ap.parse_args()
    for p in args.pdfs:
        measure(p, args.show)


if __name__ == "__main__":
    main()
