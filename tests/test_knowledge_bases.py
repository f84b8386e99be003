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
    """A real sentence-transformers model on disk that differs from the default: the packaged
    MiniLM, optionally with a dense projection to another dimension."""
    from sentence_transformers import SentenceTransformer, models

    from rag.embeddings import resolve_model_path
    from rag.settings import DEFAULT_EMBEDDING_MODEL

    base = SentenceTransformer(resolve_model_path(DEFAULT_EMBEDDING_MODEL), device="cpu")
    if dim is not None:
        base.append(models.Dense(in_features=384, out_features=dim))
    out = tmp_path / f"model-{dim or 'copy'}"
    base.save(str(out))
    return str(out)


def test_changed_embedding_model_is_a_clear_error_and_reindex_fixes_it(settings, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "deploy.md").write_text(EN_GUIDE_MD, encoding="utf-8")
    store = KnowledgeBaseStore(settings)
    ingest_paths(store, "guide", [docs])
    store.close()

    other = _model_variant(tmp_path, dim=128)
    changed = settings.model_copy(update={"embedding_model": other})
    store2 = KnowledgeBaseStore(changed)
    with pytest.raises(EmbeddingMismatch) as info:
        search(store2, "guide", "memory requirements")
    msg = str(info.value)
    assert "all-MiniLM-L6-v2" in msg and other in msg and "ragkb reindex 'guide'" in msg
    with pytest.raises(EmbeddingMismatch):
        ingest_paths(store2, "guide", [docs])

    kb = store2.reindex("guide")
    assert kb.embedding_model == other and kb.embedding_dim == 128 and kb.chunks > 0
    hits = search(store2, "guide", "How much memory does the server need?")
    assert "8 GB" in hits[0].text
    assert store2.verify("guide")["consistent"]
    store2.close()

    # and the old configuration is now the mismatching one
    store3 = KnowledgeBaseStore(settings)
    with pytest.raises(EmbeddingMismatch):
        search(store3, "guide", "memory")
    store3.close()
