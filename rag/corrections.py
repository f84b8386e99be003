"""Finding the user corrections that apply to a question.

A correction is the right answer a user wrote for a question. It applies to the same question and
to close rephrasings: the same key words (IDF-free token F1 over jieba/Snowball tokens, so it works
for Chinese, English and mixed text), or, for languages the embedding model handles, a very close
embedding. Thresholds are strict on purpose: a correction shown for a different question would be
worse than none.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from rag.lexical import tokenize

LEXICAL_MATCH = 0.6
DENSE_MATCH = 0.85
CORRECTION_FILENAME = "user correction"


@dataclass
class CorrectionMatch:
    id: str
    question: str
    answer: str
    score: float


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(c for c in text if c.isalnum())


def token_f1(a: str, b: str) -> float:
    ta, tb = set(tokenize(a)), set(tokenize(b))
    if not ta or not tb:
        return 0.0
    common = len(ta & tb)
    if not common:
        return 0.0
    p, r = common / len(tb), common / len(ta)
    return 2 * p * r / (p + r)


def match_corrections(questions: list[str], corrections: list, embed=None, limit: int = 2) -> list[CorrectionMatch]:  # noqa: ANN001
    """Corrections (rows with id/question/answer) that answer one of `questions`, best first.
    `embed`, when given, maps a list of texts to vectors (normalised) for the dense comparison."""
    questions = [q for q in questions if q and q.strip()]
    if not corrections or not questions:
        return []
    scores: dict[str, float] = {}
    for c in corrections:
        best = 0.0
        for q in questions:
            if _normal(q) == _normal(c.question):
                best = 1.0
                break
            f1 = token_f1(q, c.question)
            if f1 >= LEXICAL_MATCH:
                best = max(best, f1)
        scores[c.id] = best
    if embed is not None:
        vecs = embed(questions + [c.question for c in corrections])
        qv, cv = vecs[: len(questions)], vecs[len(questions):]
        for c, v in zip(corrections, cv):
            sim = max(sum(x * y for x, y in zip(q, v)) for q in qv)
            if sim >= DENSE_MATCH:
                scores[c.id] = max(scores[c.id], sim)
    found = [CorrectionMatch(c.id, c.question, c.answer, scores[c.id]) for c in corrections if scores[c.id] > 0]
    found.sort(key=lambda m: -m.score)
    return found[:limit]
