"""Feedback handlers: 👍/👎 (on a chat row or with a comment), corrections, the bad-case export."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from app.ui.common import Handlers, user_of
from app.ui_text import text
from rag.errors import RagkbError


class FeedbackHandlers(Handlers):
    def on_like(self, ids: list, data: gr.LikeData, request: gr.Request) -> dict:
        c = self.c
        index = data.index if isinstance(data.index, int) else (data.index[0] if data.index else 0)
        mid = ids[index] if ids and 0 <= index < len(ids) else ""
        if not mid:
            return {c.fb_status: text(request, "no_answer_to_rate")}
        rating = 1 if data.liked is True else (-1 if data.liked is False else None)
        try:
            self.svc(request).feedback(mid, rating, None, user_of(request))
        except RagkbError as exc:
            return {c.fb_status: f"⚠️ {exc}"}
        answer = " ".join(str(data.value).split())[:80] if data.value else ""
        return {c.fb_status: text(request, "feedback_saved"), c.target: mid,
                c.target_md: text(request, "feedback_on", answer=answer)}

    def rate(self, value: int):  # noqa: ANN201
        def handler(mid: str, note: str, request: gr.Request) -> dict:
            c = self.c
            if not mid:
                return {c.fb_status: text(request, "no_answer_to_rate")}
            try:
                self.svc(request).feedback(mid, value, note, user_of(request))
            except RagkbError as exc:
                return {c.fb_status: f"⚠️ {exc}"}
            return {c.fb_status: text(request, "feedback_saved"), c.comment: ""}
        return handler

    def on_correct(self, mid: str, answer: str, request: gr.Request) -> dict:
        c = self.c
        if not mid:
            return {c.fb_status: text(request, "no_answer_to_rate")}
        if not (answer or "").strip():
            return {c.fb_status: text(request, "empty_correction")}
        try:
            saved = self.svc(request).correct(mid, answer, user_of(request))
        except RagkbError as exc:
            return {c.fb_status: f"⚠️ {exc}"}
        return {c.fb_status: text(request, "correction_saved", kb=saved["knowledge_base"]), c.correction: ""}

    def on_export(self, request: gr.Request) -> dict:
        # One user's own cases when login is on; everything when it is off (single user).
        user = user_of(request)
        data = self.svc(request).bad_cases_jsonl(user if self.service.settings.user_list() else None)
        out = Path(tempfile.mkdtemp(prefix="ragkb-export-")) / "ragkb-bad-cases.jsonl"
        out.write_text(data, encoding="utf-8")
        return {self.c.export_file: str(out), self.c.export_status: text(request, "exported", n=data.count("\n"))}

    def wire(self) -> None:
        c = self.c
        c.chatbot.like(self.on_like, [c.msg_ids], [c.fb_status, c.target, c.target_md])
        c.up_btn.click(self.rate(1), [c.target, c.comment], [c.fb_status, c.comment])
        c.down_btn.click(self.rate(-1), [c.target, c.comment], [c.fb_status, c.comment])
        c.correct_btn.click(self.on_correct, [c.target, c.correction], [c.fb_status, c.correction])
        c.export_btn.click(self.on_export, None, [c.export_file, c.export_status])
