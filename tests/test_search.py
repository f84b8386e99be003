"""Hybrid search over a real knowledge base: pages, sections, Chinese through BM25, filters, LangChain."""

from __future__ import annotations

import pytest

from docs import write_corpus
from ingest.pipeline import ingest_paths
from rag.retrieval import HybridRetriever, leg_weights, search
from rag.settings import Settings
from rag.store import KnowledgeBaseStore


@pytest.fixture(scope="module")
def kb_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    write_corpus(root / "corpus")
    store = KnowledgeBaseStore(Settings(data_dir=root / "data", _env_file=None))
    summary = ingest_paths(store, "公司资料", [root / "corpus"])
    assert not summary.failed
    yield store
    store.close()


def test_chinese_question_finds_the_right_pdf_page_and_section(kb_store):
    hits = search(kb_store, "公司资料", "报销需要多少个工作日付款？")
    top = hits[0]
    assert top.filename == "corpus/员工手册.pdf"
    assert top.page == 2
    assert top.section == "第一章 差旅报销 > 1.1 报销流程"
    assert "五个工作日" in top.text
    assert top.bm25_rank == 1

    leave = search(kb_store, "公司资料", "工作满十年有几天年假")[0]
    assert (leave.page, leave.section) == (3, "第二章 休假制度")


def test_chinese_query_uses_both_legs_with_the_multilingual_default(kb_store):
    from rag.embeddings import MINILM

    assert leg_weights(kb_store, "年假怎么算") == (1.0, 1.0)
    assert leg_weights(kb_store, "How is annual leave computed?") == (1.0, 1.0)
    # a knowledge base still on the English-only model gives it no vote on Chinese
    assert leg_weights(kb_store, "年假怎么算", MINILM) == (0.0, 1.0)
    hits = search(kb_store, "公司资料", "量子计算机的技术路线")
    assert hits[0].filename == "corpus/量子_gbk.txt"  # a GBK file, decoded and segmented
    assert hits[0].dense_rank == 1 and hits[0].bm25_rank == 1


def test_a_question_in_the_other_language_finds_the_page_by_meaning(kb_store, tmp_path):
    """No word in common: an English question about a Chinese page, Chinese questions about an English guide."""
    from docs import EN_GUIDE_MD

    leave = search(kb_store, "公司资料", "How many days of annual leave do employees get?", k=3)
    assert leave[0].filename == "corpus/员工手册.pdf" and leave[0].page == 3 and leave[0].bm25_rank is None
    (tmp_path / "deploy.md").write_text(EN_GUIDE_MD, encoding="utf-8")
    ingest_paths(kb_store, "guide", [tmp_path / "deploy.md"])
    memory = search(kb_store, "guide", "服务器需要多少内存？", k=3)
    assert memory[0].section == "Deployment guide > Requirements" and memory[0].bm25_rank is None
    systems = search(kb_store, "guide", "支持哪些操作系统？", k=3)
    assert systems[0].section == "Deployment guide > Requirements > Operating systems"


def test_english_query_uses_both_legs_and_markdown_sections(kb_store):
    hits = search(kb_store, "公司资料", "Which operating systems are supported?")
    top = hits[0]
    assert top.filename == "corpus/deploy.md"
    assert top.section == "Deployment guide > Requirements > Operating systems"
    assert top.dense_rank is not None and top.bm25_rank is not None
    # the dense leg alone understands paraphrase without shared words
    para = search(kb_store, "公司资料", "an observatory that watches faraway stars", k=3)
    assert para[0].filename == "corpus/telescope.pdf" and para[0].page == 1


def test_mixed_language_query(kb_store):
    hits = search(kb_store, "公司资料", "Chroma 数据库 依赖")
    assert hits[0].filename == "corpus/安装指南.md" and hits[0].section == "安装 > 依赖"


def test_filter_by_document(kb_store):
    hits = search(kb_store, "公司资料", "报销 付款 Python", k=10, documents=["deploy.md"])
    assert hits and {h.filename for h in hits} == {"corpus/deploy.md"}


def test_langchain_retriever_returns_documents_with_metadata(kb_store):
    retriever = HybridRetriever(store=kb_store, kb_name="公司资料", k=2)
    docs = retriever.invoke("员工出差前需要做什么")
    assert len(docs) == 2
    meta = docs[0].metadata
    assert meta["filename"] == "corpus/员工手册.pdf" and meta["page"] == 1
    assert meta["knowledge_base"] == "公司资料" and meta["section"] == "第一章 差旅报销"
    assert "出差申请" in docs[0].page_content


def test_empty_query_and_empty_kb(kb_store):
    assert search(kb_store, "公司资料", "   ") == []
    kb_store.create("空的")
    assert search(kb_store, "空的", "anything") == []


def test_the_former_default_gives_sentence_transformers_vectors_without_it(tmp_path):
    """The packaged MiniLM runs on transformers alone (rag.mean_pooling, ~3 s less import per process); its vectors
    must be the ones sentence-transformers gives, or knowledge bases embedded before would no longer match."""
    import json
    from pathlib import Path

    import numpy as np
    from langchain_huggingface import HuggingFaceEmbeddings

    from rag.embeddings import embedding_dimension, get_embeddings, resolve_model_path
    from rag.mean_pooling import MeanPooledEmbeddings, plain_mean_pooling

    emb = get_embeddings(Settings(data_dir=tmp_path / "data", _env_file=None), "sentence-transformers/all-MiniLM-L6-v2")
    assert isinstance(emb, MeanPooledEmbeddings) and embedding_dimension(emb) == 384
    path = resolve_model_path("all-MiniLM-L6-v2")
    reference = HuggingFaceEmbeddings(model_name=path, encode_kwargs={"normalize_embeddings": True})
    texts = ["报销单需要附上发票原件。", "Which command inserts a footnote?", "  two\nlines  ", "",
             "长文本" * 300 + " past the 256-token limit " * 60, "mixed 中文 and English \\label{sec:x}"]
    assert np.abs(np.array(emb.embed_documents(texts)) - np.array(reference.embed_documents(texts))).max() < 1e-5
    assert np.abs(np.array(emb.embed_query(texts[1])) - np.array(reference.embed_query(texts[1]))).max() < 1e-5
    # a model that does more than mean pooling goes to sentence-transformers
    cls = tmp_path / "cls-model"
    cls.mkdir()
    for name in ("modules.json", "sentence_bert_config.json"):
        (cls / name).write_text((Path(path) / name).read_text())
    (cls / "1_Pooling").mkdir()
    (cls / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True,
                                                               "pooling_mode_mean_tokens": False}))
    assert plain_mean_pooling(path) and not plain_mean_pooling(cls) and not plain_mean_pooling(tmp_path / "none")
