"""A scripted chat model for tests about prompt assembly and citation handling (not about the LLM)."""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage


class ScriptedLLM:
    """Stands in for rag.llm.LLMService, answering by role, not by call order: the answer prompt gets the next of
    `answers`; the follow-up rewrite gets `rewrite`, the question translation `translation`, the RAG-Fusion prompt
    `queries`. A helper call whose reply was not scripted fails the test (the chain must not have made it). Every
    call's messages are recorded in `calls`."""

    def __init__(self, *answers: str, rewrite: str | None = None, translation: str | None = None,
                 queries: str | None = None):
        self.replies = list(answers)
        self.rewrite, self.translation, self.queries = rewrite, translation, queries
        self.calls: list[list] = []
        self.roles: list[str] = []
        self._resolved = ("scripted://", "scripted")

    def endpoint(self):
        return self._resolved

    def context_tokens(self) -> int:
        from rag.llm import DEFAULT_CONTEXT_TOKENS

        return DEFAULT_CONTEXT_TOKENS

    def count_tokens(self, text: str) -> int:
        from rag.llm import estimate_tokens

        return estimate_tokens(text)

    def _reply(self, messages) -> str:  # noqa: ANN001
        from rag.answer.prompts import CONDENSE_SYSTEM, MULTI_QUERY_SYSTEM, TRANSLATE_SYSTEM

        self.calls.append(messages)
        system = messages[0].content
        for role, prompt, reply in (("rewrite", CONDENSE_SYSTEM, self.rewrite),
                                    ("translation", TRANSLATE_SYSTEM, self.translation),
                                    ("queries", MULTI_QUERY_SYSTEM, self.queries)):
            if system.startswith(prompt.split("{")[0]):
                self.roles.append(role)
                assert reply is not None, f"the chain asked for a {role} that this test did not script"
                return reply
        self.roles.append("answer")
        assert self.replies, "the chain asked for one more answer than this test scripted"
        return self.replies.pop(0)

    def chat_model(self, **_kwargs):
        scripted = self

        class Recording(GenericFakeChatModel):
            def _stream(self, messages, *a, **k):  # noqa: ANN001
                from langchain_core.messages import AIMessageChunk
                from langchain_core.outputs import ChatGenerationChunk

                reply = scripted._reply(messages)
                for i in range(0, len(reply), 3):  # a few characters at a time, like a real server
                    yield ChatGenerationChunk(message=AIMessageChunk(content=reply[i:i + 3]))

            def _generate(self, messages, *a, **k):  # noqa: ANN001
                self.messages = iter([AIMessage(content=scripted._reply(messages))])
                return super()._generate(messages, *a, **k)

        return Recording(messages=iter([]))

    def close(self):
        pass
