"""Prompt economy on a CPU: blocks cut to their evidence within a token budget, no condense call for a
complete new question, one fixed system prompt."""

from __future__ import annotations

import pytest

from fakes import ScriptedLLM
from rag.answer import AnswerService
from rag.answer.evidence import GAP, trim_blocks
from rag.answer.sentences import split_sentences
from rag.answer.followup import needs_context
from rag.llm import estimate_tokens
from rag.store import KnowledgeBaseStore

FILLER_ZH = "本节介绍公司的历史沿革和组织结构。各部门按照年度计划开展工作。会议纪要由行政部统一归档。"
FILLER_EN = "The company was founded long ago. Its offices are spread over several cities. Meetings are held weekly. "


def test_blocks_that_fit_are_left_alone():
    texts = ["年假五天。", "Leave is five days."]
    assert trim_blocks("年假有几天？", texts, 500, estimate_tokens) == texts


def test_over_budget_blocks_keep_the_evidence_sentence_and_stay_citable():
    answer_block = FILLER_ZH * 3 + "财务部门在收到完整材料后的五个工作日内完成付款。" + FILLER_ZH * 3
    other = FILLER_EN * 8 + "Payment questions go to the finance desk. " + FILLER_EN * 8
    third = FILLER_ZH * 6  # retrieved, but shares no word with the question
    budget = 120
    out = trim_blocks("报销后多久完成付款？", [answer_block, other, third], budget, estimate_tokens)
    assert len(out) == 3 and all(o.strip() for o in out)  # every block is still there to be cited
    assert "五个工作日内完成付款" in out[0]
    assert sum(estimate_tokens(o) for o in out) <= budget + 10  # gap marks are the only extra
    assert sum(estimate_tokens(o) for o in out) < sum(estimate_tokens(t) for t in [answer_block, other, third]) / 3
    assert GAP.strip() in out[0]  # the user-visible text says where something was left out


def test_the_sentence_after_a_matching_one_is_kept_with_it():
    block = FILLER_ZH * 4 + "在 LaTeX 中生成目录非常容易，只需在合适的地方使用命令：\n\\tableofcontents\n\n" + FILLER_ZH * 4
    out = trim_blocks("如何生成目录？", [block], 60, estimate_tokens)[0]
    assert "生成目录" in out and "\\tableofcontents" in out


def test_fixed_blocks_are_never_cut():
    correction = "正确答案：" + FILLER_ZH * 5
    out = trim_blocks("付款多久？", [correction, FILLER_ZH * 10 + "付款五天。"], 80, estimate_tokens, fixed={0})
    assert out[0] == correction and "付款五天" in out[1]


def test_sentences_join_pdf_line_breaks_inside_chinese():
    assert split_sentences("财务部门在五个工作日内完成付\n款。第二句。\n\nNext one. Last") == \
        ["财务部门在五个工作日内完成付款。", "第二句。", "Next one.", "Last"]


@pytest.mark.parametrize("question", ["如何插入图片？", "怎样设置页边距？", "LaTeX 和 TeX 有什么区别？",
                                      "How do I add a new user account?", "How long does reimbursement take?",
                                      "What is the difference between LaTeX and TeX?",
                                      "How do I list all bibliography entries, including those never cited?",
                                      # one word, but a named subject of its own: not glued to the last question
                                      "What does \\newcommand do?", "What is xelatex?", "什么是 BibTeX？",
                                      "xelatex 是什么？", "\\newcommand 是做什么的？"])
def test_complete_questions_stand_alone(question):
    assert not needs_context(question)


@pytest.mark.parametrize("question", ["它支持哪些格式？", "超过了怎么办？", "英文呢？", "那英文版呢？", "有什么要求？",
                                      "What about travel?", "Is it free?", "Which formats?", "And on Windows?",
                                      "What does this command do?", "What does that mean?", "What is the price?",
                                      "区别是什么？", "那个是什么？"])
def test_follow_ups_that_refer_back_need_the_conversation(question):
    assert needs_context(question)


def test_a_new_complete_question_after_others_costs_no_condense_call(kb_store):
    llm = ScriptedLLM("财务部门在五个工作日内完成付款[1]。")  # one reply: a condense call would use it up
    history = [("user", "出差住宿费怎么报销？"), ("assistant", "按照标准报销[1]。")]
    events = list(AnswerService(kb_store, llm).stream("kb", "报销后多久付款？", history))
    done = events[-1]
    assert len(llm.calls) == 1 and "condense_ms" not in done.timings
    assert done.standalone_question == "报销后多久付款？"  # not glued to the previous question
    prompt = llm.calls[0]
    assert [m.type for m in prompt] == ["system", "human"]  # no earlier turns for a question that stands alone
    assert "五个工作日" in "".join(e.text for e in events if e.type == "token")


def test_prompt_tokens_are_reported_and_the_budget_applies(kb_store):
    settings = kb_store.settings.model_copy(update={"answer_context_tokens": 40})
    store = KnowledgeBaseStore(settings)
    try:
        llm = ScriptedLLM("五个工作日[1]。")
        done = list(AnswerService(store, llm).stream("kb", "报销后多久付款？"))[-1]
        small = done.prompt_tokens
        llm2 = ScriptedLLM("五个工作日[1]。")
        whole = KnowledgeBaseStore(kb_store.settings.model_copy(update={"answer_context_tokens": 0}))
        try:
            done2 = list(AnswerService(whole, llm2).stream("kb", "报销后多久付款？"))[-1]
        finally:
            whole.close()
        assert 0 < small < done2.prompt_tokens
        assert "五个工作日" in llm.calls[0][-1].content  # the evidence survived the cut
    finally:
        store.close()


@pytest.mark.parametrize("question, previous, standalone", [
    ("它需要编译几次？", "如何在文档中生成目录？", "在文档中生成目录需要编译几次？"),
    ("它们有大小限制吗？", "ragkb 支持哪些文件格式？", "ragkb 支持文件格式有大小限制吗？"),
    ("英文呢？", "怎么设置中文字体？", "设置中文字体 英文呢？"),
    # the measure word after 哪 asks too ("哪 种" as jieba cuts it), as does 哪条
    ("它有什么缺点？", "哪种字体最常用？", "字体最常用有什么缺点？"),
    ("它们需要编译几次？", "哪条命令生成引用的页码？", "命令生成引用的页码需要编译几次？"),
    ("How many times do I compile it?", "How do I generate a table of contents?",
     "How many times do I compile generate a table of contents?"),
    ("What about its page numbers?", "How do I generate a table of contents?",
     "What about generate a table of contents's page numbers?"),
    ("How many arguments can it take?", "What does \\newcommand do?", "How many arguments can \\newcommand take?"),
    # elliptic follow-ups: the previous question asked again, the new words in place of the old ones
    ("那用 LuaLaTeX 编译呢？", "使用 XeLaTeX 编译时 CTeX 宏集用哪个宏包支持中文？", "用 LuaLaTeX 编译时 CTeX 宏集用哪个宏包支持中文？"),
    ("那报销住宿费呢？", "怎么报销差旅交通费？", "怎么报销住宿费？"),
    # jieba cuts 有序列表 as 有 / 序列表 and 无序列表 as 无序 / 列表: matched by characters (lshort held-out lh-15)
    ("那有序列表呢？", "无序列表用哪个环境？", "有序列表用哪个环境？"),
    ("那住宿费呢？", "怎么报销交通费？", "报销交通费 那住宿费呢？"),  # one shared character is no anchor
    ("What about on Windows?", "How do I install ragkb on Linux?", "How do I install ragkb on Windows?"),
    ("And for travel expenses?", "How long does reimbursement take for office supplies?",
     "How long does reimbursement take for travel expenses?"),
    # a question of its own after "那" keeps its words; the topic only goes in front
    ("那列出参考文献的位置用哪个命令？", "用哪个命令设定参考文献的格式？", "用命令设定参考文献的格式 那列出参考文献的位置用哪个命令？"),
])
def test_a_follow_up_is_made_standalone_by_its_referent_not_by_pasting(question, previous, standalone):
    from rag.answer.followup import substitute_referent

    assert substitute_referent(question, previous) == standalone



def test_a_sentence_close_in_meaning_is_kept_though_it_shares_no_word_with_the_question():
    """RAGKB_EVIDENCE_DENSE_WEIGHT: the block is cut to its evidence by the question's words and, with the weight on,
    by the embedder's similarity too: an English question about a Chinese page shares no word with the answer."""
    from rag.answer.sentences import dense_bonus, quote_with_block

    block = "本章介绍字体。页面的边距由 geometry 宏包设置。行距用 \\linespread 命令调整。首行缩进由 \\parindent 控制。"
    closeness = {"行距用 \\linespread 命令调整。": 0.9}

    def similarity(texts):
        return [closeness.get(t, 0.5) for t in texts]

    assert dense_bonus(similarity, ["a", "b", "c"], 1.0) == [0.0, 0.0, 0.0]  # nothing stands out
    question = "How do I change the line spacing?"
    words_only = trim_blocks(question, [block], 12, lambda t: len(t) // 2)
    with_meaning = trim_blocks(question, [block], 12, lambda t: len(t) // 2, similarity=similarity, dense_weight=1.0)
    assert "linespread" not in words_only[0] and "linespread" in with_meaning[0]
    assert "linespread" in quote_with_block(question, [block], similarity=similarity, dense_weight=1.0)[0]
    assert "linespread" not in quote_with_block(question, [block])[0]
