"""Lexical (BM25) leg: a tokenizer that handles Chinese and English, and a persisted bm25s index.

Chinese runs are cut by jieba (search mode, so 中华人民共和国 also yields 中华, 人民, 共和国);
other runs are lower-cased, stop-word filtered and Snowball-stemmed. The same function tokenizes
documents and queries, which is what makes mixed 中文 + English queries work.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

_CJK_RUN = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]+)")
_WORD = re.compile(r"[^\W_]+(?:[.'][^\W_]+)*", re.UNICODE)

_EN_STOPWORDS = frozenset(
    """a an and are as at be but by for from has have he her his i if in into is it its of on or our
    she that the their them then there these they this those to was we were what when where which who
    will with you your not no can do does did so than too very just about over also been being had
    how all any both each few more most other some such only own same s t don should now""".split()
)
# Function words and particles that carry no topic in Chinese retrieval.
_ZH_STOPWORDS = frozenset(
    "的 了 和 是 在 就 都 而 及 与 着 或 一个 没有 我们 你们 他们 它们 这 那 之 其 于 把 被 让 给 也 很 "
    "吗 呢 吧 啊 呀 么 什么 哪些 哪个 怎么 如何 为什么 是否 以及 并 且 但 等 中 对 从 向 由 "
    "有 要 几 多少 哪里 哪儿 谁 几天 多久 什么时候 怎样 怎么样 请问 一下 它 他 她 这个 那个 这些 那些".split()
)

_jieba_lock = threading.Lock()


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    with _jieba_lock:
        jieba.initialize()
    return jieba


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Tokens for BM25: jieba words for Chinese runs, stemmed lower-case words for the rest."""
    tokens: list[str] = []
    stem = _stemmer().stemWord
    for i, part in enumerate(_CJK_RUN.split(text)):
        if not part:
            continue
        if i % 2 == 1:  # a CJK run
            for w in _jieba().cut_for_search(part):
                if w and w not in _ZH_STOPWORDS:
                    tokens.append(w)
        else:
            for w in _WORD.findall(part.lower()):
                if w in _EN_STOPWORDS:
                    continue
                # Non-Latin, non-CJK words (Cyrillic, Greek...) are kept as they are.
                tokens.append(stem(w) if w.isascii() else w)
    return tokens


class BM25Index:
    """A bm25s index over chunk ids, saved in a directory with a stamp saying what it was built from.

    The stamp lets a reader detect an index that no longer matches the registry (for example after
    a crash between the registry commit and the index write) and rebuild it once.
    """

    def __init__(self, directory: Path, retriever, ids: list[str], stamp: str):  # noqa: ANN001
        self.directory = directory
        self._retriever = retriever
        self.ids = ids
        self.stamp = stamp
        self._pos = {cid: i for i, cid in enumerate(ids)}

    # -- building -------------------------------------------------------------------------
    @classmethod
    def build(cls, directory: Path, ids: list[str], token_lists: list[list[str]], stamp: str,
              k1: float = 1.5, b: float = 0.75) -> "BM25Index":
        import bm25s

        retriever = None
        if ids:
            retriever = bm25s.BM25(k1=k1, b=b)
            # bm25s cannot index an empty document; a placeholder token keeps positions aligned.
            retriever.index([t or ["\u0000"] for t in token_lists], show_progress=False)
        index = cls(directory, retriever, ids, stamp)
        index.save()
        return index

    def save(self) -> None:
        """Write to a fresh sibling directory, then swap it in, so readers never see half an index."""
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.directory.with_name(self.directory.name + f".tmp{os.getpid()}")
        if tmp.exists():
            _rmtree(tmp)
        tmp.mkdir()
        if self._retriever is not None:
            self._retriever.save(str(tmp), show_progress=False)
        (tmp / "ids.json").write_text(json.dumps({"stamp": self.stamp, "ids": self.ids}), encoding="utf-8")
        old = self.directory.with_name(self.directory.name + f".old{os.getpid()}")
        if self.directory.exists():
            os.replace(self.directory, old)
        os.replace(tmp, self.directory)
        if old.exists():
            _rmtree(old)

    @classmethod
    def load(cls, directory: Path) -> "BM25Index | None":
        meta = directory / "ids.json"
        if not meta.exists():
            return None
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            retriever = None
            if data["ids"]:
                import bm25s

                retriever = bm25s.BM25.load(str(directory), show_progress=False)
            return cls(directory, retriever, data["ids"], data["stamp"])
        except Exception:  # a damaged index is rebuilt from the registry
            return None

    # -- querying -------------------------------------------------------------------------
    def _postings(self, token: str) -> tuple[int, int]:
        """Where the token's chunks lie in the index's sparse matrix (start, end); (0, 0) when it is in none."""
        t = self._retriever.vocab_dict.get(token) if self._retriever is not None else None
        if t is None:
            return 0, 0
        indptr = self._retriever.scores["indptr"]
        return int(indptr[t]), int(indptr[t + 1])

    def document_frequency(self, token: str) -> int:
        """How many indexed chunks hold the token."""
        start, end = self._postings(token)
        return end - start

    def chunks_with(self, token: str, limit: int) -> list[str] | None:
        """Ids of the chunks that hold the token, or None when more than `limit` do."""
        start, end = self._postings(token)
        if end - start > limit:
            return None
        return [self.ids[int(i)] for i in self._retriever.scores["indices"][start:end]] if end > start else []

    def idf(self, token: str) -> float:
        """Inverse document frequency over the indexed chunks; an unseen word gets the highest value."""
        n = len(self.ids)
        df = self.document_frequency(token)
        return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))

    def coverage(self, query: str, chunk_tokens: list[str] | set[str]) -> float:
        """IDF-weighted share of the query's words that occur in a chunk (0..1): how much of the
        question the chunk is about, comparable across knowledge bases unlike raw BM25 scores."""
        return self.words_coverage(set(tokenize(query)), chunk_tokens)

    def words_coverage(self, words: set[str], chunk_tokens: list[str] | set[str]) -> float:
        """IDF-weighted share of `words` (BM25 tokens) that occur in a chunk (0..1)."""
        if not words:
            return 0.0
        have = set(chunk_tokens)
        weights = {t: self.idf(t) for t in words}
        total = sum(weights.values())
        return sum(w for t, w in weights.items() if t in have) / total if total else 0.0

    def search(self, query: str, k: int, allowed_ids: set[str] | None = None) -> list[tuple[str, float]]:
        """Top-k (chunk id, bm25 score) with a positive score, restricted to `allowed_ids` if given."""
        if self._retriever is None or k <= 0:
            return []
        tokens = [t for t in tokenize(query) if t in self._retriever.vocab_dict]
        if not tokens:
            return []
        scores = self._retriever.get_scores(tokens)
        if allowed_ids is not None:
            mask = np.zeros(len(self.ids), dtype=bool)
            for cid in allowed_ids:
                pos = self._pos.get(cid)
                if pos is not None:
                    mask[pos] = True
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
