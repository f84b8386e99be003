"""Does a follow-up question need the conversation to be understood?

Rewriting a follow-up ("它支持哪些格式？") into a standalone question costs a model call: 5-38 s on a
2-core CPU. Most questions asked after the first are new, complete questions; they must not pay for it,
and must not be glued to the previous question either. A question needs the conversation when it refers
back (pronouns, demonstratives, "what about ..."), or has too little content of its own to stand alone.
"""

from __future__ import annotations

import re

from rag.text import HAN

# Words that point back to something said earlier. Chinese is matched on jieba words, so 其 in 其他
# or 该 in 应该 does not count.
_ZH_BACK = frozenset("它 它们 他 她 他们 她们 这个 那个 这些 那些 该 此 其 上述 前者 后者 这种 那种 这样 那样 "
                     "这里 那里 同样 这 那 此外 还有 另外 以上 刚才 之前 上面".split())
_EN_BACK = re.compile(
    # "those never cited", "these with a date": a relative clause says which, nothing points back
    r"\b(?:it|its|it's|they|them|their|theirs|he|she|"
    r"(?:these|those)(?!\s+(?:who|which|that|whose|where|never|not|without|with|in|of|from|\w+ed)\b)|"
    r"him|her|his|this one|that one|the same|"
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
    if _names_its_subject(q):  # "What is xelatex?", "什么是 BibTeX？": one word, but a subject of its own
        return False
    return len(set(tokenize(q)) - _ASKING) < 2  # "英文呢？", "why?", "超过了怎么办？": too little to stand alone


# "What is X?" / "What does X do?" / "X 是什么？" / "什么是 X？": a definition question about a named thing.
_EN_DEFINE = re.compile(r"^\s*(?:what|who)\s+(?:is|are|was|were)\s+(?!an?\b|the\b)(?P<t>[^\s?]+)\s*\??\s*$|"
                        r"^\s*what\s+(?:does|do)\s+(?P<t2>[^\s?]+)\s+(?:do|mean|stand\s+for)\s*\??\s*$", re.IGNORECASE)
_EN_POINTERS = frozenset("it its this that these those they them he she him her one".split())
_ZH_DEFINE = re.compile(r"^\s*(?:什么是|何为|何谓)\s*(?P<t>[^？?]+?)\s*[？?]?\s*$|"
                        r"^\s*(?P<t2>[^？?]+?)\s*(?:是什么|是啥|是做什么的|是干什么的|是干嘛的|有什么用|是什么意思)\s*[？?]?\s*$")


def _names_its_subject(question: str) -> bool:
    """A definition question whose subject is a name: in English any single word without an article
    ("What is the price?" asks about something said before; "What is xelatex?" does not); in Chinese a
    term written in Latin letters, digits or a command (区别是什么？ needs the conversation; Docker 是什么？ does not)."""
    if m := _EN_DEFINE.match(question):
        return (m.group("t") or m.group("t2")).lower() not in _EN_POINTERS
    m = _ZH_DEFINE.match(question)
    term = (m.group("t") or m.group("t2")) if m else ""
    return bool(term) and re.fullmatch(r"[\\A-Za-z0-9_.+\-]+(?:\s+[\\A-Za-z0-9_.+\-]+)?", term.strip()) is not None


# What a question asks with, not what it is about: dropped when the question becomes a topic.
_ZH_QUESTION_WORDS = frozenset("什么 哪些 哪个 哪里 哪 怎么 怎样 怎么样 如何 为什么 为何 多少 几 吗 呢 吧 是 请问 "
                               "请 能否 可以 是否 有没有 是不是 要 需要 我 我们 你 哪条 哪种 哪款 哪位 哪家 哪一个 哪一种".split())
# Measure words after 哪/几 ("哪 种 字体" as jieba cuts it): part of the asking, not of the topic.
_MEASURE = frozenset("个 种 条 款 位 家 项 类 样 次 天 件 本 张".split())
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
        cut = list(_jieba().cut(q))
        words = [w for i, w in enumerate(cut) if w not in _ZH_QUESTION_WORDS and w not in "？?，,。"
                 and not (w in _MEASURE and i > 0 and cut[i - 1] in ("哪", "几"))]
        return " ".join("".join(words).split())
    if (m := _EN_DEFINE.match(question)) and m.group("t2"):  # "What does \newcommand do?" -> "\newcommand"
        return m.group("t2")
    return _EN_QUESTION_LEAD.sub("", q, count=1).strip()


def substitute_referent(question: str, previous: str) -> str:
    """A follow-up made standalone without the model: the word that points back (它/这个/其/it/that...)
    replaced by the previous question's topic; without such a word the topic goes in front
    ("英文呢？" after "怎么设置中文字体？" -> "设置中文字体 英文呢？"). Never both questions pasted together."""
    from rag.lexical import _CJK_RUN, _jieba

    topic = question_topic(previous)
    if not topic:
        return question
    parallel = substitute_parallel(question, previous)
    if parallel:
        return parallel
    if _CJK_RUN.search(question):
        words = list(_jieba().cut(question))
        for i, w in enumerate(words):
            if w in _ZH_BACK and not (i == 0 and w in _ZH_OPENERS):  # "那列出…" opens, it does not point back
                return "".join(words[:i]) + topic + "".join(words[i + 1:])
    else:
        m = _EN_REFERENT.search(question)
        if m:
            sub = topic + ("'s" if m.group(0).lower() == "its" else "")
            return question[:m.start()] + sub + question[m.end():]
    return f"{topic} {question.strip()}"


_FRAGMENT_LEAD = re.compile(r"^\s*(?:那么|那|对于|对|还有|另外|换成|如果是|要是|而|和|and|or|but|so|then|what about|how about|"
                            r"what if)\s*", re.IGNORECASE)
_FRAGMENT_TAIL = re.compile(r"\s*(?:的话|呢|吗|呀|啊)?\s*[?？!！。.]*\s*$")
_WORD = re.compile(r"\w", re.UNICODE)
_PARTICLES = frozenset("的 时 了 是 中 里 上 下 吗 呢 和 与 及 或 and or in on at of with to for from by".split())
_EN_ASKING = frozenset("what which who whom whose how why when where do does did is are can could should".split())


def _words(text: str) -> list[str]:
    """jieba words of `text` (Latin words and spaces come out as their own tokens)."""
    from rag.lexical import _jieba

    return list(_jieba().cut(text))


def substitute_parallel(question: str, previous: str) -> str | None:
    """An elliptic follow-up asks the previous question again about something else: "那用 LuaLaTeX 编译呢？"
    after "使用 XeLaTeX 编译时用哪个宏包？" -> "用 LuaLaTeX 编译时用哪个宏包？"; "What about on Windows?" after
    "How do I install it on Linux?" -> "How do I install it on Windows?". The new words take the place of the
    words next to a word both questions share (the anchor). None when there is no such anchor, or when the
    follow-up is a question of its own."""
    fragment = _FRAGMENT_TAIL.sub("", _FRAGMENT_LEAD.sub("", question.strip(), count=1))
    if not fragment or fragment == question.strip():
        return None
    raw = _words(fragment)
    new = [i for i, w in enumerate(raw) if _WORD.search(w)]  # positions of real words in `raw`
    if any(_asks(raw[i]) for i in new):
        return None  # "那列出参考文献用哪个命令？" asks a question of its own
    if not 2 <= len(new) <= 4:
        return _parallel_by_characters(fragment, previous)
    old = _words(previous)
    content = [i for i, w in enumerate(old) if _WORD.search(w)]
    known = {w.lower() for w in old}
    fresh = [raw[i].lower() not in known for i in new]
    anchors = sorted((a for a in range(len(new)) if not fresh[a]), key=lambda a: -len(raw[new[a]]))  # 编译 before 用
    for a in anchors:
        for step in (-1, 1):  # the new words right before the anchor, else right after it
            b, span = a + step, []
            while 0 <= b < len(new) and fresh[b]:
                span.append(b)
                b += step
            if not span:
                continue
            lo, hi = min(span), max(span)
            text = "".join(raw[new[lo]:new[hi] + 1])
            for k, pos in enumerate(content):
                if old[pos].lower() != raw[new[a]].lower():
                    continue
                if step < 0:  # as many words before the anchor as the follow-up has
                    ks = list(range(k - len(span), k))
                else:  # the words after the anchor, up to the next asking word, particle or punctuation
                    ks = []
                    for x in range(k + 1, len(content)):
                        if _asks(old[content[x]]) or old[content[x]].lower() in _PARTICLES or \
                                (x > k + 1 and content[x] != content[x - 1] + 1 and
                                 not old[content[x - 1] + 1].isspace()):
                            break
                        ks.append(x)
                if not ks or ks[0] < 0 or any(_asks(old[content[x]]) for x in ks):
                    continue
                first, last = content[ks[0]], content[ks[-1]]
                return "".join(old[:first]) + text + "".join(old[last + 1:])
    return _parallel_by_characters(fragment, previous)


_HAN_FRAGMENT = re.compile(r"[\u4e00-\u9fff]{3,8}")


def _all_han(text: str) -> bool:
    return bool(text) and len(HAN.findall(text)) == len(text)


def _parallel_by_characters(fragment: str, previous: str) -> str | None:
    """The same, by characters, for a Chinese fragment that jieba cuts differently from the previous question
    ("有序列表" -> 有 / 序列表, "无序列表" -> 无序 / 列表): the fragment shares its end (or its start), two characters
    or more, with the previous question, and its other characters take the place of as many characters there.
    "那有序列表呢？" after "无序列表用哪个环境？" -> "有序列表用哪个环境？"."""
    if not _HAN_FRAGMENT.fullmatch(fragment):
        return None
    for n in range(len(fragment) - 1, 1, -1):  # the longest shared part first; at least one new character
        head, tail = fragment[:-n], fragment[-n:]  # new characters, then the shared part
        i = previous.find(tail)
        swapped = previous[i - len(head):i] if i >= len(head) else ""
        if _all_han(swapped) and swapped != head:
            return previous[:i - len(head)] + fragment + previous[i + n:]
        shared, rest = fragment[:n], fragment[n:]  # the shared part, then new characters
        j = previous.find(shared)
        swapped = previous[j + n:j + n + len(rest)] if j >= 0 else ""
        if len(swapped) == len(rest) and _all_han(swapped) and swapped != rest:
            return previous[:j] + fragment + previous[j + n + len(rest):]
    return None


def _asks(word: str) -> bool:
    return word in _ZH_QUESTION_WORDS or word.lower() in _EN_ASKING
