"""Check: what is done with the model's reply after it is complete.

Each rule here reads the finished reply and the evidence it was given; `rag.answer.service` records which
rule changed what (Done.applied), so `ragkb eval answers` scores every rule on and off from one run.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass, field

from rag.answer.claims import _norm, checkable_facts, grounding, holds_facts, uncited_answer, unsupported_claims
from rag.answer.prompts import NO_ANSWER, OTHER_LANGUAGE_QUOTE, QUOTE_LEAD, is_refusal, language_of
from rag.answer.sentences import _PUNCTUATIONS, ASKS_NAME, CITATION, better_block, only_citations, quote_with_block
from rag.events import Token
from rag.text import HAN


def attribute(answer: str, blocks: list[str], min_overlap: float = 0.5, question: str = "") -> int | None:
    """The block an uncited answer was evidently taken from (1-based), or None.

    Small local models often answer correctly from a block but forget to cite it. An answer whose
    words mostly occur in one block came from that block; anything less is left uncited. A one-word
    answer ("\\fontsize", "UTF8") that the question does not contain came from the best-ranked block
    (blocks are in rank order) that holds it. The block must hold the answer's checkable facts (commands,
    numbers, paths, quoted terms: rag.answer.claims), and among those the one with most of the answer's own words
    (not the question's) wins: "交叉引用时用 \\label 命令设置标签。" repeats the question's words, which
    lshort's PDF-bookmark block holds more of, but only the cross-reference block says \\label.
    """
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

    rest = bare(CITATION.sub(" ", answer))
    if rest and rest in {bare(p) for p in parts}:
        return " ".join(m.group(0) for m in CITATION.finditer(answer))
    return answer


def adds_nothing(answer: str, question: str) -> bool:
    """True when a cited reply says nothing beyond the question: only marks ("[2]") or the question
    repeated ("[1] 报销后多久付款？"), both things the small embedded model does."""
    if only_citations(answer):
        return True
    from rag.lexical import tokenize

    rest = CITATION.sub("", answer)
    if rest == answer:
        return False
    asked = set(tokenize(question))
    if set(tokenize(rest)) <= asked:
        return True
    # the word segmenter splits the same Chinese words differently in the two sentences ("行间公式加编号。" for
    # "行间公式怎样加编号？"): compare the Chinese characters, and the other words as words
    han = set(HAN.findall(rest))
    return bool(han) and han <= set(HAN.findall(question)) and set(tokenize(HAN.sub(" ", rest))) <= asked


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
    from rag.answer.gate import _NAME  # commands and Latin-script words, as the unknown-names check reads them
    from rag.text import query_language

    rest = CITATION.sub(" ", answer)
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
    items = [x for x in _ITEM_SEPARATORS.split(CITATION.sub(" ", answer)) if x.strip(" \t\n。.!！")]
    return len(items) < wanted


@dataclass
class Checked:
    """The finished answer, and what the checks found."""

    answer: str  # the reply as the model's words left it (no added marks or quotes): what claims are checked on
    text: str  # everything the user read
    refused: bool
    attributed: int | None = None  # the block an uncited answer was matched to
    quoted: bool = False
    claims: list = field(default_factory=list)  # rag.answer.claims.UnsupportedClaim
    grounded: float | None = None
    # each rule that changed the answer: {"rule", "text": what the user would have read without it, "cited"}
    applied: list[dict] = field(default_factory=list)


def check(svc, turn, found, passages, reply) -> Generator:  # noqa: ANN001
    """Finish `reply` (rag.answer.generate.Reply): show or replace a held refusal, attribute an uncited answer,
    quote the cited passage under a reply that names nothing, check the claims. Yields the added tokens."""
    s, lang, cited = svc.settings, turn.lang, reply.cited
    blocks, texts = passages.blocks, [b[3] for b in passages.blocks]
    answer = reply.shown
    applied: list[dict] = []
    if reply.held:
        worded = [h.extra.get("coverage", 0.0) >= s.min_lexical_coverage for h in found.hits]
        rest = instead_of_refusal(reply.held, lang, passages.matched, blocks, passages.n_corrections, cited, worded)
        if rest.startswith(OTHER_LANGUAGE_QUOTE[lang]):
            applied.append({"rule": "other-language quote", "text": answer + NO_ANSWER[lang], "cited": []})
        answer += rest
        yield Token(rest)
    text = answer
    refused = is_refusal(answer)
    asked_all = " ".join(dict.fromkeys(q for q in (turn.question, turn.standalone, found.translated) if q))
    attributed = None
    if not refused and not cited:
        attributed = attribute(answer, texts, question=f"{turn.asked} {found.translated or ''}")
        if attributed is not None:
            applied.append({"rule": "attribution", "text": text, "cited": list(cited)})
            cited.append(attributed)
            text += f" [{attributed}]"
            yield Token(f" [{attributed}]")
    # e.g. only "[2]", the question repeated, no command named for "用什么命令…", or one of "两个…": quote the source
    # "[1] [3.5.2 对齐环境]" says nothing, nor "[1] 第 5 章 网络" (a block's heading line)
    said = without_echoed_sections(text, [b[2] for b in blocks] + [_first_line(t) for t in texts])
    why = "adds nothing" if adds_nothing(said, asked_all) else None
    if not why and not refused and s.quote_unnamed:
        why = "names nothing" if names_nothing(said, asked_all) else "names fewer" if names_fewer(said, asked_all) else None
    quoted = False
    if cited and why:
        question = f"{turn.standalone} {found.translated or ''}"
        dense = {"similarity": passages.similarity, "dense_weight": s.evidence_dense_weight}
        before, own = list(cited), _quote(question, [texts[n - 1] for n in cited], cited, lang, dense)
        other = better_block(question, texts, [n - 1 for n in cited], s.quote_other_block_margin, **dense)
        if other is not None:  # the model marked a block that does not say it; another one plainly does
            quote, _ = quote_with_block(question, [texts[other]], **dense)
            shown = f"\n\n{QUOTE_LEAD[lang]}“{quote}” [{other + 1}]" if quote else ""
            if shown:
                applied.append({"rule": "quote another block", "text": text + own, "cited": before})
                cited.append(other + 1)
        else:
            shown = own
        if shown:
            applied.append({"rule": f"quote ({why})", "text": text, "cited": before})
            text += shown
            quoted = True
            yield Token(shown)
    out = Checked(answer, text, refused, attributed, quoted, applied=applied)
    if not refused:
        full = list(passages.full_texts.values())
        out.claims = unsupported_claims(answer, passages.full_texts, asked_all, s.claim_min_word_support)
        out.grounded = grounding(answer, full, asked_all)
        if memory := uncited_answer(answer, bool(cited), out.grounded, s.uncited_min_grounding, full):
            out.claims.append(memory)
    return out


def _quote(question: str, cited_texts: list[str], cited: list[int], lang: str, dense: dict) -> str:
    """The quote line of the cited blocks' best sentence ("" when none), marked with its block when several."""
    quote, i = quote_with_block(question, cited_texts, **dense)
    if not quote:
        return ""
    mark = f" [{cited[i]}]" if len(set(cited)) > 1 else ""  # several blocks cited ("[1] [2] [3] [4]"): which one
    return f"\n\n{QUOTE_LEAD[lang]}“{quote}”{mark}"


def instead_of_refusal(reply: str, lang: str, question: str, blocks: list[tuple], n_corrections: int,
                       cited: list[int], worded: list[bool]) -> str:
    """The model's refusal, or, when the question and the document blocks are in different languages
    (where the small model refuses with the answer in front of it: English questions about the Chinese
    lshort manual), the most relevant sentence of the blocks in the other language, cited and said to be a
    quote. For an English question each block is judged alone: ctex's blocks mix Chinese prose with code
    listings, joined they read as English, and "What does \\ctexset do?" was refused with "\\ctexset 采用
    LATEX3 风格的键值设置…" in block [2]. Only a block that holds the question's (or its translation's) topic
    words is quoted (`worded`): cross-language similarity lets merely related blocks into the prompt, and the
    model's refusal of "What do the operating systems need for GPUs?" became a quote about installing."""
    if not is_refusal(reply):
        return reply
    # the refusal in the user's language: the model refused a rewritten Chinese follow-up in English
    refusal = NO_ANSWER[lang]
    docs = [b[3] for b in blocks[n_corrections:]]
    if not docs:
        return refusal
    if lang == "en":  # block by block: code listings made ctex's Chinese blocks read as English when joined
        other = [i for i, d in enumerate(docs) if language_of(d) == "zh"]
    else:
        other = list(range(len(docs))) if language_of(" ".join(docs)) != lang else []
    other = [i for i in other if i < len(worded) and worded[i]]
    if not other:
        return refusal
    quote, i = quote_with_block(question, [docs[j] for j in other])
    if not quote:
        return refusal
    n = n_corrections + other[i] + 1
    cited[:] = [n]
    return f"{OTHER_LANGUAGE_QUOTE[lang]}“{quote}” [{n}]"


def _first_line(text: str) -> str | None:
    """A block's first line when it is short enough to be a heading (what the model sometimes copies as its reply)."""
    line = text.strip().split("\n", 1)[0].strip()
    return line if 0 < len(line) <= 40 else None
