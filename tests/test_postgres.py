"""The registry and the conversation history on a real PostgreSQL server (RAGKB_DATABASE_URL).

Starts PostgreSQL from Debian's packages on loopback and runs the knowledge-base, ingest and
conversation suites again with every test's registry in a fresh PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO
from pg import PostgresServer, pg_bin

pytestmark = [pytest.mark.slow, pytest.mark.skipif(pg_bin() is None, reason="needs Debian's postgresql")]

SUITES = ["tests/test_knowledge_bases.py", "tests/test_ingest.py", "tests/test_conversations.py"]


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    server = PostgresServer()
    admin = server.start()
    yield server, admin
    server.stop()


def test_registry_and_history_suites_on_postgresql(postgres):
    _, admin = postgres
    env = dict(os.environ, RAGKB_TEST_DATABASE_URL=admin)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-8000:]
    assert " passed" in out and "skipped" not in out.split("\n")[-2], out[-2000:]


def test_the_database_really_is_postgresql(postgres, tmp_path):
    from pg import fresh_database
    from rag.conversations import ConversationStore
    from rag.settings import Settings
    from rag.store import KnowledgeBaseStore

    _, admin = postgres
    settings = Settings(data_dir=tmp_path / "data", database_url=fresh_database(admin), _env_file=None)
    store = KnowledgeBaseStore(settings)
    assert store.registry.engine.dialect.name == "postgresql"
    store.create("知识库")
    convs = ConversationStore(store.registry)
    c = convs.create(kb_name="知识库")
    convs.add_message(c.id, "user", "你好")
    store.close()
    assert not (tmp_path / "data" / "registry.db").exists()
    store = KnowledgeBaseStore(settings)  # another process sees the same rows
    assert [k.name for k in store.list()] == ["知识库"]
    assert ConversationStore(store.registry).list()[0].title == "你好"
    store.close()
