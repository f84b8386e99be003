"""Citations in a streamed answer: keep [n] that point to a context block, drop the rest.

The filter works on the token stream, holding back only a possible citation until it is complete,
so the answer still streams token by token.
"""

from __future__ import annotations

import re
from collections import Counter

from rag.text import HAN

_CITATION = re.compile(r"\[(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\]")
_OPENERS = {"[": "]", "【": "】"}


class CitationFilter:
    def __init__(self, n_blocks: int):
        self.n_blocks = n_blocks
        self.cited: list[int] = []  # block numbers in order of first citation
        self._pending = ""

    def feed(self, text: str) -> str:
        out = []
        for ch in text:
            if self._pending:
                self._pending += ch
                closer = _OPENERS[self._pending[0]]
                if ch == closer:
                    out.append(self._resolve(self._pending))
                    self._pending = ""
                elif len(self._pending) > 16 or not (ch.isdigit() or ch in " ,，、"):
                    out.append(self._pending)  # not a citation after all
                    self._pending = ""
            elif ch in _OPENERS:
                self._pending = ch
            else:
                out.append(ch)
        return "".join(out)

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return rest

    def _resolve(self, token: str) -> str:
        inner = token[1:-1]
        nums = [int(x) for x in re.split(r"\s*[,，、]\s*", inner.strip()) if x.strip().isdigit()]
        if not nums:
            return token
        valid = [n for n in nums if 1 <= n <= self.n_blocks]
        for n in valid:
            if n not in self.cited:
                self.cited.append(n)
        return "".join(f"[{n}]" for n in valid)


class SourceEchoFilter:
    """Drops a context block's header that the model copied into its answer ("[1] (file: a.txt, page 3) ..."):
    the sources list already says where a block is from. Streams like CitationFilter, holding back only
    text that may be such a header."""

    _LEAD = "(file:"
    _MAX = 400

    def __init__(self):
        self._pending = ""

    def feed(self, text: str) -> str:
        out = []
        for ch in text:
            if not self._pending:
                if ch in "(（":
                    self._pending = ch
                else:
                    out.append(ch)
                continue
            self._pending += ch
            if len(self._pending) <= len(self._LEAD):
                if not self._LEAD.startswith("(" + self._pending[1:].lower()):
                    out.append(self._pending)  # not a header after all
                    self._pending = ""
            elif ch in ")）":
                self._pending = ""  # a whole header: dropped
            elif len(self._pending) > self._MAX or ch == "\n":
                out.append(self._pending)
                self._pending = ""
        return "".join(out)

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return rest


class BlankRunGuard:
    """Ends a reply that has turned into blank space. The small model sometimes writes "[1]" and then only
    spaces until its token limit: 11 s of nothing for one lshort dev question on this machine. A run of
    `limit` blank characters (code indentation is far shorter) means the answer is over."""

    def __init__(self, limit: int = 48) -> None:
        self.limit = limit
        self.run = 0

    def feed(self, text: str) -> bool:
        """True when the reply so far ends in `limit` or more blank characters."""
        body = text.rstrip()
        self.run = len(text) - len(body) if body else self.run + len(text)
        return self.run >= self.limit


class TrailingBlankHold:
    """Holds back blank space until text follows it, and drops it at the end: a reply that ran into blank space
    ("[1]" and 120 spaces until BlankRunGuard ended it) showed the user the spaces before the quote."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        text = self._held + text
        body = text.rstrip()
        self._held = text[len(body):]
        return body


def cited_numbers(text: str, n_blocks: int) -> list[int]:
    f = CitationFilter(n_blocks)
    f.feed(text)
    f.flush()
    return f.cited


def strip_invalid(text: str, n_blocks: int) -> str:
    f = CitationFilter(n_blocks)
    return f.feed(text) + f.flush()


def attribute(answer: str, blocks: list[str], min_overlap: float = 0.5, question: str = "") -> int | None:
    """The block an uncited answer was evidently taken from (1-based), or None.

    Small local models often answer correctly from a block but forget to cite it. An answer whose
    words mostly occur in one block came from that block; anything less is left uncited. A one-word
    answer ("\\fontsize", "UTF8") that the question does not contain came from the best-ranked block
    (blocks are in rank order) that holds it. The block must hold the answer's checkable facts (commands,
    numbers, paths, quoted terms: rag.claims), and among those the one with most of the answer's own words
    (not the question's) wins: "交叉引用时用 \\label 命令设置标签。" repeats the question's words, which
    lshort's PDF-bookmark block holds more of, but only the cross-reference block says \\label.
    """
    from rag.claims import checkable_facts, holds_facts
    from rag.lexical import tokenize

    words = set(tokenize(answer))
    asked = set(tokenize(question))
    if len(words) == 1 and not words & asked:
        return next((n for n, text in enumerate(blocks, start=1) if words <= set(tokenize(text))), None)
    if len(words) < 2:
        return None
    facts = checkable_facts(answer)
    own = (words - asked) or words
    best, best_key = None, (0.0, 0.0)
    for n, text in enumerate(blocks, start=1):
        tokens = set(tokenize(text))
        share = len(words & tokens) / len(words)
        if share < min_overlap or not holds_facts(text, facts):
            continue
        key = (len(own & tokens) / len(own), share)
        if key > best_key:
            best, best_key = n, key
    return best


SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=\.)\s+|\n\s*\n")
CJK_LINE_BREAK = re.compile(r"(?<=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])\n(?=[\u3400-\u9fff\uff00-\uffef])")
ASKS_NUMBER = re.compile(r"何时|什么时候|哪一?年|哪一?天|几|多少|多久|多长|多大|多高|when\b|how (?:many|much|long|old|far)|what year",
                         re.IGNORECASE)
NUMBER = re.compile(r"\d|[一二三四五六七八九十百千万两]+(?:年|月|日|天|个|人|次|岁|元|倍)")
_ENDINGS = ("。", "！", "？", "!", "?", ".", "；", ";")
_PUNCTUATION = r"[\s,，、.。:：;；!！?？\-–—()（）\"'“”‘’]"
_PUNCTUATION_ONLY = re.compile(_PUNCTUATION + "*")
_PUNCTUATIONS = re.compile(_PUNCTUATION + "+")


def only_citations(answer: str) -> bool:
    """True when a reply holds citation marks and nothing else ("[2]", "[1][3]。")."""
    rest = _CITATION.sub("", answer)
    return rest != answer and _PUNCTUATION_ONLY.fullmatch(rest) is not None


_BRACKETED = re.compile(r"[\[【]([^\[\]【】\n]{1,120})[\]】]")


def without_echoed_sections(answer: str, sections: list[str | None]) -> str:
    """`answer` less the section titles it copied from the blocks' headers in brackets: "[1] [3.5.2 对齐环境]" for
    "Which environment centers text?" is a mark and a heading, no answer (lshort dev question le-14); read as
    saying something, it got no quote of the passage that does."""
    parts = {" ".join(p.split()).casefold() for s in sections if s for p in (s, *s.split(" > "))}
    answer = _BRACKETED.sub(lambda m: " " if " ".join(m.group(1).split()).casefold() in parts else m.group(0), answer)
    # unbracketed, the whole reply: "[1] 第 5 章 网络" (a page heading, the generated two-language manual)
    def bare(text: str) -> str:
        return " ".join(_PUNCTUATIONS.sub(" ", text).split()).casefold()

    rest = bare(_CITATION.sub(" ", answer))
    if rest and rest in {bare(p) for p in parts}:
        return " ".join(m.group(0) for m in _CITATION.finditer(answer))
    return answer


def adds_nothing(answer: str, question: str) -> bool:
    """True when a cited reply says nothing beyond the question: only marks ("[2]") or the question
    repeated ("[1] 报销后多久付款？"), both things the small embedded model does."""
    if only_citations(answer):
        return True
    from rag.lexical import tokenize

    rest = _CITATION.sub("", answer)
    if rest == answer:
        return False
    asked = set(tokenize(question))
    if set(tokenize(rest)) <= asked:
        return True
    # the word segmenter splits the same Chinese words differently in the two sentences ("行间公式加编号。" for
    # "行间公式怎样加编号？"): compare the Chinese characters, and the other words as words
    han = set(HAN.findall(rest))
    return bool(han) and han <= set(HAN.findall(question)) and set(tokenize(HAN.sub(" ", rest))) <= asked


# A question that asks for a name: a command, package, option, symbol... ("用什么命令", "哪个宏包", "Which environment")
ASKS_NAME = re.compile(
    r"(?:什么|哪个|哪一个|哪些|哪种|何种)\s*(?:命令|指令|宏包|宏|符号|选项|参数|环境|文档类|编码|发行版|函数|关键字)"
    r"|(?:命令|宏包|符号|选项|参数|环境|文档类|编码|发行版|函数)(?:是|叫)(?:什么|哪些|哪个)"
    r"|\b(?:which|what)\s+(?:[\w-]+\s+){0,2}(?:command|environment|option|package|symbol|macro|class|encoding|function|keyword)",
    re.IGNORECASE)
_SYMBOL = re.compile(r"[$&%#~^_{}|\\<>@=]")
# a Latin-script word shaped like a name in English text: a capital, digit, dot or joiner inside (xeCJK, ctex.sty)
_SHAPED = re.compile(r"\b[A-Za-z]+(?:[A-Z0-9]|[.\-_][A-Za-z0-9])[A-Za-z0-9.\-_]*")


def names_nothing(answer: str, question: str) -> bool:
    """True when the question asks for a name (a command, a package, a symbol) and the cited reply gives none
    that the question does not already hold: "行内公式用数学符号包裹。" for "行内公式用什么符号包裹？", or
    "使用 LuaLaTeX 编译。" for "用 LuaLaTeX 编译时用哪个宏包？". The small model paraphrased around the answer;
    the cited passage says it."""
    if not ASKS_NAME.search(question):
        return False
    from rag.answerability import _NAME  # commands and Latin-script words, as the unknown-names check reads them
    from rag.claims import _norm, checkable_facts
    from rag.text import query_language

    rest = _CITATION.sub(" ", answer)
    found = checkable_facts(rest) + _SYMBOL.findall(rest)
    found += (_NAME if query_language(question) == "zh" else _SHAPED).findall(rest)
    asked = _norm(question)
    return not any((n := _norm(x)) and n not in asked for x in found)


# A question that asks for a given number of things: "现今的两个主流 TeX 发行版是什么？", "中国足球“五大恶人”是哪些人？",
# "What are the two main distributions?"
_COUNTS = {"两": 2, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
ASKS_COUNT = re.compile(
    r"([两二三四五六2-6])\s*(?:个|种|类|项|大|条|位|部|家|样)[^，,？?。]{0,16}?(?:是什么|是哪|有哪些|分别|包括|指什么|叫什么)"
    r"|\b(?:what|which)\s+(?:are\s+)?(?:the\s+)?(two|three|four|five|six)\b", re.IGNORECASE)
_ITEM_SEPARATORS = re.compile(r"以及|和|与|及|、|[,，;；/]|\band\b|\bor\b", re.IGNORECASE)


def names_fewer(answer: str, question: str) -> bool:
    """True when the question asks for a number of things ("两个主流发行版是什么？") and the cited reply lists fewer
    ("[1] TEX Live"): the small model tends to stop at the first item of a list it was given whole."""
    m = ASKS_COUNT.search(question)
    if not m:
        return False
    word = (m.group(1) or m.group(2)).lower()
    wanted = int(word) if word.isdigit() else _COUNTS[word]
    items = [x for x in _ITEM_SEPARATORS.split(_CITATION.sub(" ", answer)) if x.strip(" \t\n。.!！")]
    return len(items) < wanted


def split_sentences(text: str) -> list[str]:
    """Sentences of a chunk, with PDF line breaks inside Chinese sentences joined ("付\\n款" -> "付款")."""
    text = CJK_LINE_BREAK.sub("", text)
    return [" ".join(s.split()) for s in SENTENCE_END.split(text) if s and s.strip()]


def evidence_scores(asked: set[str], words: list[set[str]]) -> list[float]:
    """How much of the question (its tokens, `asked`) each sentence (its tokens, `words`) holds: a question
    word counts more when fewer of the sentences contain it (the passage's topic, named everywhere,
    tells nothing apart)."""
    spread = Counter(w for ws in words for w in ws & asked)
    return [sum(1 / spread[w] for w in ws & asked) for ws in words]


_BULLET = re.compile(r"[•·▪●◦‣]\s*\S")
_LIST_INTRO = re.compile(r"[：:]\s*(?:[•·▪●◦‣]|$)")
_LISTING_LINE = re.compile(r"(?:^|\s)\d{1,5} (?=[{}\\%<〈])")


def code_listing(sentence: str) -> bool:
    """A sentence cut out of a code listing: numbered source lines ("16 { 17 Please~update~…", ctex's
    implementation chapters) or LaTeX3 code with no Chinese and ~ for its spaces."""
    return len(_LISTING_LINE.findall(sentence)) >= 2 or (not HAN.search(sentence) and sentence.count("~") >= 3)


def _scored_sentences(question: str, blocks: list[str]) -> list[tuple[int, str, float]]:
    """(block index, sentence, score) for every sentence of `blocks`, scored as `quote_with_block` explains."""
    from rag.answerability import topic_words
    from rag.lexical import tokenize

    asked = topic_words(question)  # 用/命令/哪个 say what is asked: a sentence is not better for repeating them
    sentences = [(b, s) for b, block in enumerate(blocks) for s in split_sentences(block)]  # (block index, sentence)
    words = [set(tokenize(s)) for _, s in sentences]
    overlap = evidence_scores(asked, words)
    wants_number = bool(ASKS_NUMBER.search(question))
    out = []
    for i, (b, s) in enumerate(sentences):
        value = overlap[i]
        if not words[i] - asked:
            value *= 0.1
        if code_listing(s):  # a user asked in words: numbered source lines are no answer to quote
            value *= 0.1
        if wants_number and NUMBER.search(s):
            value += 0.5
        out.append((b, s, value))
    return out


def quote_with_block(question: str, blocks: list[str], max_chars: int = 300) -> tuple[str, int | None]:
    """The sentence of `blocks` that best matches `question`, and the index of the block it is from.

    Small local models sometimes reply with nothing but "[2]" (or the question again): they found the
    passage but wrote no answer. Quoting the cited passage's best sentence gives the user the source text.
    A question word counts more when fewer sentences contain it (the passage's topic, named everywhere,
    tells nothing apart); a sentence that adds nothing to the question (a heading, a bare name) counts
    little; a number or date counts for questions that ask when / how many.
    """
    sentences = _scored_sentences(question, blocks)
    if not sentences:
        return "", None
    best = max(range(len(sentences)), key=lambda i: (sentences[i][2], -i))
    quote = sentences[best][1]
    nxt = best + 1
    if len(quote) < 20 and not quote.endswith(_ENDINGS) and nxt < len(sentences) and sentences[nxt][0] == sentences[best][0]:
        quote = f"{quote} {sentences[nxt][1]}"  # a heading: the sentence after it says what it is about
    elif _LIST_INTRO.search(quote):  # "两个主流发行版为： • TeX Live …": the other items' first sentences belong to it
        items = [s for b, s, _ in sentences[nxt:] if b == sentences[best][0] and _BULLET.match(s)]
        for item in items[:5]:
            if len(quote) + len(item) + 3 > max_chars:
                break
            quote = f"{quote} … {item}"
    return (quote if len(quote) <= max_chars else quote[: max_chars - 1] + "…"), sentences[best][0]


def better_block(question: str, blocks: list[str], cited: list[int], margin: float) -> int | None:
    """The index of an uncited block whose best sentence matches `question` at least `margin` times better than
    any sentence of the cited blocks (indexes in `cited`), or None. The small model sometimes marks the wrong
    block: "[3]" for "hyperref 宏包中哪个命令把一段文字作为超链接？" where [3] is about \\hyperref and [1] says
    "把一段文字作为超链接： \\href{⟨url⟩}{⟨text⟩}"."""
    best: dict[int, float] = {}
    for b, _, value in _scored_sentences(question, blocks):
        best[b] = max(best.get(b, 0.0), value)
    if not best or margin <= 0:
        return None
    top = max(best, key=lambda b: (best[b], -b))
    cited_best = max((best.get(b, 0.0) for b in cited), default=0.0)
    return top if top not in cited and best[top] > 0 and best[top] >= margin * cited_best else None


class RefusalHold:
    """Holds the start of a streamed reply back while it may still be the refusal sentence (NO_ANSWER),
    so that a refusal can be replaced before the user sees it. Any other reply is delayed by the few
    tokens it shares with the start of that sentence ("The ...")."""

    def __init__(self) -> None:
        from rag.prompts import NO_ANSWER

        self.held, self.holding = "", True
        self._refusals = tuple(NO_ANSWER.values())

    def feed(self, text: str) -> str:
        if not self.holding:
            return text
        self.held += text
        probe = " ".join(_CITATION.sub(" ", self.held).split())
        if any(r.startswith(probe) for r in self._refusals):
            return ""
        self.holding = False
        out, self.held = self.held, ""
        return out

    def flush(self) -> str:
        """What is still held at the end: the whole reply, which is the refusal (or a start of it)."""
        out, self.held, self.holding = self.held, "", False
        return out
