"""Answers from a real OpenAI-compatible server on loopback: the embedded llama.cpp server with the
packaged Qwen2.5-Coder-0.5B-Instruct model (and, opt-in, real vLLM: RAGKB_TEST_VLLM=1)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, cli_env, ragkb_exe, wait_http
from ingest.pipeline import ingest_paths
from rag.answer import AnswerService
from rag.llm import LLMService
from rag.local_llm import stop_process
from rag.answer.prompts import NO_ANSWER
from rag.settings import Settings
from rag.store import KnowledgeBaseStore
from rag.text import query_language

pytestmark = pytest.mark.llm

SAMPLES = REPO / "app" / "samples"


VLLM = pytest.mark.skipif(os.environ.get("RAGKB_TEST_VLLM") != "1",
                          reason="real vLLM tier is opt-in: bash scripts/setup_vllm.sh, then RAGKB_TEST_VLLM=1")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Answer service over the bundled samples with the embedded llama.cpp server."""
    data = tmp_path_factory.mktemp("llm") / "data"
    settings = Settings(data_dir=data, _env_file=None)
    store = KnowledgeBaseStore(settings)
    assert not ingest_paths(store, "ragkb", [SAMPLES]).failed
    llm = LLMService(settings)
    service = AnswerService(store, llm)
    yield service
    llm.close()
    store.close()


def _start_vllm(log_path: Path):
    """`python -m vllm.entrypoints.openai.api_server` from .venv-vllm on a free loopback port."""
    from rag.local_llm import free_port

    python = Path(os.environ.get("RAGKB_VLLM_PYTHON", REPO / ".venv-vllm" / "bin" / "python"))
    model = Path(os.environ.get("RAGKB_VLLM_MODEL_DIR", REPO / "data" / "models" / "qwen2.5-coder-0.5b-instruct-hf"))
    assert python.exists() and (model / "config.json").exists(), "run bash scripts/setup_vllm.sh first"
    port = free_port()
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="2", HF_HUB_OFFLINE="1", VLLM_NO_USAGE_STATS="1",
               DO_NOT_TRACK="1")
    log = open(log_path, "wb")
    proc = subprocess.Popen([str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
                             "--served-model-name", "qwen-vllm", "--host", "127.0.0.1", "--port", str(port),
                             "--enforce-eager", "--max-model-len", "4096"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_http(proc, f"http://127.0.0.1:{port}/v1/models", log_path, "vLLM", 400, interval=1)
    except AssertionError:
        proc.kill()
        raise
    return proc, f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module", params=["llama.cpp", pytest.param("vllm", marks=[VLLM, pytest.mark.vllm])])
def contract(request, env, tmp_path_factory):
    """The same answer contract against each OpenAI-compatible server: the embedded llama.cpp server,
    and (opt-in) real vLLM, the production protocol and chat template."""
    if request.param == "llama.cpp":
        yield env
        return
    proc, base = _start_vllm(tmp_path_factory.mktemp("vllm") / "vllm.log")
    llm = LLMService(env.settings.model_copy(update={"llm_base_url": base, "llm_model": None}))
    try:
        yield AnswerService(env.store, llm)
    finally:
        stop_process(proc, timeout=30)


def run(service, question, history=None, kb="ragkb"):
    events = list(service.stream(kb, question, history or []))
    text = "".join(e.text for e in events if e.type == "token")
    sources = next((e.sources for e in events if e.type == "sources"), [])
    errors = [e.text for e in events if e.type == "error"]
    return text, sources, errors, events


def test_embedded_server_is_on_loopback_and_speaks_openai(env):
    import httpx

    base, model = env.llm.endpoint()
    assert base.startswith("http://127.0.0.1:")
    listed = httpx.get(f"{base}/models", timeout=10).json()
    assert model in [m["id"] for m in listed["data"]]


def test_prompt_is_counted_with_the_model_tokenizer_and_reported(env):
    import httpx

    base, _ = env.llm.endpoint()
    text = "ragkb 把文档切成块 and embeds them"
    served = httpx.post(base.replace("/v1", "/tokenize"), json={"content": text}, timeout=10).json()["tokens"]
    assert env.llm.count_tokens(text) == len(served) and env.llm._tokenize_style == "content"
    done = run(env, "How do I re-index after changing the embedding model?")[3][-1]
    # the server's own count of what it read; the fixed system prompt and a cut context keep it small
    assert 150 < done.prompt_tokens < 1000 and done.completion_tokens > 0


def test_a_killed_model_server_is_restarted_and_the_app_keeps_answering(env):
    import signal

    env.llm.endpoint()
    proc = env.llm._server._proc
    os.kill(proc.pid, signal.SIGKILL)  # the model process dies (crash, out of memory); the app must not
    proc.wait(timeout=10)
    text, sources, errors, _ = run(env, "ragkb 支持哪些文件格式？")
    assert not errors and "PDF" in text and sources
    assert env.llm._server._proc.pid != proc.pid


def test_answer_streams_token_by_token_with_valid_citation(contract):
    text, sources, errors, events = run(contract, "How do I re-index after changing the embedding model?")
    assert not errors
    tokens = [e for e in events if e.type == "token"]
    assert len(tokens) >= 5, "the answer must arrive as a stream"
    assert "reindex" in text.replace("-", "")
    assert sources and sources[0].filename == "samples/ragkb-guide.md"
    assert sources[0].section.endswith("Changing the embedding model")
    assert f"[{sources[0].n}]" in text
    timings = events[-1].timings
    assert 0 < timings["before_llm_ms"] < timings["ttft_ms"]


def test_chinese_question_gets_chinese_answer_with_citation(contract):
    text, sources, errors, _ = run(contract, "ragkb 支持哪些文件格式？")
    assert not errors
    assert query_language(text) == "zh", text
    assert "PDF" in text and "Markdown" in text
    assert sources and sources[0].filename == "samples/使用说明.md"
    assert f"[{sources[0].n}]" in text


def test_question_outside_the_knowledge_base_is_refused(contract):
    text, sources, errors, events = run(contract, "What is the capital of Australia?")
    assert text == NO_ANSWER["en"] and sources == [] and not errors
    text, sources, _, _ = run(contract, "澳大利亚的首都是哪里？")
    assert text == NO_ANSWER["zh"] and sources == []


def test_follow_up_is_condensed_and_retrieves_the_right_section(contract):
    history = [("user", "ragkb 是什么？"), ("assistant", "ragkb 是一个可以自己部署的知识库助手[1]。")]
    text, sources, errors, events = run(contract, "它支持哪些格式？", history)
    assert not errors
    done = events[-1]
    assert done.standalone_question != "它支持哪些格式？"  # rewritten using the conversation
    assert "PDF" in text
    assert any(s.section and s.section.endswith("支持的文件格式") for s in sources)


def test_remote_server_with_model_taken_from_v1_models(env, tmp_path):
    base, model = env.llm.endpoint()
    settings = env.settings.model_copy(update={"llm_base_url": base, "llm_model": None})
    remote = LLMService(settings)
    assert remote.endpoint() == (base, model)
    service = AnswerService(env.store, remote)
    text, sources, errors, _ = run(service, "Where do documents go?")
    assert not errors and text


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _service_at(env, port: int, timeout: float) -> AnswerService:
    """An answer service over the same knowledge base, talking to a server on this loopback port."""
    settings = env.settings.model_copy(update={"llm_base_url": f"http://127.0.0.1:{port}/v1",
                                               "llm_model": "m", "llm_timeout": timeout})
    return AnswerService(env.store, LLMService(settings))


def test_dead_server_gives_a_clear_error_quickly(env):
    port = _dead_port()
    service = _service_at(env, port, 5.0)
    t = time.monotonic()
    text, sources, errors, _ = run(service, "How do I re-index after changing the embedding model?")
    assert time.monotonic() - t < 10
    assert errors and "not reachable" in errors[0] and f"127.0.0.1:{port}" in errors[0]
    assert sources == []


def test_hanging_server_times_out_with_a_clear_error(env):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])  # accept and never answer
            except OSError:
                pass

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        service = _service_at(env, port, 2.0)
        t = time.monotonic()
        _, _, errors, _ = run(service, "How do I re-index after changing the embedding model?")
        assert time.monotonic() - t < 8
        assert errors and "did not answer within 2s" in errors[0]
    finally:
        stop.set()
        th.join()
        for c in conns:
            c.close()
        srv.close()


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    """A data directory holding the bundled samples in knowledge base "demo", ingested once for the CLI tests
    below (`ragkb ingest` itself is tested in test_cli.py)."""
    data = tmp_path_factory.mktemp("cli") / "data"
    store = KnowledgeBaseStore(Settings(data_dir=data, _env_file=None))
    try:
        assert not ingest_paths(store, "demo", [SAMPLES]).failed
    finally:
        store.close()
    return data


def test_cli_ask_streams_answer_and_sources(demo_data):
    data = demo_data
    r = subprocess.run([ragkb_exe(), "ask", "demo", "支持哪些文件格式？"], env=cli_env(data), cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "PDF" in r.stdout and "Sources" in r.stdout and "samples/使用说明.md" in r.stdout
    r = subprocess.run([ragkb_exe(), "ask", "demo", "hello?"], cwd=REPO, capture_output=True, text=True,
                       env=cli_env(data, RAGKB_LLM_BASE_URL=f"http://127.0.0.1:{_dead_port()}/v1",
                                   RAGKB_LLM_MODEL="m", RAGKB_LLM_TIMEOUT="3", RAGKB_MIN_LEXICAL_COVERAGE="0",
                                   RAGKB_MIN_DENSE_SIMILARITY="-1"), timeout=120)
    assert r.returncode == 2 and "not reachable" in r.stderr


def test_cli_chat_keeps_the_conversation(demo_data):
    data = demo_data
    r = subprocess.run([ragkb_exe(), "chat", "demo"], env=cli_env(data), cwd=REPO, capture_output=True, text=True,
                       input="ragkb 是什么？\n它支持哪些格式？\n\n", timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("you>") >= 2 and r.stdout.count("ragkb>") == 2
    second = r.stdout.split("ragkb>")[2]
    assert "PDF" in second and "使用说明.md" in second  # the follow-up was understood and cited
    assert "understanding the follow-up question" in r.stderr


def _model_servers(data: Path) -> list[int]:
    """pids of embedded model server processes serving a model from `data`."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"rag.llama_server" in args and any(str(data).encode() in a for a in args):
            pids.append(int(cmdline.parent.name))
    return pids


def _wait(cond, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.25)
    return cond()


def test_serve_loads_the_model_before_the_first_question_and_leaves_no_model_process(tmp_path):
    import signal

    from webui import running_server

    data = tmp_path / "data"
    # stopped right after start, while the warm-up is still assembling or starting the model: nothing is left
    with running_server(data, tmp_path / "serve1.log"):
        pass
    assert _wait(lambda: not _model_servers(data), 15), "a model server outlived the app that started it"

    # no question asked: the model comes up by itself, so the first question does not wait for it
    log = tmp_path / "serve2.log"
    with running_server(data, log):
        assert _wait(lambda: "warm-up done" in log.read_text(errors="replace"), 120), log.read_text()[-2000:]
        assert len(_model_servers(data)) == 1
    assert _wait(lambda: not _model_servers(data), 15)

    # the app is killed outright (SIGKILL, out of memory): its model server does not stay behind as an orphan
    from rag.local_llm import free_port

    proc = subprocess.Popen([ragkb_exe(), "serve", "--port", str(free_port())], env=cli_env(data),
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert _wait(lambda: _model_servers(data), 120)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert _wait(lambda: not _model_servers(data), 15), "the model server outlived a killed app"
    finally:
        stop_process(proc)
