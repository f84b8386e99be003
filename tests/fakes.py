"""A scripted chat model for tests about prompt assembly and citation handling (not about the LLM)."""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage


class ScriptedLLM:
    """Stands in for rag.llm.LLMService: each chat_model() call answers with the next scripted reply
    and records the messages it was given."""

    def __init__(self, *replies: str):
        self.replies = list(replies)
        self.calls: list[list] = []
        self._resolved = ("scripted://", "scripted")

    def endpoint(self):
        return self._resolved

    def count_tokens(self, text: str) -> int:
        from rag.llm import estimate_tokens

        return estimate_tokens(text)

    def chat_model(self, **_kwargs):
        reply = self.replies.pop(0)
        calls = self.calls

        class Recording(GenericFakeChatModel):
            def _stream(self, messages, *a, **k):  # noqa: ANN001
                from langchain_core.messages import AIMessageChunk
                from langchain_core.outputs import ChatGenerationChunk

                calls.append(messages)
                for i in range(0, len(reply), 3):  # a few characters at a time, like a real server
                    yield ChatGenerationChunk(message=AIMessageChunk(content=reply[i:i + 3]))

            def _generate(self, messages, *a, **k):  # noqa: ANN001
                calls.append(messages)
                return super()._generate(messages, *a, **k)

        return Recording(messages=iter([AIMessage(content=reply)]))

    def close(self):
        pass
