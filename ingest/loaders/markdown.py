"""Markdown: split on headers first and keep the header path ("安装 > 依赖") with each segment."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.loaders.base import LoadedDocument, Segment
from ingest.loaders.text import read_text

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def _clean_title(title: str) -> str:
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # links -> their text
    return re.sub(r"[*_`]+", "", title).strip()


def split_markdown(text: str) -> list[Segment]:
    """Segments between headers; code fences are respected (a '#' comment in code is not a header)."""
    lines = text.splitlines(keepends=True)
    heads: list[tuple[int, int, str, int]] = []  # (offset, level, title, offset after the header)
    offset = 0
    fence: str | None = None
    offsets = []
    for line in lines:
        offsets.append(offset)
        offset += len(line)
    for i, line in enumerate(lines):
        stripped = line.rstrip("\n")
        m = _FENCE.match(stripped)
        if m:
            marker = m.group(1)
            if fence is None:
                fence = marker[0] * 3
            elif marker.startswith(fence):
                fence = None
            continue
        if fence is not None:
            continue
        m = _ATX.match(stripped)
        if m and m.group(2).strip():
            heads.append((offsets[i], len(m.group(1)), _clean_title(m.group(2)), offsets[i] + len(line)))
            continue
        if i > 0 and _SETEXT.match(stripped) and lines[i - 1].strip() and not _ATX.match(lines[i - 1]):
            prev = lines[i - 1].strip()
            if heads and heads[-1][0] == offsets[i - 1]:
                continue
            heads.append((offsets[i - 1], 1 if stripped.strip()[0] == "=" else 2, _clean_title(prev),
                          offsets[i] + len(line)))

    segments: list[Segment] = []
    bounds = [h[0] for h in heads] + [len(text)]
    if heads and heads[0][0] > 0 and text[: heads[0][0]].strip():
        segments.append(Segment(text=text[: heads[0][0]], offset=0))
    elif not heads and text.strip():
        segments.append(Segment(text=text, offset=0))
    stack: list[tuple[int, str]] = []
    for n, (start, level, title, content_start) in enumerate(heads):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        body = text[start: bounds[n + 1]]
        if text[content_start: bounds[n + 1]].strip():  # a header with no body is no chunk
            segments.append(Segment(text=body, section=" > ".join(t for _, t in stack), offset=start))
    return segments


def load_markdown(path: Path) -> LoadedDocument:
    text = read_text(path)
    segments = split_markdown(text)
    title = next((s.section for s in segments if s.section and " > " not in s.section), None)
    return LoadedDocument(segments, file_type="md", title=title)
