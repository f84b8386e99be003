"""Knowledge bases: Unicode names, rename, delete leaving nothing, embedding-model guard and re-index."""

from __future__ import annotations

import re

import pytest

from docs import EN_GUIDE_MD, ZH_GUIDE_MD
from ingest.pipeline import ingest_paths
from rag.errors import EmbeddingMismatch, InvalidName, KnowledgeBaseExists, KnowledgeBaseNotFound
from rag.retrieval import search
from rag.store import KnowledgeBaseStore, collection_name_for

CHROMA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")


@pytest.mark.parametrize("name", ["产品手册", "HR policies 2026", "ab", "kb 1", "🙂", "a" * 200, "Ünïcødé/..\\x"])
def test_any_unicode_name_maps_to_a_valid_chroma_collection(store, name):
    kb = store.create(name)
    assert kb.name == name
    assert CHROMA_NAME.match(kb.collection), kb.collection
    row = store.get_row(name)
    store.collection(row)  # Chroma accepts it
    assert [k.name for k in store.list()] == [name]


def test_collection_names_are_unique_for_similar_names():
    assert collection_name_for("产品手册") != collection_name_for("产品手册")


def test_create_rename_delete(store, tmp_path):
    store.create("产品手册")
    with pytest.raises(KnowledgeBaseExists):
        store.create("产品手册")
    with pytest.raises(InvalidName):
        store.create("   ")
    (tmp_path / "a.md").write_text(ZH_GUIDE_MD, encoding="utf-8")
    ingest_paths(store, "产品手册", [tmp_path / "a.md"])
    kb = store.rename("产品手册", "Product manual 产品")
    assert kb.documents == 1 and kb.chunks > 0
    with pytest.raises(KnowledgeBaseNotFound):
        store.get("产品手册")
    assert search(store, "Product manual 产品", "Chroma 数据库")[0].filename == "a.md"

    row = store.get_row("Product manual 产品")
    bm25_dir = store.settings.bm25_dir / row.id
    assert bm25_dir.exists()
    store.delete("Product manual 产品")
    assert store.list() == []
    assert row.collection not in [c.name for c in store.client.list_collections()]
    assert not bm25_dir.exists()
    assert store.registry.count_chunks(row.id) == 0


def test_rename_to_existing_name_is_refused(store):
    store.create("a1")
    store.create("b1")
    with pytest.raises(KnowledgeBaseExists):
        store.rename("a1", "b1")


def _model_variant(tmp_path, dim: int | None):
    """A real sentence-transformers model on disk that differs from the packaged ones: all-MiniLM-L6-v2, optionally
    with a dense projection to another dimension."""
    from sentence_transformers import SentenceTransformer, models

    from rag.embeddings import MINILM, resolve_model_path

    base = SentenceTransformer(resolve_model_path(MINILM), device="cpu")
    if dim is not None:
        base.append(models.Dense(in_features=384, out_features=dim))
    out = tmp_path / f"model-{dim or 'copy'}"
    base.save(str(out))
    return str(out)


def test_a_knowledge_base_keeps_the_model_it_was_built_with(settings, tmp_path):
    """Changing RAGKB_EMBEDDING_MODEL (or a new default) does not break a knowledge base: it is searched and
    extended with its own model; only new knowledge bases get the configured one. The configured model here is a
    user's own sentence-transformers folder (a real model, with a projection to 128 dimensions)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "deploy.md").write_text(EN_GUIDE_MD, encoding="utf-8")
    (tmp_path / "zh.md").write_text(ZH_GUIDE_MD, encoding="utf-8")
    store = KnowledgeBaseStore(settings)
    ingest_paths(store, "guide", [docs])
    store.close()

    other = _model_variant(tmp_path, dim=128)
    store2 = KnowledgeBaseStore(settings.model_copy(update={"embedding_model": other}))
    hits = search(store2, "guide", "How much memory does the server need?")
    assert "8 GB" in hits[0].text and hits[0].dense_rank is not None  # searched with its own 384-d model
    ingest_paths(store2, "guide", [tmp_path / "zh.md"])  # extended with its own model too
    kb = store2.get("guide")
    assert kb.embedding_model == settings.embedding_model and kb.embedding_dim == 384 and kb.documents == 2
    assert store2.verify("guide")["consistent"]
    ingest_paths(store2, "new", [docs])
    assert store2.get("new").embedding_model == other and store2.get("new").embedding_dim == 128
    assert "8 GB" in search(store2, "new", "How much memory does the server need?")[0].text
    store2.close()


def test_a_model_whose_files_changed_is_a_clear_error(settings, tmp_path):
    """The same model name now giving vectors of another size: refused with what to do, not a Chroma crash."""
    import shutil

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "deploy.md").write_text(EN_GUIDE_MD, encoding="utf-8")
    folder = _model_variant(tmp_path, dim=128)
    store = KnowledgeBaseStore(settings.model_copy(update={"embedding_model": folder}))
    ingest_paths(store, "guide", [docs])
    store.close()
    shutil.rmtree(folder)
    shutil.move(_model_variant(tmp_path, dim=64), folder)
    from rag import embeddings

    embeddings._cache.clear()  # a new process would load the replaced files
    store2 = KnowledgeBaseStore(settings)
    with pytest.raises(EmbeddingMismatch) as info:
        search(store2, "guide", "memory requirements")
    msg = str(info.value)
    assert "dimension 128" in msg and "dimension 64" in msg and f"ragkb reindex 'guide' --model '{folder}'" in msg
    store2.close()
