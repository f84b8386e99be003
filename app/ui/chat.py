"""Chat and conversation handlers: streaming answers with sources, and the stored conversations list."""

from __future__ import annotations

import time

import gradio as gr

from app.ui.common import Handlers, user_of
from app.ui.preview import preview_update
from app.ui.render import chat_messages, claim_flags, feedback_target, inert_links, last_answer_id, sources_html
from app.ui_text import status_text, text
from rag.errors import RagkbError
from rag.events import AnswerCollector, Done, Failed, Started, Status, Token


class ChatHandlers(Handlers):
    def on_load(self, request: gr.Request) -> dict:
        """Everything comes from the database, so a reload or a restart loses nothing."""
        c, user = self.c, user_of(request)
        svc = self.svc(request)
        names = svc.kb_names()
        conversations = svc.conversations_of(user)
        kb_value = names[0] if names else None
        cid, messages, ids, last_sources, cited = "", [], [], "", []
        if conversations:
            conv = conversations[0]
            cid = conv.id
            stored = svc.messages(cid, user)
            messages, ids = chat_messages(stored, request)
            if conv.kb_name in names:
                kb_value = conv.kb_name
            last = next((m for m in reversed(stored) if m.role == "assistant"), None)
            if last is not None:
                last_sources = sources_html(last.sources, request, bool(last.meta.get("refused")), kb_value,
                                            self.links)
                cited = last.sources
        return {c.kb: gr.update(choices=names, value=kb_value), c.kb_status: "" if names else text(request, "no_kb"),
                c.convs: gr.update(choices=self.conv_choices(request), value=cid or None), c.chatbot: messages,
                c.conv_id: cid, c.msg_ids: ids, c.sources: last_sources, **self.documents_view(kb_value, request),
                c.src_pick: gr.update(**preview_update(cited)),
                c.target: last_answer_id(ids, messages), c.target_md: feedback_target(messages, request)}

    def on_send(self, message: str, history: list, cid: str, ids: list, name: str | None, request: gr.Request):
        """Stream one answer into the chat; the question and the answer are stored as they finish."""
        c, user = self.c, user_of(request)
        message = (message or "").strip()
        history, ids = list(history or []), list(ids or [])
        if not message:
            yield {c.question: ""}
            return
        if not name:
            yield {c.sources: text(request, "select_kb")}
            return
        history += [{"role": "user", "content": message}, {"role": "assistant", "content": "…"}]
        ids += ["", ""]
        yield {c.chatbot: history, c.question: "", c.sources: "", c.answer_meta: ""}
        started = time.perf_counter()
        got = AnswerCollector()
        try:
            for ev in map(got.add, self.svc(request).chat(cid or None, name, message, user=user)):
                if isinstance(ev, Started):
                    cid, ids[-2] = ev.conversation_id, ev.question_id
                    yield {c.conv_id: cid, c.msg_ids: ids, c.convs: gr.update(choices=self.conv_choices(request), value=cid)}
                elif isinstance(ev, Status) and not got.parts:
                    history[-1] = {"role": "assistant", "content": f"_{status_text(request, ev.text)}…_"}
                    yield {c.chatbot: history}
                elif isinstance(ev, (Token, Failed)):
                    history[-1] = {"role": "assistant", "content": self._shown(got, request)}
                    yield {c.chatbot: history}
                elif isinstance(ev, Done):
                    ids[-1] = ev.message_id or ""
                    history[-1] = {"role": "assistant", "content": self._shown(got, request)}
        except RagkbError as exc:
            history[-1] = {"role": "assistant", "content": f"{text(request, 'error')}: {exc}"}
            yield {c.chatbot: history, c.answer_meta: f"⚠️ {exc}"}
            return
        srcs = [s.as_dict() for s in got.sources]
        yield {c.chatbot: history, c.sources: sources_html(srcs, request, got.refused, name, self.links), c.conv_id: cid,
               c.src_pick: gr.update(**preview_update(srcs)),
               c.msg_ids: ids, c.convs: gr.update(choices=self.conv_choices(request), value=cid or None),
               c.target: ids[-1], c.target_md: text(request, "feedback_on", answer=" ".join(got.text.split())[:80]),
               c.answer_meta: text(request, "answered", seconds=f"{time.perf_counter() - started:.1f}", n=len(srcs))}

    @staticmethod
    def _shown(got: AnswerCollector, request) -> str:  # noqa: ANN001
        """The answer as the chat shows it: text, a model error, unsupported claims flagged below it."""
        shown = inert_links(got.text)
        if got.error:
            shown = (shown + "\n\n" if shown else "") + f"{text(request, 'model_error')}: {got.error}"
        flags = claim_flags(got.unsupported_claims, request)
        return shown + ("\n\n" + "\n\n".join(flags) if flags else "")

    # -- conversations --------------------------------------------------------------------------
    def on_new_conversation(self) -> dict:
        c = self.c
        return {c.chatbot: [], c.conv_id: "", c.msg_ids: [], c.sources: "", c.convs: gr.update(value=None),
                c.target: "", c.target_md: "", c.src_pick: gr.update(**preview_update([]))}

    def on_pick_conversation(self, cid: str | None, request: gr.Request) -> dict:
        c, user = self.c, user_of(request)
        if not cid:
            return {}
        try:
            svc = self.svc(request)
            conv = svc.conversation(cid, user)
            stored = svc.messages(cid, user)
        except RagkbError as exc:
            return {c.conv_status: f"⚠️ {exc}"}
        messages, ids = chat_messages(stored, request)
        last = next((m for m in reversed(stored) if m.role == "assistant"), None)
        known = conv.kb_name if conv.kb_name in self.kb_choices(request) else None
        cited = last.sources if last else []
        out = {c.chatbot: messages, c.conv_id: cid, c.msg_ids: ids, c.conv_status: "", c.conv_title: conv.title,
               c.src_pick: gr.update(**preview_update(cited)),
               c.sources: sources_html(last.sources, request, bool(last.meta.get("refused")), known, self.links)
               if last else "",
               c.target: last_answer_id(ids, messages), c.target_md: feedback_target(messages, request)}
        if known:
            out.update({c.kb: known, c.docs: self.docs_table(known, request)})
        return out

    def on_rename_conversation(self, cid: str, title: str, request: gr.Request) -> dict:
        c, user = self.c, user_of(request)
        if not cid:
            return {c.conv_status: text(request, "no_conversation")}
        try:
            self.svc(request).rename_conversation(cid, title or "", user)
        except RagkbError as exc:
            return {c.conv_status: f"⚠️ {exc}"}
        return {c.conv_status: "", c.convs: gr.update(choices=self.conv_choices(request), value=cid)}

    def on_delete_conversation(self, cid: str, request: gr.Request) -> dict:
        c, user = self.c, user_of(request)
        if not cid:
            return {c.conv_status: text(request, "no_conversation")}
        try:
            self.svc(request).delete_conversation(cid, user)
        except RagkbError as exc:
            return {c.conv_status: f"⚠️ {exc}"}
        return {c.conv_status: text(request, "conversation_deleted"),
                c.convs: gr.update(choices=self.conv_choices(request), value=None),
                c.chatbot: [], c.conv_id: "", c.msg_ids: [], c.sources: ""}

    def wire(self, demo: gr.Blocks) -> None:
        c = self.c
        demo.load(self.on_load, None, [c.kb, c.kb_status, c.convs, c.chatbot, c.conv_id, c.msg_ids, c.sources,
                                       c.docs, c.doc_pick, c.target, c.target_md, c.src_pick])
        chat_out = [c.chatbot, c.question, c.sources, c.conv_id, c.msg_ids, c.convs, c.target, c.target_md,
                    c.answer_meta, c.src_pick]
        chat_in = [c.question, c.chatbot, c.conv_id, c.msg_ids, c.kb]
        c.send.click(self.on_send, chat_in, chat_out, concurrency_id="chat")
        c.question.submit(self.on_send, chat_in, chat_out, concurrency_id="chat")
        cleared = [c.chatbot, c.conv_id, c.msg_ids, c.sources, c.convs, c.target, c.target_md, c.src_pick]
        c.new_conv_btn.click(self.on_new_conversation, None, cleared)
        # The chatbot's own "clear" button starts a new conversation; the old one stays in the list.
        c.chatbot.clear(self.on_new_conversation, None, cleared)
        c.convs.input(self.on_pick_conversation, [c.convs], [c.chatbot, c.conv_id, c.msg_ids, c.sources, c.conv_status,
                                                            c.kb, c.conv_title, c.target, c.target_md, c.docs,
                                                            c.src_pick])
        c.conv_rename_btn.click(self.on_rename_conversation, [c.conv_id, c.conv_title], [c.conv_status, c.convs])
        c.conv_delete_btn.click(self.on_delete_conversation, [c.conv_id],
                                [c.conv_status, c.convs, c.chatbot, c.conv_id, c.msg_ids, c.sources])
