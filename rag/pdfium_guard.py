"""One lock for every pdfium call in the process.

PDFium is not thread-safe, not even across different documents (pypdfium2's documentation: concurrent
calls "would crash or corrupt the process"). The server renders source previews, reads PDFs and OCRs
scanned pages in worker threads at the same time; without this lock a preview during another pdfium call
killed the server with a segfault in libpdfium. Hold it from opening a document to closing it, and close
every pdfium object (pages, text pages, bitmaps) explicitly inside it, so that no finaliser calls pdfium
later from another thread. Re-entrant: a holder may call another locked helper.
"""

from __future__ import annotations

import threading

PDFIUM_LOCK = threading.RLock()
