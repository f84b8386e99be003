"""Word (.docx) and HTML files, converted to Markdown and then split like Markdown: headings become the
section path ("章节 > 小节"), tables stay as text rows, images are dropped (with a note).

DOCX goes through mammoth (Word styles -> semantic HTML: "Heading 1" -> <h1>, tables -> <table>), HTML
is used as it is; both then go through markdownify. Document HTML is never rendered anywhere: it is
parsed to text here.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from ingest.loaders.base import OLE_MAGIC, IngestError, LoadedDocument
from ingest.loaders.markdown import split_markdown

# A .docx is a zip: one that expands far beyond what a document holds is refused before it is unpacked (a "zip
# bomb" of 1 MB can expand to gigabytes and take the server's memory with it). A 900-page Word manual with
# images expands to about 100 MB, its document.xml to about 20 MB; the XML is parsed in memory (a 300 MB one kept
# the ingest busy for minutes in bench/fuzz_inputs.py), so one XML part has its own, smaller limit.
MAX_DOCX_EXPANDED_MB = 512
MAX_DOCX_XML_MB = 64
_DROP_TAGS = ("script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas", "head", "nav",
              "form", "button", "select", "input", "textarea")


def html_to_markdown(html: str) -> tuple[str, int]:
    """(Markdown, number of images dropped). Scripts, styles and forms go; links keep their text."""
    from bs4 import BeautifulSoup
    from markdownify import markdownify

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    images = soup.find_all("img")
    for img in images:
        img.decompose()
    body = soup.body or soup
    md = markdownify(str(body), heading_style="ATX", bullets="-", strip=["a"], escape_asterisks=False,
                     escape_underscores=False, escape_misc=False)
    md = re.sub(r"\n{3,}", "\n\n", md).strip() + "\n"
    return md, len(images)


def _loaded(md: str, images: int, kind: str, title: str | None = None) -> LoadedDocument:
    if not md.strip():
        raise IngestError("no text found (the file is empty or holds only images)")
    segments = split_markdown(md)
    title = title or next((s.section.split(" > ")[0] for s in segments if s.section), None)
    warnings = [f"{images} image(s) ignored: only text is searched"] if images else []
    return LoadedDocument(segments, file_type=kind, title=title, warnings=warnings)


def load_docx(path: Path) -> LoadedDocument:
    import mammoth

    with open(path, "rb") as f:
        head = f.read(8)
    if head == OLE_MAGIC:
        raise IngestError("password-protected, or an old Word .doc saved as .docx: remove the password "
                          "(or save it as .docx in Word) and add it again")
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise IngestError("not a Word .docx file (it is not a valid .docx archive; corrupt or another format)") from exc
    expanded = sum(i.file_size for i in infos)
    xml = max((i for i in infos if i.filename.endswith(".xml")), key=lambda i: i.file_size, default=None)
    if expanded > MAX_DOCX_EXPANDED_MB << 20:
        raise IngestError(f"refused: this .docx would expand to {expanded / (1 << 20):,.0f} MB when unpacked (more "
                          f"than {MAX_DOCX_EXPANDED_MB} MB; a damaged or malicious file, a 'zip bomb')")
    if xml is not None and xml.file_size > MAX_DOCX_XML_MB << 20:
        raise IngestError(f"refused: its {xml.filename} would expand to {xml.file_size / (1 << 20):,.0f} MB (more than "
                          f"{MAX_DOCX_XML_MB} MB of text markup; a damaged or malicious file, a 'zip bomb')")
    try:
        with open(path, "rb") as f:
            result = mammoth.convert_to_html(f)
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IngestError(f"not a readable Word .docx file (corrupt?): {exc}") from exc
    md, images = html_to_markdown(result.value)
    return _loaded(md, images, "docx")


def load_html(path: Path) -> LoadedDocument:
    from bs4 import BeautifulSoup

    from ingest.loaders.text import decode_bytes

    data = path.read_bytes()
    declared = re.search(rb"""<meta[^>]+charset=["']?([\w-]+)""", data[:4096], re.IGNORECASE)
    text = None
    if declared:
        try:
            text = data.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            text = None
    if text is None:
        text, _ = decode_bytes(data)
    soup_title = BeautifulSoup(text, "html.parser").title
    md, images = html_to_markdown(text)
    title = soup_title.get_text(" ", strip=True) if soup_title else None
    return _loaded(md, images, "html", title or None)
