"""What every group of UI handlers shares: the service, the layout, the user, and the lists they refresh."""

from __future__ import annotations

import gradio as gr

from app.services import RagkbService
from app.ui.layout import Layout
from rag.errors import RagkbError


def user_of(request: gr.Request | None) -> str:
    return (getattr(request, "username", None) or "") if request is not None else ""


class Handlers:
    """Handlers return {component: new value}; a component left out keeps its value."""

    def __init__(self, service: RagkbService, c: Layout):
        self.service, self.c = service, c

    def kb_choices(self) -> list[str]:
        return self.service.kb_names()

    def conv_choices(self, user: str) -> list[tuple[str, str]]:
        return [(c.title or "…", c.id) for c in self.service.conversations_of(user)]

    def docs_table(self, kb: str | None) -> list[list]:
        if not kb:
            return []
        try:
            rows = self.service.documents(kb)
        except RagkbError:
            return []
        return [[d.filename, d.status, d.pages or "", d.chunks, d.created_at.strftime("%Y-%m-%d %H:%M"),
                 d.error or d.warnings or ""] for d in rows]

    def doc_choices(self, kb: str | None) -> list[str]:
        if not kb:
            return []
        try:
            return [d.filename for d in self.service.documents(kb)]
        except RagkbError:
            return []

    def documents_view(self, kb: str | None) -> dict:
        """The documents table and the document picker for `kb`."""
        return {self.c.docs: self.docs_table(kb), self.c.doc_pick: gr.update(choices=self.doc_choices(kb), value=None)}
