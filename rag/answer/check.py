"""Check: what is done with the model's reply after it is complete.

Each rule here reads the finished reply and the evidence it was given; `rag.answer.service` records which
rule changed what (Done.applied), so `ragkb eval answers` scores every rule on and off from one run.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass, field

from rag.answer.claims import checkable_facts, grounding, holds_facts, uncited_answer, unsupported_claims
from rag.answer.prompts import QUOTE_LEAD, is_refusal
from rag.answer.sentences import _PUNCTUATIONS, CITATION, better_block, only_citations, quote_with_block
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
    """Finish `reply` (rag.answer.generate.Reply): attribute an uncited answer to the block it came from, quote the
    cited passage's evidence sentence under a reply that says nothing beyond the question, check the claims. Yields
    the added tokens. (Each rule here helps on at least three families of documents: docs/evaluation.md.)"""
    s, lang, cited = svc.settings, turn.lang, reply.cited
    blocks, texts = passages.blocks, [b[3] for b in passages.blocks]
    answer = text = reply.shown
    refused = is_refusal(answer)
    asked_all = " ".join(dict.fromkeys(q for q in (turn.question, turn.standalone, found.translated) if q))
    out = Checked(answer, text, refused)
    if reply.model_refusal:  # rag.answer.generate.RefusalLanguageFilter
        out.applied.append({"rule": "refusal language", "text": reply.model_refusal, "cited": list(cited)})
    if not refused and not cited:
        out.attributed = attribute(answer, texts, question=f"{turn.asked} {found.translated or ''}")
        if out.attributed is not None:
            out.applied.append({"rule": "attribution", "text": text, "cited": list(cited)})
            cited.append(out.attributed)
            text += f" [{out.attributed}]"
            yield Token(f" [{out.attributed}]")
    # only "[2]" or "[1] [2] [3] [4]", the question repeated, "[1] [3.5.2 对齐环境]" or "[1] 第 5 章 网络" (a block's
    # heading): the model pointed at passages without saying what they say, so the user gets their evidence sentence
    said = without_echoed_sections(text, [b[2] for b in blocks] + [_first_line(t) for t in texts])
    if cited and adds_nothing(said, asked_all):
        dense = {"similarity": passages.similarity, "dense_weight": s.evidence_dense_weight}
        question, before = f"{turn.standalone} {found.translated or ''}", list(cited)
        shown = own = _quote(question, [texts[n - 1] for n in cited], cited, lang, dense)
        # the model marked a block that does not say it, and another one plainly does: quote that one
        if (other := better_block(question, texts, [n - 1 for n in cited], s.quote_other_block_margin, **dense)) is not None:
            quote, _ = quote_with_block(question, [texts[other]], **dense)
            if quote:
                shown = f"\n\n{QUOTE_LEAD[lang]}“{quote}” [{other + 1}]"
                out.applied.append({"rule": "quote another block", "text": text + own, "cited": before})
                cited.append(other + 1)
        if shown:
            out.applied.append({"rule": "quote (adds nothing)", "text": text, "cited": before})
            text += shown
            out.quoted = True
            yield Token(shown)
    out.text = text
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


def _first_line(text: str) -> str | None:
    """A block's first line when it is short enough to be a heading (what the model sometimes copies as its reply)."""
    line = text.strip().split("\n", 1)[0].strip()
    return line if 0 < len(line) <= 40 else None
