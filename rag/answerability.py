"""Is a question answerable from what retrieval found? The evidence each retrieved block gives, and the gate
that keeps a block for the answer prompt or, when none is kept, refuses without a model call.

The signals and the thresholds were chosen on public dev data with `ragkb eval gate` (answerable questions
of CMRC 2018, RGB, SciFact and two Chinese TeX manuals against out-of-scope and negatives-only questions);
the README gives the numbers. The gate is meant to refuse only when the evidence is clearly absent: an
answerable question must reach the model, so its thresholds are set for <= 2% false refusals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.lexical import tokenize

# Words that say what is asked, not what it is about (after rag.lexical's stop words): a block that answers
# "X 的名字是什么 / X 提供什么" rarely repeats 名字 or 提供, so they must not count against it.
QUESTION_WORDS = frozenset(tokenize(
    "名字 名称 叫 叫做 称为 称作 提供 作用 用途 用处 功能 含义 意思 区别 不同 方法 方式 办法 步骤 命令 "
    "应该 需要 可以 能够 能 会 该 要求 包括 包含 属于 哪 哪种 哪一个 哪家 第几 多大 多长 多高 多远 一些 相关 "
    "name named called call provide provides use used using purpose mean means meaning way ways step steps "
    "need needs should would could might must happen kind type list give explain describe tell difference")) | {
    "提供", "名字", "叫", "用", "哪"}

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def content_words(question: str) -> list[str]:
    """The question's topic words: its BM25 tokens without the question words."""
    return [t for t in tokenize(question) if t not in QUESTION_WORDS]


def cjk_share(text: str) -> float:
    letters = [c for c in text if c.isalnum()]
    return sum(1 for c in letters if _CJK.match(c)) / len(letters) if letters else 0.0


def cross_language(question: str, texts: list[str]) -> bool:
    """A question in one script about blocks in another (an English question on a Chinese manual): the
    lexical signal cannot see the match and the packaged embedder serves only English, so no signal can
    judge; such a question goes to the model, which reads both."""
    if not texts:
        return False
    q = cjk_share(question)
    blocks = sum(cjk_share(t) for t in texts) / len(texts)
    return (q < 0.2 and blocks > 0.5) or (q > 0.5 and blocks < 0.2)


@dataclass
class Evidence:
    """What one retrieved block shows for the question (the best over the question's formulations)."""

    coverage: float  # IDF-weighted share of the question's topic words found in the block (0..1)
    dense: float | None  # cosine similarity, when the embedder serves the question's language

    def as_dict(self) -> dict:
        return {"coverage": round(self.coverage, 3), "dense": None if self.dense is None else round(self.dense, 3)}


def block_evidence(index, questions: list[str], block_tokens: list[str], dense_score: float | None,  # noqa: ANN001
                   dense_counts: bool) -> Evidence:
    """`index` is the knowledge base's BM25 index (for IDF), `block_tokens` the block's BM25 tokens."""
    have = set(block_tokens)
    best = 0.0
    for q in questions:
        words = set(content_words(q)) or set(tokenize(q))
        weights = {t: index.idf(t) for t in words}
        total = sum(weights.values())
        if total:
            best = max(best, sum(w for t, w in weights.items() if t in have) / total)
    return Evidence(best, dense_score if dense_counts else None)


def passes(ev: Evidence, min_coverage: float, min_dense: float) -> bool:
    """The gate for one block: enough of the question's topic words, or close in embedding space."""
    return ev.coverage >= min_coverage or (ev.dense is not None and ev.dense >= min_dense)
