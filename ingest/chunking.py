"""Chunking that keeps Chinese and English sentences whole and remembers where each chunk came from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ingest.loaders.base import Segment

# Sentence ends first, Chinese punctuation included; keep_separator="end" leaves "。" with its
# sentence instead of moving it to the start of the next chunk.
SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", "! ", "? ", ". ", "，", ", ", " ", ""]


@dataclass
class Chunk:
    idx: int
    text: str
    page: int | None
    section: str | None
    char_offset: int


@lru_cache(maxsize=8)
def _splitter(chunk_size: int, chunk_overlap: int):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size, chunk_overlap=chunk_overlap, keep_separator="end",
        separators=SEPARATORS, add_start_index=True, strip_whitespace=True,
    )


def chunk_segments(segments: list[Segment], chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    splitter = _splitter(chunk_size, chunk_overlap)
    chunks: list[Chunk] = []
    for seg in segments:
        for doc in splitter.create_documents([seg.text]):
            text = doc.page_content.strip()
            if not text:
                continue
            start = doc.metadata.get("start_index", -1)
            start = 0 if start is None or start < 0 else start
            chunks.append(Chunk(len(chunks), text, seg.page, seg.section, seg.offset + start))
    return chunks
