"""Is a question answerable from what retrieval found? The evidence each retrieved block gives, and the gate
that keeps a block for the answer prompt or, when none is kept, refuses without a model call.

The signals and the thresholds were chosen on public dev data with `ragkb eval gate` (answerable questions
of CMRC 2018, RGB, SciFact and two Chinese TeX manuals against out-of-scope and negatives-only questions);
the README gives the numbers. The gate is meant to refuse only when the evidence is clearly absent: an
answerable question must reach the model, so its thresholds are set for <= 2% false refusals.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rag.lexical import tokenize
from rag.text import query_language

# Words that say what is asked, not what it is about (after rag.lexical's stop words): a block that answers
# "X 的名字是什么 / X 提供什么" rarely repeats 名字 or 提供, and one that answers "要编译几次才能生效" says
# "编译两次", so they must not count against it.
QUESTION_WORDS = frozenset(tokenize(
    "名字 名称 叫 叫做 称为 称作 提供 作用 用途 用处 功能 含义 意思 区别 不同 方法 方式 办法 步骤 命令 "
    "应该 需要 可以 能够 能 能否 会 该 要求 包括 包含 属于 哪 哪种 哪一个 哪家 第几 几次 几个 几种 几遍 次 多大 多长 多高 多远 "
    "时候 一些 相关 "
    "name named called call provide provides use used using purpose mean means meaning way ways step steps "
    "need needs should would could might must happen kind type list give explain describe tell difference "
    "many much often")) | {
    "提供", "名字", "叫", "用", "哪"}

def topic_words(question: str) -> set[str]:
    """The question's topic words: its BM25 tokens without the question words (all of them when nothing
    else is left)."""
    tokens = set(tokenize(question))
    return (tokens - QUESTION_WORDS) or tokens


# A command (\\href), or a Latin-script word with its inner digits and joiners (Python, ctex.sty, C++, iPhone14)
_NAME = re.compile(r"\\[A-Za-z@]+|[A-Za-z][A-Za-z0-9]*(?:[.+#\-][A-Za-z0-9+#]+)*")
_PART = re.compile(r"[A-Za-z][A-Za-z0-9]*|[0-9]+[A-Za-z][A-Za-z0-9]*")


def names(question: str) -> list[str]:
    """The words of a question that name a thing, by their script and shape alone: a command (\\graphicspath),
    and in a question written in Chinese, a Latin-script word of three letters or more (Python, Excel, hyperref).
    English questions name things with ordinary words too: measured on SciFact, taking their capitalised
    abbreviations for names refused 8% of answerable claims (VSMCs, OmpF: their abstracts spell them otherwise)."""
    zh = query_language(question) == "zh"
    out = []
    for m in _NAME.finditer(question):
        w = m.group()
        if w.startswith("\\") or (zh and sum(c.isalpha() for c in w) >= 3):
            out.append(w)
    return list(dict.fromkeys(out))


def unknown_names(question: str, index, texts, limit: int = 200) -> list[str]:  # noqa: ANN001
    """The question's names (`names`) that the knowledge base never mentions: no chunk holds any word of the
    name as a word of its own. Asked how to read an Excel file with Python, a LaTeX manual has nothing to say,
    however many of the question's other words (读取, 文件) it shares.

    `index` is the knowledge base's rag.lexical.BM25Index (its stemmed words find the candidate chunks), `texts`
    maps chunk ids to their text (the words themselves decide: lshort's "excellent" stems to "excel" and is not
    Excel). A word in more than `limit` chunks counts as mentioned."""
    out = []
    for name in names(question):
        parts = [p.lower() for p in _PART.findall(name)]
        if parts and not any(_mentioned(p, index, texts, limit) for p in parts):
            out.append(name)
    return out


def _mentioned(word: str, index, texts, limit: int) -> bool:  # noqa: ANN001
    stems = tokenize(word)
    if not stems:  # a stop word ("for", "the") names nothing
        return True
    ids = index.chunks_with(stems[0], limit)
    if ids is None:
        return True
    if not ids:
        return False
    pattern = re.compile(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])")
    return any(pattern.search(unicodedata.normalize("NFKC", t).lower()) for t in texts(ids).values())


@dataclass
class Evidence:
    """What one retrieved block shows for the question (the best over the question's formulations)."""

    coverage: float  # IDF-weighted share of the question's topic words found in the block (0..1)
    dense: float | None  # cosine similarity, when it counts (the embedder serves the pair of languages)
    min_dense: float = 1.0  # the similarity from which it is evidence, for this model and pair of languages


def language_pair(question: str, block: str) -> str:
    """'zh' or 'en' when question and block are in that language, 'cross' when they differ (the dense thresholds
    are per pair: rag.embeddings.DENSE_EVIDENCE)."""
    q = query_language(question)
    return q if query_language(block) == q else "cross"


def block_evidence(index, word_sets: list[set[str]], block_tokens: list[str], dense_score: float | None,  # noqa: ANN001
                   min_dense: float | None) -> Evidence:
    """`index` is the knowledge base's BM25 index (for IDF), `word_sets` the topic words of each formulation
    of the question (`topic_words`), `block_tokens` the block's BM25 tokens; `min_dense` None: similarity does
    not count for this block."""
    best = max((index.words_coverage(words, block_tokens) for words in word_sets), default=0.0)
    if min_dense is None or dense_score is None:
        return Evidence(best, None)
    return Evidence(best, dense_score, min_dense)


def explain(ev: Evidence, min_coverage: float) -> str:
    """Why the gate keeps or drops a block, in numbers (the retrieval test shows it)."""
    cov = f"{ev.coverage:.0%} of the question's topic words {'>=' if ev.coverage >= min_coverage else '<'} {min_coverage:.0%}"
    if ev.dense is None:
        dense = "dense similarity not counted (not evidence with this embedding model for these languages)"
    else:
        dense = f"dense similarity {ev.dense:.2f} {'>=' if ev.dense >= ev.min_dense else '<'} {ev.min_dense:.2f}"
    return f"{cov}; {dense}"


def passes(ev: Evidence, min_coverage: float) -> bool:
    """The gate for one block: enough of the question's topic words, or close in embedding space."""
    return ev.coverage >= min_coverage or (ev.dense is not None and ev.dense >= ev.min_dense)


def prompt_picks(kept: list[bool], k: int) -> list[int]:
    """Positions (in retrieval order) of the blocks the model sees: none when no block passes the gate (a
    refusal without a model call); otherwise the best-ranked block, even when it fails the gate, then the
    blocks that pass, at most k. The best-ranked block may name its subject by other words than the question
    (lshort's cross-reference section says \\label, not 标签, and lost the prompt to a PDF-bookmark block that
    repeats 标签 and 设置); on the manual dev sets keeping it answered one more question and lost none."""
    if not any(kept):
        return []
    return ([0] + [i for i, ok in enumerate(kept) if ok and i > 0])[:k]
