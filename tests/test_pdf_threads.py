"""PDFium is not thread-safe: the server previews pages, reads uploaded PDFs and OCRs scans in worker threads
at the same time. Before the process-wide pdfium lock (rag.pdfium_guard), a source preview during another
PDF's ingest killed the server with a segfault in libpdfium. Run in a child process, so that a crash fails
this test instead of killing the test run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import REPO

SCRIPT = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    sys.path[:0] = [{repo!r}, {tests!r}]
    from docs import image_only_pdf, zh_pdf
    from ingest.loaders.pdf import load_pdf
    from rag.preview import render_page

    tmp = Path(sys.argv[1])
    pdf = zh_pdf(tmp / "员工手册.pdf")
    scan = image_only_pdf(pdf, tmp / "扫描件.pdf", pages=[0])
    errors = []

    def preview():
        for _ in range(30):
            png, boxes = render_page(pdf, 1, "员工出差前需要在系统中提交出差申请")
            assert png[:4] == b"\\x89PNG" and boxes >= 1

    def read():
        for _ in range(30):
            assert load_pdf(pdf, ocr=False).pages == 3

    def ocr():
        assert load_pdf(scan).ocr_pages == 1

    def run(fn):
        try:
            fn()
        except Exception as exc:  # reported, not swallowed
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(fn,)) for fn in (preview, preview, read, read, ocr)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("errors:", errors)
    sys.exit(1 if errors else 0)
""")


def test_previews_reads_and_ocr_in_parallel_threads_do_not_crash_the_process(tmp_path):
    code = SCRIPT.format(repo=str(REPO), tests=str(REPO / "tests"))
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"exit {run.returncode} (-11 is a segfault in pdfium)\n{run.stdout}\n{run.stderr[-3000:]}"
