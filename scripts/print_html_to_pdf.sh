#!/usr/bin/env bash
# Print a folder of HTML pages to one PDF without bookmarks, as a browser export would be (Chromium headless, no
# header or footer; the pages joined in file-name order with pypdf). Makes the "printed to PDF" families of
# docs/evaluation.md from documentation the distribution installs, e.g.
#   mkdir -p /tmp/sets && cp app/evaluation/heldout/python_tutorial.jsonl /tmp/sets/python_tutorial_pdf.jsonl
#   scripts/print_html_to_pdf.sh /usr/share/doc/python3/html/tutorial /tmp/sets/python_tutorial_pdf.pdf
#   ragkb eval answers /tmp/sets/python_tutorial_pdf.jsonl --no-baseline --out-dir OUT
# (the Debian FAQ: /usr/share/doc/debian/FAQ/zh-cn and debian_faq_zh.jsonl). Usage: print_html_to_pdf.sh SRC_DIR OUT.pdf
set -euo pipefail
src=$1; out=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for f in "$src"/*.html; do
  timeout 60 chromium --headless --no-sandbox --disable-gpu --no-pdf-header-footer \
    --print-to-pdf="$tmp/$(basename "$f" .html).pdf" "file://$(realpath "$f")" >/dev/null 2>&1
done
"$(dirname "$0")/../.venv/bin/python" - "$tmp" "$out" <<'PY'
import glob, sys
from pypdf import PdfWriter
w = PdfWriter()
for f in sorted(glob.glob(sys.argv[1] + "/*.pdf")):
    w.append(f, import_outline=False)
w.write(sys.argv[2])
print(sys.argv[2], len(w.pages), "pages")
PY
