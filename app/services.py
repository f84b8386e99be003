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
from typing import TYPE_CHECKING

from ingest.pipeline import (  # noqa: F401  (the statuses are re-exported for the faces)
    FAILED, INGESTED, REPLACED, SKIPPED, FileResult, IngestSummary, ProgressFn, ingest_files, ingest_paths, too_large,
    unsupported_type,
)
from rag.conversations import Conversation, ConversationStore, Message
from rag.errors import NotAuthenticated, RagkbError, UserNotFound
from rag.events import AnswerCollector, AnswerEvent, Started
from rag.settings import Settings
from rag.store import KnowledgeBase, KnowledgeBaseStore
from rag.users import ANYONE, OWNER, VIEWER, User, UserInfo, UserStore


if TYPE_CHECKING:
    from rag.answer import AnswerService, ExplainedHit
    from rag.retrieval import SearchHit


class UploadRejected(RagkbError):
    """An uploaded file refused before ingest (size, type, name)."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name, self.reason = name, reason


class FileTooLarge(UploadRejected):
    """Over RAGKB_MAX_FILE_MB (HTTP 413)."""


class UnsupportedFileType(UploadRejected):
    """Not a file type ragkb reads (HTTP 415)."""


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
    refused: UploadRejected | None = None  # set by a face that already refused it (stopped reading at the limit)


@dataclass
class SourceView:
    filename: str
    page: int | None  # a PDF: the page to render
    section: str | None
    before: str  # text of the section before the passage (formats without pages)
    passage: str
    after: str


@dataclass
class ChunkView:
    id: str
    idx: int
    page: int | None
    section: str | None
    text: str
    enabled: bool


class RagkbService:
    def __init__(self, settings: Settings | None = None, store: KnowledgeBaseStore | None = None, llm=None):  # noqa: ANN001
        self.settings = settings or (store.settings if store else Settings())
        self.store = store or KnowledgeBaseStore(self.settings)
        self.conversations = ConversationStore(self.store.registry)
        self.users = UserStore(self.store.registry)
        self._llm, self._answers, self._answers_lock = llm, None, threading.Lock()
        self._ingest_lock = threading.Lock()  # one ingest at a time per process: the CPU is the limit

    @property
    def answers(self) -> AnswerService:
        """The answer chain, made on first use: importing it (LangChain's OpenAI client) costs commands that
        never answer (ragkb kb list, ingest, docs, search) about half a second each."""
        if self._answers is None:
            with self._answers_lock:
                if self._answers is None:
                    from rag.answer import AnswerService

                    self._answers = AnswerService(self.store, llm=self._llm, conversations=self.conversations)
        return self._answers

    def warm_up(self) -> None:
        self.answers.warm_up()

    def close(self) -> None:
        if self._answers is not None:
            self._answers.llm.close()
        self.store.close()

    # -- who is asking (app.access checks what they may do) -----------------------------------
    def auth_required(self) -> bool:
        """Login or a key is needed once a user exists or RAGKB_USERS / RAGKB_API_KEYS is set."""
        return bool(self.settings.user_list() or self.settings.api_key_list() or self.users.any())

    def login_required(self) -> bool:
        """The web UI asks for a login once RAGKB_USERS is set or a `ragkb user` exists (API keys alone: no login)."""
        return bool(self.settings.user_list() or self.users.any())

    def user_for_key(self, key: str | None) -> User:
        """Who an API key acts as: a `ragkb user key` key as its user; a RAGKB_API_KEYS key (the simple mode) sees
        everything; no key where none is needed: everyone. Anything else: NotAuthenticated."""
        import secrets

        if not self.auth_required():
            return ANYONE
        key = (key or "").strip()
        if key and any(secrets.compare_digest(key, k) for k in self.settings.api_key_list()):
            return ANYONE
        user = self.users.user_for_key(key)
        if user is None:
            raise NotAuthenticated("Missing or wrong API key: send 'Authorization: Bearer <key>' (ragkb user key NAME "
                                   "prints one).")
        return user

    def login(self, name: str, password: str) -> bool:
        """The web UI's login: a RAGKB_USERS entry (simple mode: sees every knowledge base) or a `ragkb user`."""
        import secrets

        if any(n == name and secrets.compare_digest(p.encode(), (password or "").encode())
               for n, p in self.settings.user_list()):
            return True
        return self.users.check_password(name, password) is not None

    def user_named(self, name: str | None) -> User:
        """The signed-in user behind a web UI session (a RAGKB_USERS name is an admin of the simple mode)."""
        if not name:
            return ANYONE
        return self.users.get(name) or User(name, admin=True)

    def as_user(self, user: User):  # noqa: ANN201 - app.access.UserService, or self for everyone
        from app.access import as_user

        return as_user(self, user)

    def require(self, name: str, needed: str = VIEWER) -> KnowledgeBase:
        """Everyone may do everything when nobody signs in (app.access.UserService checks the roles)."""
        return self.kb(name)

    def role(self, name: str) -> str | None:
        self.kb(name)
        return OWNER

    def members(self, name: str) -> dict[str, str]:
        """Who holds which role on the knowledge base (admins hold every role without being listed)."""
        return self.users.members(self.kb(name).id)

    def grant(self, name: str, member: str, role: str) -> dict[str, str]:
        self.users.grant(self.kb(name).id, member, role)
        return self.members(name)

    def revoke(self, name: str, member: str) -> dict[str, str]:
        if not self.users.revoke(self.kb(name).id, member):
            raise UserNotFound(f"'{member}' holds no role on knowledge base '{name}'.")
        return self.members(name)

    def add_user(self, name: str, password: str, admin: bool = False) -> User:
        return self.users.add(name, password, admin)

    def list_users(self) -> list[UserInfo]:
        return self.users.list()

    def remove_user(self, name: str) -> None:
        self.users.remove(name)

    def new_api_key(self, name: str) -> str:
        return self.users.new_key(name)

    def revoke_api_key(self, key_or_prefix: str) -> str:
        return self.users.revoke_key(key_or_prefix)

    # -- knowledge bases --------------------------------------------------------------------
    def list_kbs(self) -> list[KnowledgeBase]:
        return self.store.list()

    def kb(self, name: str) -> KnowledgeBase:
        """One knowledge base (an unknown name: KnowledgeBaseNotFound)."""
        return self.store.get(name)

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
        self.users.kb_deleted(kb.id)

    def check_kb(self, name: str) -> tuple[int, dict]:
        """Repair what an interrupted run left, then compare registry, Chroma and BM25: (repaired, report)."""
        fixed = self.store.recover(self.store.get_row(name))
        return fixed, self.store.verify(name)

    # -- switching a knowledge base's embedding model (rag.reindex) ---------------------------
    def reindex_status(self, name: str):  # noqa: ANN201 - rag.reindex.BuildStatus | None
        from rag import reindex

        return reindex.status(self.store, name)

    def build_index(self, name: str, model: str | None = None, progress=None):  # noqa: ANN001, ANN201
        """Build (or resume) the knowledge base's index with `model` beside the serving one, and compare the two;
        returns the BuildStatus. The knowledge base keeps serving on its old index."""
        from rag import reindex

        reindex.start(self.store, name, model)
        return reindex.build(self.store, name, progress=progress)

    def start_index_build(self, name: str, model: str | None = None):  # noqa: ANN201
        """The same in a background thread (web UI, API): checks the model and the knowledge base first, so what
        cannot start fails here; returns the BuildStatus as started."""
        from rag import reindex

        return reindex.build_in_background(self.store, name, model)

    def switch_index(self, name: str) -> KnowledgeBase:
        """Serve the knowledge base from its new index (the user confirmed); the old one is deleted after."""
        from rag import reindex

        return reindex.switch(self.store, name)

    def cancel_index_build(self, name: str) -> bool:
        from rag import reindex

        return reindex.cancel(self.store, name)

    def embedding_models(self) -> list[str]:
        """Models a new index can be built with here without configuring anything: the configured default, then
        the packaged ones."""
        from rag.embeddings import packaged_models

        return list(dict.fromkeys([self.settings.embedding_model, *packaged_models()]))

    def embedding_note(self, name: str) -> str | None:
        """What to tell the user about a knowledge base built with an older embedding model, or None."""
        from rag.reindex import older_model_note

        return older_model_note(self.store.get(name).embedding_model, self.settings.embedding_model)

    # -- documents --------------------------------------------------------------------------
    def documents(self, kb: str):
        return self.store.documents(kb)

    def document_languages(self, kb: str) -> dict[str, str]:
        """{document id: "zh" | "en" | "zh+en"} for the documents table."""
        return self.store.document_languages(kb)

    def delete_document(self, kb: str, ref: str):
        return self.store.delete_document(kb, ref)

    def document_chunks(self, kb: str, document: str, contains: str | None = None) -> tuple[object, list[ChunkView]]:
        """A document's chunks in order (page, section, text, enabled); `contains`: only chunks holding that
        text (case-insensitive). Returns (the document row, the chunks)."""
        doc, rows = self.store.document_chunks(kb, document)
        needle = " ".join((contains or "").split()).lower()
        views = [ChunkView(r.id, r.idx, r.page, r.section, r.text, enabled) for r, enabled in rows
                 if not needle or needle in " ".join(r.text.split()).lower()]
        return doc, views

    def set_chunk_enabled(self, kb: str, chunk_id: str, enabled: bool) -> ChunkView:
        """Switch a chunk off (excluded from search and answers, kept and shown as disabled) or back on."""
        row, _ = self.store.set_chunk_enabled(kb, chunk_id, enabled)
        return ChunkView(row.id, row.idx, row.page, row.section, row.text, enabled)

    # -- source preview -----------------------------------------------------------------------
    def page_image(self, kb: str, document: str, page: int, highlight: str | None = None) -> tuple[bytes, int]:
        """A PDF page as PNG with `highlight` (a cited passage) marked: (PNG bytes, boxes highlighted)."""
        from rag.preview import render_page

        doc = self._original(kb, document)
        if Path(doc[0].filename).suffix.lower() != ".pdf":
            raise RagkbError(f"'{doc[0].filename}' is not a PDF: it has no pages to show (its passages are shown as text).")
        return render_page(doc[1], page, highlight)

    def source_view(self, kb: str, document: str, chunk_id: str) -> SourceView:
        """Where a cited chunk sits: for a PDF its page (render it with `page_image`); for the other formats the
        section of the original holding it, split into text before, the passage, and text after."""
        doc, path = self._original(kb, document)
        chunk = self.store.registry.chunks_by_ids([chunk_id]).get(chunk_id)
        if chunk is None or chunk.doc_id != doc.id:
            from rag.errors import ChunkNotFound

            raise ChunkNotFound(chunk_id, kb)
        if Path(doc.filename).suffix.lower() == ".pdf":
            return SourceView(doc.filename, chunk.page, chunk.section, "", chunk.text, "")
        from ingest.loaders import file_type, load

        loaded = load(path, file_type(Path(doc.filename)) or "txt", ocr=False)
        flat = " ".join(chunk.text.split())
        for seg in loaded.segments:
            squeezed = " ".join(seg.text.split())
            start = squeezed.find(flat)
            if start < 0:  # the chunker trimmed it: its first words still place it
                start = squeezed.find(flat[:60])
            if start >= 0:
                end = min(start + len(flat), len(squeezed))
                return SourceView(doc.filename, None, seg.section, squeezed[:start], squeezed[start:end], squeezed[end:])
        return SourceView(doc.filename, None, chunk.section, "", chunk.text, "")

    def _original(self, kb: str, document: str):  # noqa: ANN202
        row = self.store.find_document(self.store.get_row(kb), document)
        path = self.store.original_of(row)
        if path is None:
            raise RagkbError(f"The original of '{row.filename}' is not kept (added before previews existed, or its "
                             "file was removed): add the file again to preview it.")
        return row, path

    def upload_problem(self, upload: Upload) -> UploadRejected | None:
        """Why the upload cannot be ingested (checked before any work), or None."""
        name = safe_display_name(upload.name)
        if upload.refused:
            return upload.refused
        if why := unsupported_type(name):
            return UnsupportedFileType(name, why)
        size = upload.path.stat().st_size if upload.path.exists() else 0
        if why := too_large(size, self.settings.max_file_mb):
            return FileTooLarge(name, why)
        return None

    def too_large_upload(self, name: str) -> FileTooLarge:
        """For a face that stops reading an upload at the size limit."""
        return FileTooLarge(safe_display_name(name), f"file is over the {self.settings.max_file_mb:g} MB limit "
                                                     "(RAGKB_MAX_FILE_MB)")

    def ingest_paths(self, kb: str, paths: list[Path], progress: ProgressFn | None = None) -> IngestSummary:
        """Ingest files and folders from this machine (the CLI); the knowledge base is created if missing."""
        with self._ingest_lock:
            return ingest_paths(self.store, kb, paths, progress=progress)

    def ingest_uploads(self, kb: str, uploads: list[Upload], progress: ProgressFn | None = None) -> IngestSummary:
        """Ingest uploaded files under the names the user gave them; refused files are reported like
        any other failure and the rest of the batch goes on."""
        from ingest.pipeline import Progress

        self.kb(kb)  # unknown knowledge base: a clear error, nothing created by accident
        refused, accepted = [], []
        for u in uploads:
            problem = self.upload_problem(u)
            if problem is not None:
                bad = FileResult(problem.name, problem.name, FAILED, problem.reason)
                refused.append(bad)
                if progress:
                    progress(Progress("done", 0, len(uploads), bad.name, result=bad))
            else:
                accepted.append((u.path, safe_display_name(u.name)))
        with self._ingest_lock:
            summary = ingest_files(self.store, kb, accepted, progress=progress, uploaded=True)
        summary.results = refused + summary.results
        return summary

    def search(self, kb: str, query: str, k: int | None = None, documents: list[str] | None = None) -> list[SearchHit]:
        from rag.retrieval import search

        return search(self.store, kb, query, k=k, documents=documents)

    def retrieval_test(self, kb: str, query: str, k: int | None = None) -> list[ExplainedHit]:
        """What the assistant would see for `query`: the ranked blocks with both legs' ranks, the answer
        gate's verdict and why, and which would reach the model (web UI tab, `search --explain`, API)."""
        if not query.strip():
            raise RagkbError("The query is empty.")
        return self.answers.explain(kb, query, k)

    # -- answers ------------------------------------------------------------------------------
    def stream_answer(self, kb: str, question: str, history: list[tuple[str, str]] | None = None
                      ) -> Iterator[AnswerEvent]:
        """An answer outside any stored conversation (the OpenAI route, `ragkb ask/chat`): the caller
        holds the history. User corrections apply as in the web UI."""
        return self.answers.stream(kb, question, history or [])

    def chat(self, conversation_id: str | None, kb: str, question: str, user: str = "") -> Iterator[AnswerEvent]:
        """Answer `question` inside a conversation (created when None), saving both messages.

        Yields `Started` (the conversation id and the stored question's id), the chain's events, and
        a final `Done` that carries the stored answer's message id.
        """
        question = question.strip()
        if not question:
            raise RagkbError("The question is empty.")
        self.kb(kb)
        if conversation_id:
            conv = self.conversations.get(conversation_id, user)
            if conv.kb_name != kb:
                self.conversations.set_kb(conv.id, kb, user)
        else:
            conv = self.conversations.create(user=user, kb_name=kb)
        history = [(m.role, m.content) for m in self.conversations.messages(conv.id, user)
                   if m.role in ("user", "assistant") and not m.meta.get("error")]
        asked = self.conversations.add_message(conv.id, "user", question, user=user)
        yield Started(conv.id, asked.id)
        got = AnswerCollector()
        try:
            for ev in self.answers.stream(kb, question, history):
                got.add(ev)
                if ev.type != "done":  # re-emitted below with the stored message id
                    yield ev
        finally:
            d = got.done
            meta = {"refused": d.refused, "standalone_question": d.standalone_question, "timings": d.timings,
                    "corrections": d.corrections, "prompt_tokens": d.prompt_tokens,
                    "unsupported_claims": d.unsupported_claims} if d else {}
            if got.error:
                meta["error"] = got.error
            saved = self.conversations.add_message(conv.id, "assistant", got.text or (got.error or ""), user=user,
                                                   sources=[s.as_dict() for s in got.sources], meta=meta)
        yield got.done.stored(saved.id, conv.id)

    # -- conversations --------------------------------------------------------------------------
    def conversations_of(self, user: str = "") -> list[Conversation]:
        return self.conversations.list(user)

    def conversation(self, conversation_id: str, user: str = "") -> Conversation:
        return self.conversations.get(conversation_id, user)

    def messages(self, conversation_id: str, user: str = "") -> list[Message]:
        return self.conversations.messages(conversation_id, user)

    def rename_conversation(self, conversation_id: str, title: str, user: str = "") -> Conversation:
        return self.conversations.rename(conversation_id, title, user)

    def delete_conversation(self, conversation_id: str, user: str = "") -> None:
        self.conversations.delete(conversation_id, user)

    def switch_kb(self, conversation_id: str, kb: str, user: str = "") -> None:
        """The user picked another knowledge base for this conversation."""
        self.conversations.set_kb(conversation_id, kb, user)

    def feedback(self, message_id: str, rating: int | None, comment: str | None = None, user: str = "") -> None:
        self.conversations.feedback(message_id, rating, comment, user=user)

    def correct(self, message_id: str, corrected_answer: str, user: str = "") -> dict:
        """Store the user's right answer to the question this message answered; later questions
        like it in the same knowledge base get it as a high-priority source. Returns the stored
        correction (as `correction`)."""
        question, msg, conv_kb = self.conversations.question_for(message_id, user)
        if not conv_kb:
            raise RagkbError("This answer's conversation has no knowledge base to attach the correction to.")
        if msg.role != "assistant":
            raise RagkbError("Only answers can be corrected.")
        cid = self.conversations.add_correction(conv_kb, question, corrected_answer, user=user,
                                                message_id=message_id, original_answer=msg.content)
        if msg.rating is None:
            self.conversations.feedback(message_id, -1, None, user=user)
        return self.correction(cid)

    def correction(self, correction_id: str) -> dict:
        """A stored correction: id, knowledge_base (its current name), question, answer, message_id."""
        return self.conversations.correction(correction_id)

    def bad_cases_jsonl(self, user: str | None = None, kb: str | None = None) -> str:
        """The evaluation-set export; `kb`: only that knowledge base's cases (an unknown one is an error)."""
        if kb is not None:
            kb = self.store.get(kb).name
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.conversations.bad_cases(user)
                       if kb is None or r["kb"] == kb)
