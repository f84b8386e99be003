"""Conversation history, feedback, corrections and the service layer every face uses (no browser, no real LLM)."""

from __future__ import annotations

import json

import pytest

from app.services import RagkbService, Upload, safe_display_name
from docs import ZH_POLICY_P2, zh_pdf
from fakes import ScriptedLLM
from rag.conversations import ConversationNotFound, ConversationStore
from rag.corrections import match_corrections
from rag.errors import RagkbError
from rag.registry import Registry
from rag.store import KnowledgeBaseStore


@pytest.fixture
def service(settings):
    svc = RagkbService(settings, llm=ScriptedLLM())
    yield svc
    svc.store.close()


def _reply(svc, *replies, **roles):
    svc.answers.llm = ScriptedLLM(*replies, **roles)
    return svc.answers.llm


def test_history_survives_a_restart_and_is_private_per_user(settings):
    store = KnowledgeBaseStore(settings)
    store.create("手册")
    store.close()
    reg = Registry(settings.registry_url)
    convs = ConversationStore(reg)
    c = convs.create(user="alice", kb_name="手册")
    convs.add_message(c.id, "user", "  年假 有几天？ ", user="alice")
    convs.add_message(c.id, "assistant", "五天[1]。", user="alice", sources=[{"n": 1, "filename": "a.pdf"}])
    reg.dispose()

    reg = Registry(settings.registry_url)  # a new process
    convs = ConversationStore(reg)
    [again] = convs.list("alice")
    assert again.title == "年假 有几天？" and again.kb_name == "手册"
    msgs = convs.messages(again.id, "alice")
    assert [m.role for m in msgs] == ["user", "assistant"] and msgs[1].sources[0]["filename"] == "a.pdf"
    assert convs.list("bob") == []
    with pytest.raises(ConversationNotFound):
        convs.messages(again.id, "bob")
    with pytest.raises(ConversationNotFound):
        convs.delete(again.id, "bob")
    convs.rename(again.id, "Leave", "alice")
    assert convs.get(again.id, "alice").title == "Leave"
    convs.delete(again.id, "alice")
    assert convs.list("alice") == []
    reg.dispose()


def test_chat_saves_both_messages_and_uses_the_conversation_for_follow_ups(service, tmp_path):
    service.create_kb("手册")
    service.ingest_uploads("手册", [Upload(zh_pdf(tmp_path / "员工手册.pdf"), "员工手册.pdf")])
    _reply(service, "报销单需要附上发票原件[1]。")
    events = list(service.chat(None, "手册", "报销单需要附上什么？"))
    assert events[0].type == "conversation"
    cid = events[0].conversation_id
    done = events[-1]
    assert done.type == "done" and done.message_id
    msgs = service.conversations.messages(cid)
    assert [m.content for m in msgs] == ["报销单需要附上什么？", "报销单需要附上发票原件[1]。"]
    assert msgs[1].sources[0]["filename"] == "员工手册.pdf" and msgs[1].sources[0]["page"] == 2

    llm = _reply(service, "需要副总经理特别批准[1]。", rewrite="报销单需要附上什么 超过标准怎么办")
    list(service.chat(cid, "手册", "那超过标准怎么办？"))  # "那": refers back, so it is rewritten first
    condense_prompt = " ".join(str(m.content) for m in llm.calls[0])
    assert "报销单需要附上什么？" in condense_prompt  # the follow-up was understood with the conversation
    assert len(service.conversations.messages(cid)) == 4


def test_a_correction_becomes_the_first_source_for_the_same_question(service, tmp_path):
    service.create_kb("手册")
    service.ingest_uploads("手册", [Upload(zh_pdf(tmp_path / "员工手册.pdf"), "员工手册.pdf")])
    _reply(service, "报销单需要附上发票原件[1]。")
    events = list(service.chat(None, "手册", "报销单需要附上什么？"))
    answer_id = events[-1].message_id
    service.correct(answer_id, "报销单需要附上发票原件和审批单 RX-42。")

    llm = _reply(service, "需要发票原件和审批单 RX-42[1]。")
    events = list(service.chat(None, "手册", "报销单需要附什么"))  # a rephrasing, new conversation
    prompt = str(llm.calls[-1][-1].content)
    assert prompt.index("user correction") < prompt.index("员工手册.pdf")  # first block
    sources = next(e.sources for e in events if e.type == "sources")
    assert sources[0].kind == "correction" and "RX-42" in sources[0].snippet
    # other knowledge bases and unrelated questions do not get it
    assert service.answers.corrections_for("手册", ["年假有几天？"]) == []
    service.create_kb("other")
    assert service.answers.corrections_for("other", ["报销单需要附上什么？"]) == []
    # the corrected answer was recorded as a bad case
    cases = [json.loads(x) for x in service.bad_cases_jsonl().splitlines()]
    assert {c["type"] for c in cases} == {"thumbs_down", "correction"}
    corr = next(c for c in cases if c["type"] == "correction")
    assert corr["question"] == "报销单需要附上什么？" and "RX-42" in corr["expected_answer"]


def test_correction_matching_is_strict():
    class C:
        def __init__(self, i, q, a):
            self.id, self.question, self.answer = i, q, a

    rows = [C("1", "How long does payment take?", "Five working days."), C("2", "年假有几天？", "五天")]
    assert [m.id for m in match_corrections(["how long does payment take"], rows)] == ["1"]
    assert [m.id for m in match_corrections(["年假一共有几天"], rows)] == ["2"]
    assert match_corrections(["Who approves hotel costs?"], rows) == []
    assert match_corrections(["病假有几天？"], rows) == []


def test_feedback_is_validated_and_exported(service, tmp_path):
    service.create_kb("kb")
    (tmp_path / "a.md").write_text("# Leave\n\nEmployees get five days of leave.\n", encoding="utf-8")
    service.ingest_uploads("kb", [Upload(tmp_path / "a.md", "a.md")])
    _reply(service, "Five days [1].")
    events = list(service.chat(None, "kb", "How many days of leave?", user="alice"))
    mid, cid = events[-1].message_id, events[-1].conversation_id
    with pytest.raises(RagkbError):
        service.feedback(mid, 5)
    question_id = service.conversations.messages(cid, "alice")[0].id
    with pytest.raises(RagkbError, match="answers"):
        service.feedback(question_id, -1, user="alice")
    with pytest.raises(RagkbError):
        service.feedback(mid, -1, user="bob")  # not bob's conversation
    service.feedback(mid, -1, "wrong number", user="alice")
    [case] = [json.loads(x) for x in service.bad_cases_jsonl("alice").splitlines()]
    assert case["question"] == "How many days of leave?" and case["comment"] == "wrong number"
    assert service.bad_cases_jsonl("bob") == ""


def test_uploads_are_checked_and_the_batch_goes_on(service, tmp_path):
    assert safe_display_name("../../etc/passwd") == "passwd"
    assert safe_display_name("C:\\Users\\me\\报告.pdf") == "报告.pdf"
    assert safe_display_name("a\x00b\u202e.md") == "ab.md"
    assert safe_display_name("") == "upload"
    service.create_kb("kb")
    good = tmp_path / "tmp123"
    good.write_text("# Title\n\nSome text about budgets.\n", encoding="utf-8")
    exe = tmp_path / "x"
    exe.write_bytes(b"MZ")
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2048)
    service.settings.max_file_mb = 0.001
    summary = service.ingest_uploads("kb", [Upload(exe, "setup.exe"), Upload(big, "big.txt"),
                                            Upload(good, "../notes.md")])
    by_name = {r.name: r for r in summary.results}
    assert "unsupported file type '.exe'" in by_name["setup.exe"].reason
    assert "over the 0.001 MB limit" in by_name["big.txt"].reason
    assert by_name["notes.md"].status == "ingested"
    assert [d.filename for d in service.documents("kb")] == ["notes.md"]  # the temp name never shows
    with pytest.raises(RagkbError):
        service.ingest_uploads("missing", [Upload(good, "notes.md")])


def test_renaming_a_knowledge_base_keeps_its_conversations_and_corrections(service, tmp_path):
    service.create_kb("old")
    (tmp_path / "a.md").write_text("# Pay\n\n" + ZH_POLICY_P2 + "\n", encoding="utf-8")
    service.ingest_uploads("old", [Upload(tmp_path / "a.md", "a.md")])
    _reply(service, "五个工作日[1]。")
    events = list(service.chat(None, "old", "多久完成付款？"))
    service.correct(events[-1].message_id, "五个工作日内。")
    service.rename_kb("old", "new")
    assert service.conversations.get(events[-1].conversation_id).kb_name == "new"
    assert len(service.conversations.corrections("new")) == 1
    service.delete_kb("new")
    assert service.conversations.corrections("new") == []


def test_a_knowledge_base_created_again_under_a_deleted_ones_name_starts_without_its_corrections(service):
    service.create_kb("手册")
    conv = service.conversations.create(kb_name="手册")
    service.conversations.add_message(conv.id, "user", "报销后多久付款？")
    bad = service.conversations.add_message(conv.id, "assistant", "我不知道。")
    service.correct(bad.id, "五个工作日。")
    service.delete_kb("手册")
    assert service.conversations.get(conv.id).kb_name is None  # the conversation stays readable
    service.create_kb("手册")
    assert service.conversations.corrections("手册") == []
    assert service.answers.corrections_for("手册", ["报销后多久付款？"]) == []


def test_corrections_stored_by_name_before_ids_existed_are_migrated(settings):
    """A registry written by an older ragkb: conversations and corrections keyed by the knowledge base's name."""
    from sqlalchemy import text

    store = KnowledgeBaseStore(settings)  # SQLite, or PostgreSQL when the suite runs there
    kb = store.create("手册")
    with store.registry.engine.begin() as db:
        for statement in (
                'CREATE TABLE conversations (id VARCHAR(32) PRIMARY KEY, "user" VARCHAR(200), title VARCHAR(300), '
                "kb_name VARCHAR(200), created_at TIMESTAMP, updated_at TIMESTAMP)",
                'CREATE TABLE corrections (id VARCHAR(32) PRIMARY KEY, kb_name VARCHAR(200), question TEXT, '
                'answer TEXT, original_answer TEXT, message_id VARCHAR(32), "user" VARCHAR(200), created_at TIMESTAMP)',
                "INSERT INTO conversations VALUES ('c1', '', '付款', '手册', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
                "INSERT INTO corrections VALUES ('r1', '手册', '报销后多久付款？', '五个工作日。', NULL, NULL, '', "
                "'2026-01-01 00:00:00')"):
            db.execute(text(statement))
    store.close()
    service = RagkbService(settings, llm=ScriptedLLM())
    try:
        assert [c.id for c in service.conversations.corrections("手册")] == ["r1"]
        assert service.conversations.corrections("手册")[0].kb_id == kb.id
        service.rename_kb("手册", "Handbook")
        assert service.conversations.get("c1").kb_name == "Handbook"
        assert [c.id for c in service.conversations.corrections("Handbook")] == ["r1"]
    finally:
        service.close()


def test_an_empty_model_answer_is_reported_not_saved_as_an_answer(service, tmp_path):
    service.create_kb("kb")
    (tmp_path / "a.md").write_text("# Leave\n\nEmployees get five days of leave.\n", encoding="utf-8")
    service.ingest_uploads("kb", [Upload(tmp_path / "a.md", "a.md")])
    _reply(service, "")
    events = list(service.chat(None, "kb", "How many days of leave?"))
    errors = [e.text for e in events if e.type == "error"]
    assert errors and "empty answer" in errors[0]
    saved = service.conversations.messages(events[-1].conversation_id)[-1]
    assert saved.meta["error"] and not any(e.type == "token" for e in events)
