"""Does a follow-up question need the conversation to be understood?

Rewriting a follow-up ("它支持哪些格式？") into a standalone question costs a model call: 5-38 s on a
2-core CPU. Most questions asked after the first are new, complete questions; they must not pay for it,
and must not be glued to the previous question either. A question needs the conversation when it refers
back (pronouns, demonstratives, "what about ..."), or has too little content of its own to stand alone.
"""

from __future__ import annotations

import re

# Words that point back to something said earlier. Chinese is matched on jieba words, so 其 in 其他
# or 该 in 应该 does not count.
_ZH_BACK = frozenset("它 它们 他 她 他们 她们 这个 那个 这些 那些 该 此 其 上述 前者 后者 这种 那种 这样 那样 "
                     "这里 那里 同样 这 那 此外 还有 另外 以上 刚才 之前 上面".split())
_EN_BACK = re.compile(
    r"\b(?:it|its|it's|they|them|their|theirs|these|those|he|she|him|her|his|this one|that one|the same|"
    r"the above|above|previous|earlier|mentioned|instead|else|too|also|either|"
    r"about (?:it|that|this|them))\b", re.IGNORECASE)
_EN_OPENERS = re.compile(r"^\s*(?:and|or|but|so|then|what about|how about|what if|why not|same)\b", re.IGNORECASE)
_ZH_OPENERS = ("那", "那么", "还有", "另外", "而", "和", "以及", "如果是", "换成", "要是")
# Asking words that carry no topic: "超过了怎么办？" has one content word (超过), so it cannot stand alone.
_ASKING = frozenset("怎么办 怎么样 怎样 如何 可以 能否 能不能 会不会 是不是 有没有 需要 应该 办 做 行 呢 吗 "
                    "what how why which when where who whom whose doe do can could would should is are was".split())
_EN_THIS = re.compile(r"\b(?:this|that)\s*[?.!]?\s*$|\b(?:this|that)\s+(?:is|does|do|means|one|way)\b", re.IGNORECASE)


def needs_context(question: str) -> bool:
    """True when `question` refers back to the conversation or cannot stand alone."""
    from rag.lexical import _CJK_RUN, _jieba, tokenize

    q = question.strip()
    if not q:
        return False
    if _EN_BACK.search(q) or _EN_OPENERS.search(q) or _EN_THIS.search(q) or q.startswith(_ZH_OPENERS):
        return True
    for i, part in enumerate(_CJK_RUN.split(q)):
        if i % 2 == 1 and any(w in _ZH_BACK for w in _jieba().cut(part)):
            return True
    return len(set(tokenize(q)) - _ASKING) < 2  # "英文呢？", "why?", "超过了怎么办？": too little to stand alone


# What a question asks with, not what it is about: dropped when the question becomes a topic.
_ZH_QUESTION_WORDS = frozenset("什么 哪些 哪个 哪里 哪 怎么 怎样 怎么样 如何 为什么 为何 多少 几 吗 呢 吧 是 请问 "
                               "请 能否 可以 是否 有没有 是不是 要 需要 我 我们 你".split())
_EN_QUESTION_LEAD = re.compile(
    r"^\s*(?:(?:how|what|which|who|where|when|why)(?:\s+(?:much|many|long|often|kind of|type of))?"
    r"(?:\s+(?:do|does|did|is|are|was|were|can|could|should|would|will|to))?(?:\s+(?:i|we|you|one))?"
    r"|(?:can|could|should|do|does|is|are)\s+(?:i|we|you|one|there))\b\s*", re.IGNORECASE)
_EN_REFERENT = re.compile(r"\b(?:its|it|they|them|this|that|these|those)\b", re.IGNORECASE)


def question_topic(question: str) -> str:
    """What a question is about: "如何在文档中生成目录？" -> "在文档中生成目录",
    "How do I generate a table of contents?" -> "generate a table of contents"."""
    from rag.lexical import _CJK_RUN, _jieba

    q = question.strip().rstrip("?？!！。. ")
    if _CJK_RUN.search(q):
        words = [w for w in _jieba().cut(q) if w not in _ZH_QUESTION_WORDS and w not in "？?，,。"]
        return " ".join("".join(words).split())
    return _EN_QUESTION_LEAD.sub("", q, count=1).strip()


def substitute_referent(question: str, previous: str) -> str:
    """A follow-up made standalone without the model: the word that points back (它/这个/其/it/that...)
    replaced by the previous question's topic; without such a word the topic goes in front
    ("英文呢？" after "怎么设置中文字体？" -> "设置中文字体 英文呢？"). Never both questions pasted together."""
    from rag.lexical import _CJK_RUN, _jieba

    topic = question_topic(previous)
    if not topic:
        return question
    if _CJK_RUN.search(question):
        words = list(_jieba().cut(question))
        for i, w in enumerate(words):
            if w in _ZH_BACK:
                return "".join(words[:i]) + topic + "".join(words[i + 1:])
    else:
        m = _EN_REFERENT.search(question)
        if m:
            sub = topic + ("'s" if m.group(0).lower() == "its" else "")
            return question[:m.start()] + sub + question[m.end():]
    return f"{topic} {question.strip()}"
