"""The answer pipeline, one module per stage, composed in `AnswerService.stream` (rag/answer/service.py):

turn (resolve a follow-up) -> retrieve (search, the answerability gate) -> evidence (the sentences the model
gets) -> prompts (the prompt) -> generate (stream, stop loops) -> check (refusal, attribution, quotes, claims).
`sentences` holds the text primitives they share.
"""

from rag.answer.service import AnswerService, ExplainedHit

__all__ = ["AnswerService", "ExplainedHit"]
