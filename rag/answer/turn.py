"""Resolve the turn: what the user asks, made whole when it is a follow-up that needs the conversation.

A complete new question costs no model call. A follow-up ("那有序列表呢？") is rewritten by the model into a
standalone question (capped in time); when the model cannot, its back-reference is replaced by the previous
question's topic (rag.answer.followup), and the model then also sees the last exchange.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Generator
from dataclasses import dataclass, field

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda

from rag.answer.followup import needs_context, substitute_referent
from rag.answer.generate import ms
from rag.answer.prompts import condense_messages, language_of, multi_query_messages, translate_messages
from rag.events import Status

log = logging.getLogger(__name__)


@dataclass
class Turn:
    """The question of one turn, as searched and as asked."""

    question: str  # as typed
    lang: str  # its language: the reply's
    standalone: str  # what is searched: the follow-up made whole, else the question
    rewritten: bool = False  # made whole by the model
    follow_up: bool = False
    queries: list[str] = field(default_factory=list)  # searched (the translation is added by retrieval)
    asked: str = ""  # what the model is asked
    earlier: list[tuple[str, str]] | None = None  # the last exchange, shown to the model for an elliptic follow-up


def messages(pairs: list[tuple[str, str]]) -> list:
    cls = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [cls[role](content=content) for role, content in pairs]


def resolve(svc, question: str, history: list[tuple[str, str]], timings: dict) -> Generator:  # noqa: ANN001
    """The Turn for `question` after `history` ([(role, text)]); yields status lines."""
    t0, s = time.perf_counter(), svc.settings
    turn = Turn(question, language_of(question), question, follow_up=bool(history) and needs_context(question))
    if turn.follow_up:
        if s.condense_question:
            yield Status("understanding the follow-up question")
        turn.standalone, turn.rewritten = condense(svc, question, history)
        timings["condense_ms"] = ms(t0)
    turn.queries = [turn.standalone]
    if turn.rewritten:  # the model's rewrite may drift: the deterministic one is searched too
        last_user = next((c for r, c in reversed(history) if r == "user"), "")
        if (resolved := substitute_referent(question, last_user)) != turn.standalone:
            turn.queries.append(resolved)
    if s.multi_query:
        turn.queries += reformulate(svc, turn.standalone)
    # a follow-up the model made whole is asked as such; one made whole without the model is asked as typed, after
    # the last exchange (asked as substituted, ctex's ct-13 was lost on the dev sets: docs/evaluation.md)
    turn.earlier = last_exchange(history) if turn.follow_up and not turn.rewritten else None
    turn.asked = turn.standalone if turn.rewritten else question
    return turn


def condense(svc, question: str, history: list[tuple[str, str]]) -> tuple[str, bool]:  # noqa: ANN001
    """(standalone question, made whole?) for a follow-up: made whole by the model's rewrite. When the model cannot
    rewrite it (in time, or plausibly), the back-reference is replaced by the previous question's topic
    (`substitute_referent`); the answer prompt then also shows the last exchange."""
    s = svc.settings
    recent = history[-s.history_turns:] if s.history_turns else []
    last_user = next((c for r, c in reversed(recent) if r == "user"), "")
    if not recent or not last_user:
        return question, False
    if not s.condense_question:
        return substituted(svc, question, last_user), False
    out = _capped_call(svc, condense_messages(question, recent), "follow-up rewrite")
    if out is None:
        return substituted(svc, question, last_user), False
    text = _REWRITE_LABEL.sub("", out).strip().strip('"“”')
    if _plausible_rewrite(text, question) and text != question and \
            "".join(last_user.split()) not in "".join(text.split()):  # not just both questions pasted together
        return text, True
    return substituted(svc, question, last_user), False


def substituted(svc, question: str, last_user: str) -> str:  # noqa: ANN001
    """The follow-up with its back-reference replaced by the previous question's topic (`substitute_referent`).
    A previous question in the other language is translated first (one capped call): its English topic in a
    Chinese follow-up ("commands produce the number and the page of a cross reference需要编译几次？") matched
    neither language's words and the gate refused a question the manual answers."""
    lang = language_of(question)
    if svc.settings.translate_question and language_of(last_user) != lang:
        last_user = translate(svc, last_user, lang) or last_user
    return substitute_referent(question, last_user)


def translate(svc, question: str, target: str) -> str | None:  # noqa: ANN001
    """`question` in language `target` ('zh'/'en') by the model, capped like the follow-up rewrite; None when
    it took too long or did not come back as a translated question (small models answer instead)."""
    out = _capped_call(svc, translate_messages(question, language_of(question), target), "question translation")
    text = _TRANSLATION_LABEL.sub("", out or "").strip().strip('"“”`')
    return text if _plausible_translation(text, question, target) else None


def reformulate(svc, question: str) -> list[str]:  # noqa: ANN001
    """RAG-Fusion's model-written reformulations of `question` (RAGKB_MULTI_QUERY)."""
    n = svc.settings.multi_query_count
    chain = RunnableLambda(lambda q: messages(multi_query_messages(q, n))) | \
        svc.llm.chat_model(temperature=0.3, max_tokens=160) | StrOutputParser()
    lines = [ln.strip(" -*0123456789.、)") for ln in chain.invoke(question).splitlines()]
    return [ln for ln in lines if ln and ln != question][:n]


def _capped_call(svc, pairs: list[tuple[str, str]], what: str) -> str | None:  # noqa: ANN001
    """The first line of the model's reply to a helper prompt, or None when it took over RAGKB_CONDENSE_TIMEOUT."""
    s = svc.settings
    try:
        model = svc.llm.chat_model(temperature=0.0, max_tokens=s.condense_max_tokens,
                                   timeout=min(s.condense_timeout, s.llm_timeout))
        out = (model | StrOutputParser()).invoke(messages(pairs)).strip().strip('"“”').splitlines()
    except Exception as exc:
        if "Timeout" not in type(exc).__name__:
            raise
        log.info("%s took over %.0f s; went on without it", what, s.condense_timeout)
        return None
    return out[0].strip() if out else ""


def last_exchange(history: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The last user question and the answer to it, as (role, text) turns."""
    for i in range(len(history) - 1, -1, -1):
        if history[i][0] == "user":
            return [("user", history[i][1])] + [("assistant", c) for r, c in history[i + 1:i + 2] if r == "assistant"]
    return []


# What small models put before a rewrite: "Rewritten question:", "Standalone question:", "改写后的问题："
_REWRITE_LABEL = re.compile(r"^\s*(?:(?:rewritten|standalone|complete|full|new)\s+)?(?:follow-up\s+)?question\s*[:：]|"
                            r"^\s*(?:改写后?的?|重写后?的?|独立|完整的?)?问题\s*[:：]", re.IGNORECASE)
_TRANSLATION_LABEL = re.compile(r"^\s*(?:chinese|english|translation|中文|英文|翻译)\s*[:：]\s*", re.IGNORECASE)


def _plausible_translation(text: str, question: str, target: str) -> bool:
    """A translated question, not an answer: in the target language, about as long, still a question when the
    original was one ("What is the capital of Australia?" came back as "澳大利亚的首都是悉尼。")."""
    from rag.text import query_language

    if not text or text == question.strip() or len(text) > 2 * len(question) + 40 or "[" in text:
        return False
    if query_language(text) != target:
        return False
    return not question.strip().endswith(("?", "？")) or text.endswith(("?", "？"))


def _plausible_rewrite(text: str, question: str) -> bool:
    """Small models sometimes answer instead of rewriting; such output must not steer retrieval."""
    if not text or len(text) > 4 * len(question) + 200:
        return False
    if "[" in text or "【" in text:  # citations: it answered
        return False
    from rag.lexical import tokenize
    from rag.text import query_language

    if query_language(text) != query_language(question):
        return False
    asked = set(tokenize(question))  # the rewrite must still ask what the follow-up asked
    return not asked or len(asked & set(tokenize(text))) / len(asked) >= 0.5
