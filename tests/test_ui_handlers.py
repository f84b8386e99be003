"""Web UI handlers called directly (no browser): each returns {component: value} for what it changes,
with the mock embedder and model (rag.mock). The browser tests (test_web_ui.py) drive the real page."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest

from app.services import RagkbService
from app.ui.chat import ChatHandlers
from app.ui.feedback import FeedbackHandlers
from app.ui.knowledge_bases import KnowledgeBaseHandlers
from app.ui.layout import build_layout
from app.ui_text import i18n
from rag.settings import Settings

ZH = SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"}, username=None)
EN = SimpleNamespace(headers={"accept-language": "en-US"}, username=None)


@pytest.fixture
def ui(tmp_path):
    service = RagkbService(Settings(data_dir=tmp_path / "data", embedding_model="mock:hash", llm_mode="mock",
                                    _env_file=None))
    with gr.Blocks():
        c = build_layout(i18n())
    doc = tmp_path / "报销.md"
    doc.write_text("# 报销\n\n报销单提交后五个工作日内付款。\n\n出差住宿每晚不超过六百元。\n", encoding="utf-8")
    yield service, c, doc
    service.close()


def test_create_ingest_and_ask_through_the_handlers(ui):
    service, c, doc = ui
    kbs = KnowledgeBaseHandlers(service, c)
    out = kbs.on_create("财务", ZH)
    assert out[c.kb]["value"] == "财务" and "财务" in out[c.kb_status] and out[c.docs] == []
    assert c.question not in out  # untouched components are not in the update
    steps = list(kbs.on_ingest("财务", [str(doc)], ZH, progress=lambda *a, **k: None))
    last = steps[-1]
    assert "data-status='ingested'" in last[c.ingest_results] and last[c.docs][0][0] == "报销.md"

    chat = ChatHandlers(service, c)
    steps = list(chat.on_send("报销后多久付款？", [], "", [], "财务", ZH))
    final = steps[-1]
    answer = final[c.chatbot][-1]["content"]
    assert "五个工作日" in answer and "[1]" in answer
    assert "报销.md" in final[c.sources] and final[c.target] == final[c.msg_ids][-1] != ""
    assert len(steps) > 3  # streamed: the chat updated while tokens came
    # the stored conversation is what a reload shows
    loaded = chat.on_load(ZH)
    assert loaded[c.conv_id] == final[c.conv_id] and loaded[c.chatbot][-1]["content"] == answer

    fb = FeedbackHandlers(service, c)
    saved = fb.on_correct(final[c.target], "五个工作日内付款。", ZH)
    assert "财务" in saved[c.fb_status] and saved[c.correction] == ""


def test_handlers_say_what_is_missing_instead_of_failing(ui):
    service, c, _ = ui
    kbs, chat = KnowledgeBaseHandlers(service, c), ChatHandlers(service, c)
    assert list(chat.on_send("hello?", [], "", [], None, EN))[-1] == {c.sources: "Select a knowledge base first."}
    assert kbs.on_delete("x", False, EN)[c.kb_status].startswith("Tick")
    assert "⚠️" in kbs.on_rename("nope", "new", EN)[c.kb_status]
    assert FeedbackHandlers(service, c).on_correct("", "x", EN) == {c.fb_status: "Ask a question first: feedback applies to an answer."}
