"""The service functions every face calls: the web UI, the REST/OpenAI API and the CLI.

One `RagkbService` per process holds the store, the conversation history, the answer chain and
the model server. The faces only translate between their protocol and these methods, so none of
them holds logic the others lack.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.pipeline import FAILED, FileResult, IngestSummary, ProgressFn, ingest_files, too_large, unsupported_type
from rag.chain import AnswerCollector, AnswerEvent, AnswerService
from rag.conversations import ConversationStore
from rag.errors import RagkbError
from rag.settings import Settings, get_settings
from rag.store import KnowledgeBaseStore


class UploadRejected(RagkbError):
    """An uploaded file refused before ingest (size, type, name)."""

    def __init__(self, name: str, reason: str, status: int = 422):
        super().__init__(f"{name}: {reason}")
        self.name, self.reason, self.status = name, reason, status


def safe_display_name(name: str) -> str:
    """The file name a user sees for an upload: the last path component of what the browser sent,
    without control characters; never used as a path."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf")).strip().lstrip(".")
    return name[:255] or "upload"


@dataclass
class Upload:
    path: Path  # where the face stored the bytes (a temp file)
    name: str  # the name the user gave the file
    refused: str | None = None  # set by a face that already refused it (e.g. stopped reading at the size limit)


class RagkbService:
    def __init__(self, settings: Settings | None = None, store: KnowledgeBaseStore | None = None, llm=None):  # noqa: ANN001
        self.settings = settings or (store.settings if store else get_settings())
        self.store = store or KnowledgeBaseStore(self.settings)
        self.conversations = ConversationStore(self.store.registry)
        self.answers = AnswerService(self.store, llm=llm, conversations=self.conversations)
        self._ingest_lock = threading.Lock()  # one ingest at a time per process: the CPU is the limit

    def warm_up(self) -> None:
        self.answers.warm_up()

    def close(self) -> None:
        self.answers.llm.close()
        self.store.close()

    # -- knowledge bases --------------------------------------------------------------------
    def list_kbs(self):
        return self.store.list()

    def kb_names(self) -> list[str]:
        return [kb.name for kb in self.store.list()]

    def create_kb(self, name: str):
        return self.store.create(name)

    def rename_kb(self, old: str, new: str):
        """Conversations and corrections hang off the knowledge base's id: they follow the new name."""
        return self.store.rename(old, new)

    def delete_kb(self, name: str) -> None:
        kb = self.store.get(name)
        self.store.delete(kb.name)
        self.conversations.kb_deleted(kb.id)

    # -- documents --------------------------------------------------------------------------
    def documents(self, kb: str):
        return self.store.documents(kb)

    def delete_document(self, kb: str, ref: str):
        return self.store.delete_document(kb, ref)

    def check_upload(self, upload: Upload) -> FileResult | None:
        """A failed FileResult when the upload cannot be ingested (checked before any work), else None."""
        name = safe_display_name(upload.name)
        if upload.refused:
            return FileResult(name, name, FAILED, upload.refused)
        size = upload.path.stat().st_size if upload.path.exists() else 0
        why = unsupported_type(name) or too_large(size, self.settings.max_file_mb)
        return FileResult(name, name, FAILED, why) if why else None

    def ingest_uploads(self, kb: str, uploads: list[Upload], progress: ProgressFn | None = None) -> IngestSummary:
        """Ingest uploaded files under the names the user gave them; refused files are reported like
        any other failure and the rest of the batch goes on."""
        from ingest.pipeline import Progress

        self.store.get_row(kb)  # unknown knowledge base: a clear error, nothing created by accident
        refused, accepted = [], []
        for u in uploads:
            bad = self.check_upload(u)
            if bad is not None:
                refused.append(bad)
                if progress:
                    progress(Progress("done", 0, len(uploads), bad.name, result=bad))
            else:
                accepted.append((u.path, safe_display_name(u.name)))
        with self._ingest_lock:
            summary = ingest_files(self.store, kb, accepted, progress=progress, uploaded=True)
        summary.results = refused + summary.results
        return summary

    def search(self, kb: str, query: str, k: int | None = None):
        from rag.retrieval import search

        return search(self.store, kb, query, k=k)

    # -- chat -------------------------------------------------------------------------------
    def chat(self, conversation_id: str | None, kb: str, question: str, user: str = "") -> Iterator[AnswerEvent]:
        """Answer `question` inside a conversation (created when None), saving both messages.

        Yields the chain's events; the first is a "conversation" event carrying the conversation id
        and the stored question's id, and the final "done" event carries the answer's message id.
        """
        question = question.strip()
        if not question:
            raise RagkbError("The question is empty.")
        self.store.get_row(kb)
        if conversation_id:
            conv = self.conversations.get(conversation_id, user)
            if conv.kb_name != kb:
                self.conversations.set_kb(conv.id, kb, user)
        else:
            conv = self.conversations.create(user=user, kb_name=kb)
        history = [(m.role, m.content) for m in self.conversations.messages(conv.id, user)
                   if m.role in ("user", "assistant") and not m.meta.get("error")]
        asked = self.conversations.add_message(conv.id, "user", question, user=user)
        yield AnswerEvent("conversation", data={"conversation_id": conv.id, "question_id": asked.id})
        got = AnswerCollector()
        try:
            for ev in self.answers.stream(kb, question, history):
                got.add(ev)
                if ev.type != "done":  # re-emitted below with the stored message id
                    yield ev
        finally:
            meta = {k: v for k, v in got.data.items() if k in ("refused", "standalone_question", "timings", "corrections", "prompt_tokens",
                                                           "unsupported_claims")}
            if got.error:
                meta["error"] = got.error
            saved = self.conversations.add_message(conv.id, "assistant", got.text or (got.error or ""), user=user,
                                                   sources=[s.as_dict() for s in got.sources], meta=meta)
        yield AnswerEvent("done", data={**got.data, "message_id": saved.id, "conversation_id": conv.id})

    def feedback(self, message_id: str, rating: int | None, comment: str | None = None, user: str = "") -> None:
        self.conversations.feedback(message_id, rating, comment, user=user)

    def correct(self, message_id: str, corrected_answer: str, user: str = "") -> str:
        """Store the user's right answer to the question this message answered; later questions
        like it in the same knowledge base get it as a high-priority source."""
        question, msg, conv_kb = self.conversations.question_for(message_id, user)
        if not conv_kb:
            raise RagkbError("This answer's conversation has no knowledge base to attach the correction to.")
        if msg.role != "assistant":
            raise RagkbError("Only answers can be corrected.")
        cid = self.conversations.add_correction(conv_kb, question, corrected_answer, user=user,
                                                message_id=message_id, original_answer=msg.content)
        if msg.rating is None:
            self.conversations.feedback(message_id, -1, None, user=user)
        return cid

    def correction(self, correction_id: str) -> dict:
        """A stored correction: id, knowledge_base (its current name), question, answer, message_id."""
        return self.conversations.correction(correction_id)

    def bad_cases_jsonl(self, user: str | None = None, kb: str | None = None) -> str:
        """The evaluation-set export; `kb`: only that knowledge base's cases (an unknown one is an error)."""
        if kb is not None:
            kb = self.store.get(kb).name
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.conversations.bad_cases(user)
                       if kb is None or r["kb"] == kb)
