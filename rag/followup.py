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
