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
    assert out[c.kb]["value"] == "财务" and "财务" in out[c.kb_status] and out[c.docs]["data"] == []
    assert c.question not in out  # untouched components are not in the update
    steps = list(kbs.on_ingest("财务", [str(doc)], ZH, progress=lambda *a, **k: None))
    last = steps[-1]
    assert "data-status='ingested'" in last[c.ingest_results] and last[c.docs]["data"][0][0] == "报销.md"

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


def test_retrieval_test_and_switching_a_chunk_off_changes_the_answer(ui):
    from app.ui.workbench import WorkbenchHandlers

    service, c, doc = ui
    service.create_kb("财务")
    service.ingest_paths("财务", [doc])
    wb = WorkbenchHandlers(service, c)
    html = wb.on_retrieval_test("财务", "出差住宿每晚不超过多少？", 5, ZH)[c.rt_results]
    assert "进入提示词" in html and "报销.md" in html and "六百元" in html  # the verdict, in the UI language
    assert "<script" not in wb.on_retrieval_test("财务", "<script>alert(1)</script>", 5, EN)[c.rt_results]

    shown = wb.on_show_chunks("财务", "报销.md", "", ZH)
    target = next(cid for _, cid in shown[c.chunk_pick]["choices"] if "六百元" in _)
    before = list(ChatHandlers(service, c).on_send("出差住宿每晚不超过多少？", [], "", [], "财务", ZH))[-1]
    assert "六百元" in before[c.chatbot][-1]["content"]
    off = wb.switch(False)("财务", "报销.md", target, "", ZH)
    assert "已停用" in off[c.chunk_status] and "class='disabled'" in off[c.chunks_html]
    after = list(ChatHandlers(service, c).on_send("出差住宿每晚不超过多少？", [], "", [], "财务", ZH))[-1]
    assert "六百元" not in after[c.chatbot][-1]["content"]  # the switched-off chunk is no longer an answer
    # still listed (as disabled), and back on with one click
    assert "六百元" in wb.on_show_chunks("财务", "报销.md", "六百", ZH)[c.chunks_html]
    wb.switch(True)("财务", "报销.md", target, "", ZH)
    assert "六百元" in wb.on_retrieval_test("财务", "出差住宿每晚不超过多少？", 5, ZH)[c.rt_results]


def test_documents_table_headers_follow_the_ui_language(ui):
    service, c, doc = ui
    service.create_kb("财务")
    service.ingest_paths("财务", [doc])
    kbs = KnowledgeBaseHandlers(service, c)
    zh, en = kbs.on_refresh("财务", ZH)[c.docs], kbs.on_refresh("财务", EN)[c.docs]
    assert zh["headers"][:2] == ["名称", "状态"] and en["headers"][:2] == ["Name", "Status"]
    row = dict(zip(en["headers"], en["data"][0]))
    assert row["Language"] == "zh" and row["Embedding model"] == "mock:hash" and row["Size"].endswith("KB")


def test_ingest_notes_follow_the_ui_language(ui, tmp_path):
    # the ingest writes its notes in English (CLI, API); the Chinese web UI shows them in Chinese
    from docs import zh_docx

    service, c, _ = ui
    kbs = KnowledgeBaseHandlers(service, c)
    kbs.on_create("制度", ZH)
    word = zh_docx(tmp_path / "制度.docx", image=True)
    last = list(kbs.on_ingest("制度", [str(word)], ZH, progress=lambda *a, **k: None))[-1]
    assert "⚠ 忽略了 1 张图片：只检索文字" in last[c.ingest_results] and "image(s)" not in last[c.ingest_results]
    zh, en = kbs.on_refresh("制度", ZH)[c.docs], kbs.on_refresh("制度", EN)[c.docs]
    assert zh["data"][0][-1] == "忽略了 1 张图片：只检索文字"
    assert en["data"][0][-1] == "1 image(s) ignored: only text is searched"


def test_ocr_notes_in_chinese():
    from app.ui_text import note_text
    from ingest.loaders.ocr import HOW_TO_ENABLE

    assert note_text(ZH, "read 2 page(s) by OCR (pages 1-2): check the text in the document's chunks") == \
        "已用 OCR 识别 2 页（第 1-2 页）：请在文档的片段中核对识别出的文字"
    hint = note_text(ZH, f"skipped pages 3, 5: no text layer (scanned images); {HOW_TO_ENABLE}")
    assert hint.startswith("跳过第 3, 5 页：没有文字层（扫描的图片）；要读取这些页面，请安装 OCR 扩展") and "pip install" in hint
    assert note_text(EN, HOW_TO_ENABLE) == HOW_TO_ENABLE


def test_source_preview_shows_the_pdf_page_highlighted_or_the_marked_section(ui, tmp_path):
    import numpy as np

    from app.ui.preview import PreviewHandlers
    from docs import zh_pdf

    service, c, doc = ui
    service.create_kb("财务")
    service.ingest_paths("财务", [doc, zh_pdf(tmp_path / "员工手册.pdf")])
    final = list(ChatHandlers(service, c).on_send("报销单需要附上发票原件吗？", [], "", [], "财务", ZH))[-1]
    choices = final[c.src_pick]["choices"]
    assert choices and all(label.startswith("[") for label, _ in choices)
    preview = PreviewHandlers(service, c)
    pdf_pick = next(value for label, value in choices if "员工手册.pdf, p. 2" in label)
    out = preview.on_pick("财务", pdf_pick, ZH)
    img = np.asarray(out[c.preview_image]["value"].convert("RGB"))
    assert out[c.preview_image]["visible"] and ((img[..., 0] > 200) & (img[..., 1] > 180) & (img[..., 2] < 150)).sum() > 500
    # a Markdown source: its section, the passage marked, everything escaped
    md_id = next(d.id for d in service.documents("财务") if d.filename == "报销.md")
    out = preview.on_pick("财务", f"{md_id} {service.document_chunks('财务', '报销.md')[1][0].id}", ZH)
    assert "<mark>" in out[c.preview_text] and "报销.md &gt; 报销" in out[c.preview_text] and not out[c.preview_image]["visible"]


def test_a_cited_pdf_page_is_a_link_to_its_highlighted_image(ui, tmp_path):
    from docs import zh_pdf

    service, c, _ = ui
    service.create_kb("财务 A")
    service.ingest_paths("财务 A", [zh_pdf(tmp_path / "员工手册.pdf")])
    final = list(ChatHandlers(service, c).on_send("报销单需要附上发票原件吗？", [], "", [], "财务 A", EN))[-1]
    html = final[c.sources]
    assert "href='/api/kbs/%E8%B4%A2%E5%8A%A1%20A/documents/" in html and "/pages/2.png?highlight=" in html
    assert "target='_blank'" in html


def test_an_answer_from_the_models_memory_is_flagged_now_and_after_a_reload(ui, monkeypatch):
    import rag.mock

    service, c, doc = ui
    memory = "一般来说，公司会在一个月内通过银行转账支付，具体情况请咨询人力资源部门。"
    extractive = rag.mock.extractive_reply
    monkeypatch.setattr(rag.mock, "extractive_reply",
                        lambda prompt: memory if "Context blocks:" in prompt else extractive(prompt))
    kbs = KnowledgeBaseHandlers(service, c)
    kbs.on_create("财务", ZH)
    list(kbs.on_ingest("财务", [str(doc)], ZH, progress=lambda *a, **k: None))
    chat = ChatHandlers(service, c)
    final = list(chat.on_send("报销后多久付款？", [], "", [], "财务", ZH))[-1]
    from app.ui_text import ZH as ZH_TEXT

    flag = ZH_TEXT["uncited_answer"]
    answer = final[c.chatbot][-1]["content"]
    assert answer.startswith(memory) and answer.endswith(flag)
    reloaded = chat.on_load(ZH)[c.chatbot][-1]["content"]
    assert reloaded == answer and flag in reloaded
    assert "probably comes from the model's own knowledge" in chat.on_load(EN)[c.chatbot][-1]["content"]


def test_progress_lines_follow_the_ui_language(ui):
    """A follow-up shows "understanding the follow-up question" while it is resolved: in Chinese for a Chinese browser."""
    service, c, doc = ui
    kbs = KnowledgeBaseHandlers(service, c)
    kbs.on_create("财务", ZH)
    list(kbs.on_ingest("财务", [str(doc)], ZH, progress=lambda *a, **k: None))
    chat = ChatHandlers(service, c)
    first = list(chat.on_send("报销后多久付款？", [], "", [], "财务", ZH))[-1]
    shown = [s[c.chatbot][-1]["content"] for s in
             chat.on_send("它需要附上什么？", first[c.chatbot], first[c.conv_id], first[c.msg_ids], "财务", ZH)
             if c.chatbot in s]
    assert "_正在理解追问…_" in shown, shown
    assert not any("understanding" in s for s in shown)


def test_the_index_panel_notes_an_older_model_and_refuses_a_bad_one(ui, tmp_path):
    """A knowledge base built with another model than the configured one is noted in the page's language; a
    model that cannot be loaded is a clear message and nothing starts."""
    from app.ui.index import IndexHandlers
    from rag.store import KnowledgeBaseStore

    service, c, _ = ui
    old = KnowledgeBaseStore(service.settings.model_copy(update={"embedding_model": "sentence-transformers/all-MiniLM-L6-v2"}))
    old.create("旧库")
    old.close()
    panel = IndexHandlers(service, c)
    view = panel.view("旧库", ZH)
    assert "较旧的模型 sentence-transformers/all-MiniLM-L6-v2" in view[c.index_info] and "mock:hash" in view[c.index_info]
    assert view[c.index_switch_btn]["visible"] is False and view[c.index_cancel_btn]["visible"] is False
    assert "较旧的嵌入模型" in view[c.kb_status]  # said in the sidebar, where the knowledge base is picked
    service.create_kb("新库")
    assert c.kb_status not in panel.view("新库", ZH)  # a current one: the sidebar's message stays
    steps = list(panel.on_build("旧库", "no-such/model", EN, progress=lambda *a, **k: None))
    assert "Unknown embedding model 'no-such/model'" in steps[-1][c.index_status]
    assert service.reindex_status("旧库") is None
    assert panel.on_switch("旧库", EN)[c.index_status].startswith("⚠️")


def test_a_stored_reply_with_an_image_or_link_comes_back_inert():
    """A reloaded conversation renders a reply's tracking image, raw <img> and links as plain text too."""
    from app.ui.render import chat_messages

    reply = ('五天 [1]。![x](https://t.example/p.png?q=年假) <img src="https://t.example/r.png"> '
             "[登录](https://evil.example/login) 或 https://evil.example/a")
    stored = [SimpleNamespace(id="q", role="user", content="年假？", meta={}),
              SimpleNamespace(id="a", role="assistant", content=reply, meta={})]
    (_, shown), ids = chat_messages(stored, None)
    assert ids == ["q", "a"] and shown["content"].startswith("五天 [1]。")
    body = shown["content"]
    assert "![" not in body and "<img" not in body and "](" not in body
    for address in ("https://t.example/p.png?q=年假", "https://evil.example/login", "https://evil.example/a"):
        assert f"`{address}`" in body  # shown as code, so neither loaded nor a link
