"""A scripted chat model for tests about prompt assembly and citation handling (not about the LLM)."""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage


class ScriptedLLM:
    """Stands in for rag.llm.LLMService: each chat_model() call answers with the next scripted reply
    and records the messages it was given. `translation`, when given, answers the question-translation prompt
    whenever the chain asks it (whether it does depends on what retrieval found) without using up a reply."""

    def __init__(self, *replies: str, translation: str | None = None):
        self.replies = list(replies)
        self.translation = translation
        self.calls: list[list] = []
        self._resolved = ("scripted://", "scripted")

    def endpoint(self):
        return self._resolved

    def count_tokens(self, text: str) -> int:
        from rag.llm import estimate_tokens

        return estimate_tokens(text)

    def _reply(self, messages) -> str:  # noqa: ANN001
        from rag.prompts import TRANSLATE_SYSTEM

        self.calls.append(messages)
        if self.translation is not None and messages[0].content.startswith(TRANSLATE_SYSTEM.split("{")[0]):
            return self.translation
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
