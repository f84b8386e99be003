"""Language facts, the garbled-text detector and the Chinese-aware BM25 tokenizer/index."""

from __future__ import annotations

from rag.lexical import BM25Index, tokenize
from rag.text import cjk_ratio, garble_report, is_garbled, query_language

# What pypdf 7.1 really extracts from lshort-zh-cn.pdf page 13 (CID fonts without ToUnicode).
PYPDF_MOJIBAKE = ("ֻ၂ᅣ LATEX ࠎ֥Чۀ\u0b51\nߋ႒\u0d50Ⴈ LATEXĆЧᅣष\u0e68Ⴈ֥؋ࡥ\u0bc9ࢺږകਔ LATEX ֥টჷđಖࢺުകਔ "
                  "LATEX ჷ\nս\u0a92֥ཿمđщၲ LATEX ჷս\u0a92ളӮ໓م֥֖ٚđၛࠣ\u09d8ࢤࢳ༯ট֥ᅣ֥ࢫ၂ུсေᆩ\n്b\n1.1 ۀඍ\n"
                  "TEX ൞֣ۚବ (Donald E. Knuth) ູஆϱ໓ሳބඔ࿐܄ൔطष֥ؿೈࡱ [6]b1977 ୍đᆞᄝ")
CLEAN_ZH = "第一章 LATEX 的基本概念\n欢迎使用 LATEX！本章开头用简短的篇幅介绍了 LATEX 的来源，然后介绍了源代码的写法。"


def test_query_language_handles_mixed_chinese_and_english():
    assert query_language("ragkb 支持哪些文件格式？") == "zh"
    assert query_language("如何配置 RAGKB_DATA_DIR") == "zh"
    assert query_language("How do I configure the data dir?") == "en"
    assert query_language("What does 张三 do in the project?") == "en"
    assert cjk_ratio("") == 0.0


def test_garble_detector_flags_real_pdf_mojibake_and_keeps_real_text():
    assert is_garbled(PYPDF_MOJIBAKE)
    assert "scattered" in garble_report(PYPDF_MOJIBAKE).describe()
    assert not is_garbled(CLEAN_ZH)
    assert not is_garbled("Le café est très bon à Zürich, naïve façade, résumé, élève. " * 5)
    assert not is_garbled("日本語のテキストです。ひらがなとカタカナと漢字。Hello world " * 3)
    assert not is_garbled("Уравнение α + β = γ описывает систему. The equation holds. " * 3)


def test_garble_detector_flags_latin1_decoded_chinese_and_private_use():
    gbk_as_latin1 = "本手册介绍公司的差旅报销制度。员工出差前需要提交申请。".encode("gbk").decode("latin-1")
    assert is_garbled(gbk_as_latin1)
    assert is_garbled("\ue000\ue001\ue002\ue003 text \ue004\ue005\ue006\ue007\ue008")


def test_tokenizer_segments_chinese_and_stems_english():
    tokens = tokenize("员工出差需要提交申请 Running the servers")
    assert "出差" in tokens and "申请" in tokens
    assert "run" in tokens and "server" in tokens
    assert "the" not in tokens
    # Chinese without spaces is not one giant token (what whitespace BM25 would do)
    assert "员工出差需要提交申请" not in tokens


def test_bm25_index_ranks_chinese_and_persists(tmp_path):
    texts = {"a:0": "财务部门在五个工作日内完成付款。", "b:0": "年假天数根据工龄计算。",
             "c:0": "The telescope observes galaxies."}
    index = BM25Index.build(tmp_path / "idx", list(texts), [tokenize(t) for t in texts.values()], stamp="7")
    assert index.search("多久完成付款？", 3)[0][0] == "a:0"
    loaded = BM25Index.load(tmp_path / "idx")
    assert loaded is not None and loaded.stamp == "7"
    assert loaded.search("年假怎么计算", 3)[0][0] == "b:0"
    assert loaded.search("telescopes", 3)[0][0] == "c:0"
    # restricting to some chunks (document filter)
    assert [cid for cid, _ in loaded.search("付款 年假", 3, allowed_ids={"b:0"})] == ["b:0"]
    assert loaded.search("完全无关的词语", 3) == []


def test_empty_bm25_index_round_trips(tmp_path):
    BM25Index.build(tmp_path / "e", [], [], stamp="0")
    loaded = BM25Index.load(tmp_path / "e")
    assert loaded is not None and loaded.search("anything", 5) == []
