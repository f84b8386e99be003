"""Mock backends selected by setting, for tests about something other than the models (the API
contract, the UI plumbing, conversations), as private-gpt's `mock` modes are:

- `RAGKB_EMBEDDING_MODEL=mock:hash`: a deterministic hashing embedder (word and character-bigram
  features, 256 dimensions). Nothing is loaded; a knowledge base records it as its model like any other,
  so switching to a real model later is caught as a model change.
- `RAGKB_LLM_MODE=mock`: an extractive "model" that answers with the sentence of the context blocks
  sharing most words with the question, citing its block, or with the refusal when none shares any.
  Condense and multi-query prompts get the question back. No server is started.

Neither is a measure of quality; the integration tests run the real ones.
"""

from __future__ import annotations

import hashlib
import math
import re

from langchain_core.embeddings import Embeddings
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

MOCK_EMBEDDING = "mock:hash"
DIM = 256
_BLOCK = re.compile(r"^\[(\d+)\] \(file: [^\n]*\n<<<\n(.*?)\n>>>", re.MULTILINE | re.DOTALL)


def _features(text: str) -> list[str]:
    from rag.lexical import tokenize

    return tokenize(text)


class HashEmbeddings(Embeddings):
    def _vector(self, text: str) -> list[float]:
        v = [0.0] * DIM
        for f in _features(text):
            h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=4).digest(), "little")
            v[h % DIM] += 1.0 if h & 1 << 31 else -1.0
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def extractive_reply(prompt: str) -> str:
    """What the mock model says to the last user message of a ragkb prompt."""
    from rag.answer.prompts import NO_ANSWER, language_of

    if "Context blocks:" not in prompt:  # condense / translate / multi-query: the question itself
        follow = re.search(r"Follow-up question: (.*)|^(?:English|Chinese): (.*)", prompt, re.MULTILINE)
        if follow:
            return (follow.group(1) or follow.group(2)).strip()
        return prompt.strip()
    question = prompt.rsplit("Question:", 1)[-1].split("\n", 1)[0].strip()
    asked = set(_features(question))
    best, best_n, best_overlap = "", 0, 0
    for n, text in _BLOCK.findall(prompt):
        for sentence in re.split(r"(?<=[。！？.!?])\s*|\n+", text):
            overlap = len(asked & set(_features(sentence)))
            if overlap > best_overlap:
                best, best_n, best_overlap = " ".join(sentence.split()), int(n), overlap
    if not best_overlap:
        return NO_ANSWER[language_of(question)]
    return f"{best[:300]} [{best_n}]"


class ExtractiveChatModel(GenericFakeChatModel):
    messages: object = iter(())

    def _stream(self, messages, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        reply = extractive_reply(str(messages[-1].content))
        for i in range(0, len(reply), 4):  # a few characters at a time, like a real server
            yield ChatGenerationChunk(message=AIMessageChunk(content=reply[i:i + 4]))

    def _generate(self, messages, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        from langchain_core.outputs import ChatGeneration, ChatResult

        return ChatResult(generations=[ChatGeneration(message=AIMessage(
            content=extractive_reply(str(messages[-1].content))))])
