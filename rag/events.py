"""What an answer stream is made of: a small tagged union of events, and the one fold every face uses.

The chain yields `Status`, `Token`, `Sources`, `Failed` and a final `Done`; the service adds a leading
`Started` (the conversation and the stored question). Every face (CLI, SSE, OpenAI route, web UI,
evaluation) folds them with `AnswerCollector` and puts them on the wire with `event_dict`, so what
the API calls `refused` is what the evaluation counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import ClassVar, Union


@dataclass
class Source:
    n: int  # the number the answer cites, [n]
    filename: str
    page: int | None
    section: str | None
    snippet: str
    score: float
    doc_id: str
    chunk_id: str
    kind: str = "document"
    attributed: bool = False  # True: the model did not cite it; ragkb matched the answer to this block
    left_out: list[str] = field(default_factory=list)  # instruction-like sentences the model was not shown
    evidence: str = ""  # what the model was given of this block: the sentences the answer rests on

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Started:
    """First event of a chat turn: the conversation (new or continued) and the stored question."""

    conversation_id: str
    question_id: str
    type: ClassVar[str] = "conversation"


@dataclass(frozen=True)
class Status:
    """Progress shown before the first token ("understanding the follow-up question")."""

    text: str
    type: ClassVar[str] = "status"


@dataclass(frozen=True)
class Token:
    text: str
    type: ClassVar[str] = "token"


@dataclass(frozen=True)
class Sources:
    """The blocks the answer cited (or was attributed to); empty for a refusal."""

    sources: list[Source]
    type: ClassVar[str] = "sources"


@dataclass(frozen=True)
class Failed:
    """The model or the store failed; the message says what to do."""

    text: str
    type: ClassVar[str] = "error"


@dataclass(frozen=True)
class Done:
    """Last event: what the answer was (refused? checked?) and what it cost."""

    refused: bool = False
    standalone_question: str | None = None  # the question as searched (a follow-up resolved)
    timings: dict = field(default_factory=dict)
    reason: str | None = None  # why it was refused without a model call
    unsupported_claims: list[dict] = field(default_factory=list)  # rag.answer.claims: sentences their sources lack
    grounding: float | None = None  # rag.answer.claims.grounding
    retrieved: int | None = None
    corrections: int = 0
    quoted: bool = False
    stopped: str | None = None  # generation ended early: "blank space" or "repetition" (rag.answer.generate)
    # the check stage's rules that changed the answer, each with what the user would have read without it
    # (rag.answer.check.Checked.applied): how `ragkb eval answers` scores every rule on and off from one run
    applied: list[dict] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # the evidence the model read, one text per numbered block: did the answer reach the model (`ragkb eval answers`)
    read: list[str] = field(default_factory=list)
    partial: str | None = None  # the text streamed before a failure
    message_id: str | None = None  # set by the service once the answer is stored
    conversation_id: str | None = None
    type: ClassVar[str] = "done"

    def stored(self, message_id: str, conversation_id: str) -> Done:
        return replace(self, message_id=message_id, conversation_id=conversation_id)


AnswerEvent = Union[Started, Status, Token, Sources, Failed, Done]


def event_dict(ev: AnswerEvent) -> dict:
    """The JSON form of an event (server-sent events): {"type": ..., field: value, ...}."""
    out = {"type": ev.type}
    for f in fields(ev):
        if f.name in ("applied", "read"):  # evaluation detail, not for the wire
            continue
        value = getattr(ev, f.name)
        out[f.name] = [s.as_dict() for s in value] if f.name == "sources" else \
            (asdict(value) if hasattr(value, "__dataclass_fields__") else value)
    return out


@dataclass
class Answer:
    """A whole answer, for callers that do not stream."""

    text: str
    sources: list[Source]
    error: str | None = None
    refused: bool = False
    standalone_question: str = ""
    timings: dict = field(default_factory=dict)
    unsupported_claims: list[dict] = field(default_factory=list)
    grounding: float | None = None
    applied: list[dict] = field(default_factory=list)  # Done.applied
    prompt_tokens: int | None = None  # Done.prompt_tokens: what the model read (None: no model call)
    read: list[str] = field(default_factory=list)  # Done.read

    @property
    def from_memory(self) -> bool:
        """Flagged as probably the model's own knowledge (rag.answer.claims.uncited_answer)."""
        return any(c.get("kind") == "uncited" for c in self.unsupported_claims)


@dataclass
class AnswerCollector:
    """The fold: events in, the whole answer so far out. `add` returns the event, so a face can
    collect and render in one loop."""

    parts: list[str] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    error: str | None = None
    started: Started | None = None
    done: Done | None = None
    status: str = ""  # the latest status line while no token has come

    def add(self, ev: AnswerEvent) -> AnswerEvent:
        if isinstance(ev, Token):
            self.parts.append(ev.text)
        elif isinstance(ev, Sources):
            self.sources = ev.sources
        elif isinstance(ev, Failed):
            self.error = ev.text
        elif isinstance(ev, Status):
            self.status = ev.text
        elif isinstance(ev, Started):
            self.started = ev
        elif isinstance(ev, Done):
            self.done = ev
        return ev

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def refused(self) -> bool:
        return bool(self.done and self.done.refused)

    @property
    def unsupported_claims(self) -> list[dict]:
        return self.done.unsupported_claims if self.done else []

    @property
    def conversation_id(self) -> str | None:
        return (self.done and self.done.conversation_id) or (self.started and self.started.conversation_id) or None

    @property
    def message_id(self) -> str | None:
        return self.done.message_id if self.done else None

    def result(self, question: str) -> Answer:
        d = self.done or Done()
        return Answer(self.text, self.sources, self.error, d.refused, d.standalone_question or question,
                      d.timings, d.unsupported_claims, d.grounding, d.applied, d.prompt_tokens, d.read)


def collect(events) -> AnswerCollector:  # noqa: ANN001
    c = AnswerCollector()
    for ev in events:
        c.add(ev)
    return c
