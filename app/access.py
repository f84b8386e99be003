"""The service as one user sees it: every face (web UI, REST API, OpenAI-compatible API) calls `RagkbService`
through `service.as_user(user)`, so what a role allows is decided here once, not in each face.

A knowledge base the user holds no role on does not exist for them (404, absent from every list); one they hold
too small a role on refuses with the reason (403). Conversations, feedback and corrections are the user's own.
A method not in the tables below is not available to a signed-in user at all (deny by default).
"""

from __future__ import annotations

import inspect

from rag.errors import Forbidden, KnowledgeBaseNotFound
from rag.users import ANYONE, EDITOR, OWNER, VIEWER, User, role_at_least  # noqa: F401  (the faces take them from here)

NOBODY = User(" not signed in")  # a web page without a login where one is needed: no user has this name, no role

# method -> the role it needs on the knowledge base it names (parameter kb, name or old)
NEEDS = {
    **dict.fromkeys(("kb", "embedding_note", "reindex_status", "documents", "document_languages", "document_chunks",
                     "page_image", "source_view", "search", "retrieval_test", "stream_answer", "chat", "switch_kb",
                     "bad_cases_jsonl"), VIEWER),
    **dict.fromkeys(("ingest_paths", "ingest_uploads", "delete_document", "set_chunk_enabled"), EDITOR),
    **dict.fromkeys(("rename_kb", "delete_kb", "check_kb", "build_index", "start_index_build", "switch_index",
                     "cancel_index_build", "members", "grant", "revoke"), OWNER),
    # the user's own records: no knowledge base named, `user` filled in
    **dict.fromkeys(("conversations_of", "conversation", "messages", "rename_conversation", "delete_conversation",
                     "feedback", "correct"), None),
}
OPEN = {"settings", "embedding_models", "upload_problem", "too_large_upload", "warm_up", "auth_required"}
WHAT = {VIEWER: "searching and asking", EDITOR: "adding, deleting and editing documents",
        OWNER: "renaming, deleting, re-indexing and granting"}
_KB_PARAMS = ("kb", "name", "old")


class UserService:
    """`RagkbService` for `user`: the same method names, checked."""

    def __init__(self, service, user: User):  # noqa: ANN001
        self._service, self.user = service, user

    def role(self, kb: str) -> str | None:
        """The user's role on `kb` (None: none, and then the knowledge base is not theirs to see)."""
        return self._service.users.role(self._service.kb(kb).id, self.user)

    def require(self, kb: str, needed: str = VIEWER):  # noqa: ANN201
        """The knowledge base, when the user may do what `needed` allows on it."""
        found = self._service.kb(kb)
        have = self._service.users.role(found.id, self.user)
        if have is None:
            raise KnowledgeBaseNotFound(kb)
        if not role_at_least(have, needed):
            raise Forbidden(f"'{self.user.name}' is a {have} of knowledge base '{found.name}': {WHAT[needed]} needs "
                            f"the {needed} role (ask one of its owners).")
        return found

    def list_kbs(self) -> list:
        return [kb for kb in self._service.list_kbs() if self._service.users.role(kb.id, self.user)]

    def kb_names(self) -> list[str]:
        return [kb.name for kb in self.list_kbs()]

    def create_kb(self, name: str):  # noqa: ANN201
        """Anyone signed in may create one, and owns it."""
        created = self._service.create_kb(name)
        if self.user.name and not self.user.admin:
            self._service.users.grant(created.id, self.user.name, OWNER)
        return created

    def __getattr__(self, name: str):  # noqa: ANN204
        if name in OPEN:
            return getattr(self._service, name)
        if name not in NEEDS:
            raise AttributeError(f"'{name}' is not available to a signed-in user")
        fn, needed = getattr(self._service, name), NEEDS[name]
        sig = inspect.signature(fn)

        def checked(*args, **kwargs):  # noqa: ANN202
            bound = sig.bind_partial(*args, **kwargs)
            if "user" in sig.parameters:  # (so no checked method may take another user's name as `user`)
                bound.arguments["user"] = self.user.name
            kb = next((bound.arguments[p] for p in _KB_PARAMS if p in bound.arguments), None)
            if needed and kb is not None:
                self.require(kb, needed)
            return fn(*bound.args, **bound.kwargs)

        return checked


def as_user(service, user: User):  # noqa: ANN001, ANN201
    """The service itself for nobody-signed-in (every right, one shared history), else the checked view."""
    return service if user == ANYONE else UserService(service, user)
