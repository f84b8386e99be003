"""Generation: the model's reply streamed through filters that keep what the user reads clean.

Citations that point to no block are dropped, copied block headers are removed, and a reply that turned into
blank space or a loop is stopped at once (closing the stream stops the server's generation too).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from rag.events import Token

_OPENERS = {"[": "]", "【": "】"}


class HeldText:
    """A streaming filter's text held back while it may still turn out to be what the filter removes or rewrites;
    `flush` gives it back at the end of the reply."""

    _pending = ""

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return rest


class CitationFilter(HeldText):
    def __init__(self, n_blocks: int):
        self.n_blocks = n_blocks
        self.cited: list[int] = []  # block numbers in order of first citation

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


class SourceEchoFilter(HeldText):
    """Drops a context block's header that the model copied into its answer ("[1] (file: a.txt, page 3) ..."):
    the sources list already says where a block is from. Streams like CitationFilter, holding back only
    text that may be such a header."""

    _LEAD = "(file:"
    _MAX = 400

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


class RefusalLanguageFilter(HeldText):
    """Writes the refusal sentence in the question's language when the model copied the other language's one from
    the system prompt (rule 3 quotes both): a Chinese question got "The knowledge base does not contain the answer
    to this question." Streams like CitationFilter, holding back only text that may be that sentence."""

    def __init__(self, lang: str) -> None:
        from rag.answer.prompts import NO_ANSWER

        def core(sentence: str) -> str:
            return sentence.rstrip(".。")

        self.want, self.end = core(NO_ANSWER[lang]), NO_ANSWER[lang][len(core(NO_ANSWER[lang])):]
        self.others = [core(s) for other, s in NO_ANSWER.items() if other != lang]
        self._replaced = False  # the last character fed completed a replaced sentence
        self.replaced: list[list[str]] = []  # [shown, as the model wrote it] for each replaced sentence

    def feed(self, text: str) -> str:
        out = []
        for ch in text:
            if self._replaced:  # the copied sentence's full stop becomes this language's
                self._replaced = False
                if ch in ".。":
                    out.append(self.end)
                    self.replaced[-1][0] += self.end
                    self.replaced[-1][1] += ch
                    continue
            self._pending += ch
            if self._pending in self.others:
                self.replaced.append([self.want, self._pending])
                out.append(self.want)
                self._pending, self._replaced = "", True
            elif not any(o.startswith(self._pending) for o in self.others):
                held, self._pending = self._pending, ""
                out.append(held[:-1])  # the last character may begin the sentence itself
                if any(o.startswith(ch) for o in self.others):
                    self._pending = ch
                else:
                    out.append(ch)
        return "".join(out)


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


class LoopGuard:
    """Ends a reply that repeats itself: the small model sometimes writes "[1] [2] [1] [2] …" or the same line
    again and again until its token limit (a minute of nothing new on a CPU). The reply so far ends in one
    piece of text (2 to 80 characters) repeated at least `times` times over at least `min_chars` characters;
    a table rule or a list is never that regular for that long."""

    def __init__(self, times: int = 4, min_chars: int = 40, max_unit: int = 80) -> None:
        self.times, self.min_chars, self.max_unit = times, min_chars, max_unit
        self.text = ""

    def feed(self, text: str) -> bool:
        """True when the reply so far ends in such a loop."""
        self.text = (self.text + text)[-(self.max_unit * self.times + self.min_chars):]
        s = " ".join(self.text.split())
        for unit in range(2, min(self.max_unit, len(s) // self.times) + 1):
            piece = s[-unit:]
            if not piece.strip():
                continue
            reps = 1
            while reps * unit < len(s) and s[-(reps + 1) * unit:-reps * unit] == piece:
                reps += 1
            if reps >= self.times and reps * unit >= self.min_chars:
                return True
        return False


@dataclass
class Reply:
    """The model's reply as the user got it, and what the check stage needs to finish it."""

    shown: str = ""  # streamed to the user
    cited: list[int] = field(default_factory=list)  # block numbers cited, in order of first citation
    usage: dict | None = None  # the server's token counts
    stopped: str | None = None  # "blank space" / "repetition": generation was ended early
    error: str | None = None  # the model call failed (shown as is)
    model_refusal: str | None = None  # the reply as written, when its refusal was in the other language


def generate(model, prompt: list, n_blocks: int, timings: dict, t0: float,  # noqa: ANN001
             describe_error: Callable[[BaseException], str], lang: str = "en") -> Generator[Token, None, Reply]:
    """Stream the model's answer to `prompt` (a question in `lang`) through the filters; model errors end up in
    Reply.error."""
    from rag.errors import LLMUnavailable
    from rag.llm import is_llm_error

    citations, echo, trailing = CitationFilter(n_blocks), SourceEchoFilter(), TrailingBlankHold()
    refusal = RefusalLanguageFilter(lang)
    blank, loop = BlankRunGuard(), LoopGuard()
    reply, parts, t1 = Reply(cited=citations.cited), [], time.perf_counter()
    try:
        for chunk in model.stream(prompt):
            if chunk.usage_metadata:  # the server's own count, in the last chunk
                reply.usage = chunk.usage_metadata
            text = chunk.content if isinstance(chunk.content, str) else ""
            if not text:
                continue
            if "ttft_ms" not in timings:
                timings["ttft_ms"], timings["llm_ttft_ms"] = ms(t0), ms(t1)
            if out := trailing.feed(echo.feed(refusal.feed(citations.feed(text)))):
                parts.append(out)
                yield Token(out)
            reply.stopped = "blank space" if blank.feed(text) else "repetition" if loop.feed(text) else None
            if reply.stopped:  # closing the stream stops the server's generation too
                break
        pending = citations.flush()  # a citation cut off by a stop ("[1") is dropped
        if rest := trailing.feed(echo.feed(refusal.feed("" if reply.stopped else pending) + refusal.flush())
                                 + echo.flush()):  # blank space at the very end is dropped
            parts.append(rest)
            yield Token(rest)
    except LLMUnavailable as exc:
        reply.error = str(exc)
    except Exception as exc:
        if "No generation chunks" not in str(exc):  # LangChain: the server streamed nothing (an empty answer)
            if not is_llm_error(exc):
                raise
            reply.error = describe_error(exc)
    reply.shown = "".join(parts)
    if refusal.replaced:
        reply.model_refusal = reply.shown
        for shown, written in refusal.replaced:
            reply.model_refusal = reply.model_refusal.replace(shown, written, 1)
    return reply


def ms(since: float) -> float:
    """Milliseconds since `since` (time.perf_counter), as the timings report them."""
    return round((time.perf_counter() - since) * 1000, 1)
