"""What the signed-in user may do on the selected knowledge base: the controls their role does not allow are hidden
(the service refuses them anyway, app.access), and an owner manages its members here."""

from __future__ import annotations

import gradio as gr

from app.access import EDITOR, OWNER, role_at_least
from app.ui.common import Handlers
from app.ui_text import text
from rag.errors import RagkbError


class MemberHandlers(Handlers):
    def rights(self, kb: str | None, request: gr.Request) -> dict:
        c = self.c
        try:
            role = self.svc(request).role(kb) if kb else None
        except RagkbError:
            role = None
        editor, owner = role_at_least(role, EDITOR), role_at_least(role, OWNER)
        show_members = owner and self.service.login_required()  # no users: nobody to grant to
        out = {c.owner_tools: gr.update(visible=owner or not kb), c.editor_tools: gr.update(visible=editor),
               c.doc_delete_btn: gr.update(visible=editor), c.chunk_edit: gr.update(visible=editor),
               c.index_box: gr.update(visible=owner), c.members_box: gr.update(visible=show_members),
               c.members_md: self._members(kb, request) if show_members else "", c.members_status: ""}
        return out

    def _members(self, kb: str, request: gr.Request) -> str:
        members = self.svc(request).members(kb)
        if not members:
            return text(request, "members_none")
        return "\n\n".join(text(request, "member_line", user=u, role=text(request, f"role_{r}"))
                           for u, r in members.items())

    def on_grant(self, kb: str | None, user: str, role: str, request: gr.Request) -> dict:
        c = self.c
        if not kb:
            return {c.members_status: text(request, "select_kb")}
        try:
            self.svc(request).grant(kb, (user or "").strip(), role)
        except RagkbError as exc:
            return {c.members_status: f"⚠️ {exc}"}
        return {c.members_status: text(request, "granted", user=user.strip(), role=text(request, f"role_{role}")),
                c.members_md: self._members(kb, request), c.member_name: ""}

    def on_revoke(self, kb: str | None, user: str, request: gr.Request) -> dict:
        c = self.c
        if not kb:
            return {c.members_status: text(request, "select_kb")}
        try:
            self.svc(request).revoke(kb, (user or "").strip())
        except RagkbError as exc:
            return {c.members_status: f"⚠️ {exc}"}
        return {c.members_status: text(request, "revoked", user=user.strip()), c.members_md: self._members(kb, request),
                c.member_name: ""}

    def wire(self) -> None:
        c = self.c
        shown = [c.owner_tools, c.editor_tools, c.doc_delete_btn, c.chunk_edit, c.index_box, c.members_box,
                 c.members_md, c.members_status]
        c.kb.change(self.rights, [c.kb], shown)
        c.grant_btn.click(self.on_grant, [c.kb, c.member_name, c.member_role], [c.members_status, c.members_md,
                                                                               c.member_name])
        c.revoke_btn.click(self.on_revoke, [c.kb, c.member_name], [c.members_status, c.members_md, c.member_name])
