"""A multi-file ingest killed with SIGKILL in the middle of writing a document."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import REPO, cli_env, ragkb_exe
from rag.retrieval import search
from rag.settings import Settings
from rag.store import KnowledgeBaseStore

pytestmark = pytest.mark.slow


def _write_files(folder):
    folder.mkdir()
    topics = ["apples", "bridges", "comets", "dolphins"]
    for i, topic in enumerate(topics):
        body = "\n\n".join(f"Paragraph {n} about {topic}: the {topic} study number {n} found result {n * 7}. "
                           f"Researchers measured {topic} property {n} carefully over many seasons." for n in range(300))
        (folder / f"{i}_{topic}.md").write_text(f"# {topic}\n\n{body}\n", encoding="utf-8")
    return topics


def _partial_write_in_progress(db) -> bool:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            row = con.execute(
                "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.doc_id "
                "WHERE d.status = 'ingesting'").fetchone()
            ready = con.execute("SELECT count(*) FROM documents WHERE status = 'ready'").fetchone()
            return row[0] > 0 and ready[0] >= 1
        finally:
            con.close()
    except sqlite3.Error:
        return False


def test_sigkill_mid_ingest_leaves_consistent_store_and_next_run_finishes(tmp_path):
    data = tmp_path / "data"
    folder = tmp_path / "docs"
    topics = _write_files(folder)
    proc = subprocess.Popen([ragkb_exe(), "ingest", "crash kb", str(folder)], cwd=REPO,
                            env=cli_env(data), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    db = data / "registry.db"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not _partial_write_in_progress(db):
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be interrupted: " + proc.stdout.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    # State right after the kill: one document half-written, invisible to searches.
    store = KnowledgeBaseStore(Settings(data_dir=data, _env_file=None))
    state = store.verify("crash kb")
    assert state["transient_documents"] == 1 and state["ready_documents"] >= 1
    ready_names = {d.filename for d in store.documents("crash kb", include_failed=False)}
    for hit in search(store, "crash kb", "Researchers measured property", k=50):
        assert hit.filename in ready_names
    store.close()

    # The next run cleans up and finishes the job.
    res = subprocess.run([ragkb_exe(), "ingest", "crash kb", str(folder)], cwd=REPO, env=cli_env(data),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 failed" in res.stdout
    store = KnowledgeBaseStore(Settings(data_dir=data, _env_file=None))
    state = store.verify("crash kb")
    assert state["consistent"], state
    assert state["transient_documents"] == 0 and state["ready_documents"] == len(topics)
    assert state["chroma_chunks"] == state["registry_chunks"] == state["bm25_chunks"]
    docs = store.documents("crash kb")
    assert sorted(d.filename for d in docs) == sorted(f"docs/{i}_{t}.md" for i, t in enumerate(topics))
    for topic in topics:  # every document, the interrupted one included, is searchable
        files = {h.filename for h in search(store, "crash kb", f"what was found about {topic}?", k=3)}
        assert f"docs/{topics.index(topic)}_{topic}.md" in files
    store.close()
