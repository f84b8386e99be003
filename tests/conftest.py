from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from rag.settings import OFFLINE_ENV

for _k, _v in OFFLINE_ENV.items():
    os.environ.setdefault(_k, _v)
# The tests are about the app, not the model choice (test_local_model covers RAGKB_LOCAL_MODEL=auto): the packaged
# 0.5B model they seed answers on every machine, also one where auto would pick the 1.5B.
TEST_LOCAL_MODEL = "qwen2.5-coder-0.5b"
os.environ["RAGKB_LOCAL_MODEL"] = TEST_LOCAL_MODEL

sys.path.insert(0, str(Path(__file__).parent))

from rag.settings import Settings  # noqa: E402
from rag.store import KnowledgeBaseStore  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh data directory. With RAGKB_TEST_DATABASE_URL (set by test_postgres.py) the
    registry and the conversations go to a new database on that PostgreSQL server instead of SQLite;
    with RAGKB_TEST_CHROMA_URL (set by test_chroma_server.py) the vectors go to that Chroma server."""
    extra = {}
    admin = os.environ.get("RAGKB_TEST_DATABASE_URL")
    if admin:
        from pg import fresh_database

        extra["database_url"] = fresh_database(admin)
    if os.environ.get("RAGKB_TEST_CHROMA_URL"):  # set by test_chroma_server.py: vectors in a Chroma server
        extra["chroma_url"] = os.environ["RAGKB_TEST_CHROMA_URL"]
    return Settings(data_dir=tmp_path / "data", _env_file=None, **extra)


@pytest.fixture(scope="module")
def kb_store(tmp_path_factory):
    """The generated test corpus (docs.write_corpus) in knowledge base "kb", once per test module."""
    from docs import write_corpus
    from ingest.pipeline import ingest_paths

    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root / "c")
    store = KnowledgeBaseStore(Settings(data_dir=root / "data", _env_file=None))
    ingest_paths(store, "kb", [root / "c"])
    yield store
    store.close()


@pytest.fixture
def store(settings: Settings):
    s = KnowledgeBaseStore(settings)
    yield s
    s.close()


def seed_packaged_model(data_dir: Path) -> None:
    """Hard-link the packaged model, assembled and verified once per machine, into a fresh data directory. The
    app would assemble it there itself (concatenate the parts, sha256 490 MB: 1-2 s); dozens of test data
    directories made that minutes of the suite. The app still checks the link against the stamp it trusts
    (size and mtime) and reassembles on a mismatch; assembling itself is tested on its own (test_local_model)."""
    import tempfile

    from rag.local_llm import DEFAULT_MODEL_FILE, assemble_default_model

    cache = Path(tempfile.gettempdir()) / f"ragkb-test-model-{os.getuid()}"
    source = assemble_default_model(cache)
    models = data_dir / "models"
    target = models / DEFAULT_MODEL_FILE
    if target.exists():
        return
    models.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another file system: the app assembles its own copy
        return
    stamp = source.with_name(source.name + ".verified")
    (models / stamp.name).write_text(stamp.read_text())


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    seed_packaged_model(data_dir)
    # the threads scripts/test.sh gives each worker's model servers go to the programs the tests start too
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKB_") or k == "RAGKB_LLM_LOCAL_THREADS"}
    env.update(OFFLINE_ENV)
    env["RAGKB_DATA_DIR"] = str(data_dir)
    env["RAGKB_LOCAL_MODEL"] = TEST_LOCAL_MODEL
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def run_ragkb(args: list[str], env: dict[str, str], cwd: Path = REPO):  # noqa: ANN201
    """`ragkb ARGS` run in this process with exactly the environment `env` (from cli_env), returning what
    subprocess.run(capture_output=True, text=True) would: returncode, stdout, stderr. For the smoke runs of the
    evaluation commands, which are about their reports, not about starting a program: each process would import
    the app and load the embedder again, seconds per call. The installed `ragkb` program itself is run by the CLI
    tests (test_cli, test_answers_llm, test_reindex)."""
    import subprocess
    import traceback

    from typer.testing import CliRunner

    from app.cli import app

    saved, here = dict(os.environ), Path.cwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, stderr)


def ragkb_exe() -> str:
    exe = Path(sys.executable).parent / "ragkb"
    assert exe.exists(), "the ragkb console script must be installed in the test venv"
    return str(exe)


def wait_http(proc, url: str, log_path: Path, what: str, timeout: float,  # noqa: ANN001
              ok: tuple[int, ...] = (200,), interval: float = 0.5) -> None:
    """Wait until `url` answers with one of `ok` while `proc` (a server the test started) runs; on exit or
    timeout, fail with the end of its log."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"{what} exited:\n" + log_path.read_text(errors="replace")[-3000:]
        try:
            if httpx.get(url, timeout=2).status_code in ok:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{what} did not start:\n" + log_path.read_text(errors="replace")[-3000:]
        time.sleep(interval)


@pytest.fixture(scope="session")
def shared_model_url(tmp_path_factory):
    """One embedded model server (the app's own, on loopback) for smoke runs of commands that are not about starting
    one, reached through RAGKB_LLM_BASE_URL as a user's own server would be: each `ragkb eval` or benchmark would
    otherwise start one and prefill the system prompt cold, seconds per test. Starting the embedded server is
    tested in test_answers_llm (and bench/answer_latency measures it)."""
    from rag.local_llm import DEFAULT_MODEL_ALIAS, DEFAULT_MODEL_FILE, LocalLLMServer

    data = tmp_path_factory.mktemp("shared-llm")
    seed_packaged_model(data)
    s = Settings(_env_file=None)  # the server the app would start: same context size, threads and slots
    server = LocalLLMServer(data / "models" / DEFAULT_MODEL_FILE, DEFAULT_MODEL_ALIAS, data / "llm-server.log",
                            n_ctx=s.llm_local_ctx, threads=s.llm_local_threads, slots=s.concurrency)
    try:
        yield server.start()
    finally:
        server.stop()
