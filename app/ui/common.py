"""What every group of UI handlers shares: the service, the layout, the user, and the lists they refresh."""

from __future__ import annotations

import gradio as gr

from app.access import NOBODY
from app.services import RagkbService
from app.ui.layout import Layout
from app.ui_text import note_text, text
from rag.errors import RagkbError


def user_of(request: gr.Request | None) -> str:
    return (getattr(request, "username", None) or "") if request is not None else ""


class Handlers:
    """Handlers return {component: new value}; a component left out keeps its value."""

    def __init__(self, service: RagkbService, c: Layout):
        self.service, self.c = service, c

    @property
    def links(self) -> bool:
        """Cited PDF pages open as links to the API's page image, unless the API needs a key."""
        return not self.service.auth_required()

    def svc(self, request: gr.Request | None):  # noqa: ANN201
        """The service as the signed-in user may use it (app.access): their knowledge bases, their conversations.
        A page opened before the first user was added, with no login, gets nothing until the server restarts."""
        name = user_of(request)
        if not name and self.service.login_required():
            return self.service.as_user(NOBODY)
        return self.service.as_user(self.service.user_named(name))

    def kb_choices(self, request) -> list[str]:  # noqa: ANN001
        return self.svc(request).kb_names()

    def conv_choices(self, request) -> list[tuple[str, str]]:  # noqa: ANN001
        return [(c.title or "…", c.id) for c in self.svc(request).conversations_of(user_of(request))]

    def docs_table(self, kb: str | None, request=None) -> dict:  # noqa: ANN001
        """The documents table, its headers in the UI language."""
        headers = [text(request, k) for k in ("col_name", "col_status", "col_pages", "col_chunks", "col_size",
                                              "col_language", "col_model", "col_added", "col_note")]
        if not kb:
            return {"headers": headers, "data": []}
        try:
            svc = self.svc(request)
            model = svc.kb(kb).embedding_model
            rows, langs = svc.documents(kb), svc.document_languages(kb)
        except RagkbError:
            return {"headers": headers, "data": []}
        return {"headers": headers, "data": [
            [d.filename, text(request, f"status_{d.status}"), d.pages or "", d.chunks, size_label(d.size_bytes), langs.get(d.id, ""),
             model.rsplit("/", 1)[-1], d.created_at.strftime("%Y-%m-%d %H:%M"), d.error or note_text(request, d.warnings or "")]
            for d in rows]}

    def doc_choices(self, kb: str | None, request=None) -> list[str]:  # noqa: ANN001
        if not kb:
            return []
        try:
            return [d.filename for d in self.svc(request).documents(kb)]
        except RagkbError:
            return []

    def documents_view(self, kb: str | None, request=None) -> dict:  # noqa: ANN001
        """The documents table and the document picker for `kb` (the picked document's chunks cleared)."""
        return {self.c.docs: self.docs_table(kb, request),
                self.c.doc_pick: gr.update(choices=self.doc_choices(kb, request), value=None)}


def size_label(n: int | None) -> str:
    if not n:
        return ""
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(n / 1024, 0.1):.1f} KB"
