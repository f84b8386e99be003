"""Client-server Chroma: a real `chroma run` on loopback (RAGKB_CHROMA_URL), the ingest / search / answer
path against it, and a server restart in the middle (data survives; while it is down the error says so)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_env, wait_http
from docs import write_corpus
from ingest.pipeline import ingest_paths
from rag.errors import VectorStoreUnavailable
from rag.local_llm import stop_process
from rag.retrieval import search
from rag.settings import Settings
from rag.store import KnowledgeBaseStore

pytestmark = pytest.mark.slow


class ChromaServer:
    def __init__(self, path: Path, log: Path):
        from rag.local_llm import free_port

        self.path, self.log, self.port = path, log, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = Path(sys.executable).parent / "chroma"
        self.proc = subprocess.Popen([str(exe), "run", "--path", str(self.path), "--host", "127.0.0.1",
                                      "--port", str(self.port)], stdout=open(self.log, "ab"),
                                     stderr=subprocess.STDOUT, env=cli_env(self.path), start_new_session=True)
        wait_http(self.proc, f"{self.url}/api/v2/heartbeat", self.log, "chroma run", 60, interval=0.3)

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, timeout=20)


@pytest.fixture
def chroma(tmp_path):
    server = ChromaServer(tmp_path / "chroma-server", tmp_path / "chroma.log")
    server.start()
    yield server
    server.stop()


def test_ingest_search_and_restart_against_a_chroma_server(tmp_path, chroma):
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma.url, _env_file=None)
    store = KnowledgeBaseStore(settings)
    corpus = write_corpus(tmp_path / "docs")
    summary = ingest_paths(store, "混合 KB", [tmp_path / "docs"])
    assert len(summary.ingested) == 6 and not summary.failed
    assert not settings.chroma_dir.exists(), "vectors must live in the server, not in embedded Chroma"
    col = store.collection(store.get_row("混合 KB"))
    assert col.count() == store.get("混合 KB").chunks > 0  # the server holds every chunk

    en = search(store, "混合 KB", "Which operating systems are supported?", k=3)
    assert en[0].filename.endswith("deploy.md") and en[0].dense_rank is not None  # the dense leg ran on the server
    zh = search(store, "混合 KB", "报销单需要附上什么", k=3)
    assert zh[0].filename.endswith("员工手册.pdf") and zh[0].page == 2

    # the server goes away: a clear error naming the server, nothing corrupted
    chroma.stop()
    with pytest.raises(VectorStoreUnavailable, match=chroma.url):
        search(store, "混合 KB", "Which operating systems are supported?", k=3)
    extra = tmp_path / "late.md"
    extra.write_text("# Late\n\nThe zebra migration happens in July.\n", encoding="utf-8")
    failed = ingest_paths(store, "混合 KB", [extra])
    assert failed.failed and "Chroma server" in failed.failed[0].reason
    assert not [d for d in store.documents("混合 KB") if d.status == "ready" and d.filename.endswith("late.md")]

    # it comes back on the same data: same results, writes work again, without restarting ragkb
    chroma.start()
    again = search(store, "混合 KB", "Which operating systems are supported?", k=3)
    assert [h.chunk_id for h in again] == [h.chunk_id for h in en]
    assert ingest_paths(store, "混合 KB", [extra]).ingested
    assert search(store, "混合 KB", "When does the zebra migration happen?", k=1)[0].filename.endswith("late.md")
    report = store.verify("混合 KB")
    assert report["consistent"] and not report["transient_documents"], report
    store.close()

    # a new process (fresh store) sees everything through the server
    store2 = KnowledgeBaseStore(settings)
    assert search(store2, "混合 KB", "报销单需要附上什么", k=1)[0].filename.endswith("员工手册.pdf")
    store2.close()
    del corpus


@pytest.mark.llm
def test_answers_with_a_chroma_server(tmp_path, chroma):
    from rag.answer import AnswerService
    from rag.llm import LLMService

    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma.url, _env_file=None)
    store = KnowledgeBaseStore(settings)
    write_corpus(tmp_path / "docs")
    ingest_paths(store, "kb", [tmp_path / "docs"])
    llm = LLMService(settings)
    try:
        answer = AnswerService(store, llm).answer("kb", "Which operating systems are supported?")
    finally:
        llm.close()
        store.close()
    assert not answer.error
    assert answer.sources and answer.sources[0].filename.endswith("deploy.md")
    assert "Linux" in answer.text


def test_ingest_search_and_history_suites_against_a_chroma_server(chroma):
    """The same ingest, search, knowledge-base and conversation tests, with every vector in the server."""
    import os

    from conftest import REPO

    env = dict(os.environ, RAGKB_TEST_CHROMA_URL=chroma.url)
    suites = ["tests/test_ingest.py", "tests/test_search.py", "tests/test_knowledge_bases.py", "tests/test_conversations.py"]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suites], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=900)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-8000:]
    assert " passed" in out, out[-2000:]


def test_unreachable_chroma_server_is_a_clear_error(tmp_path):
    from rag.local_llm import free_port

    url = f"http://127.0.0.1:{free_port()}"
    store = KnowledgeBaseStore(Settings(data_dir=tmp_path / "data", chroma_url=url, _env_file=None))
    store.create("kb")
    (tmp_path / "a.md").write_text("# A\n\ntext about apples\n", encoding="utf-8")
    result = ingest_paths(store, "kb", [tmp_path / "a.md"])
    assert result.failed and url in result.failed[0].reason and "RAGKB_CHROMA_URL" in result.failed[0].reason
    store.close()
