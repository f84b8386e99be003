"""Helpers for the browser tests: start `ragkb serve` for real, drive Debian's Chromium with Playwright."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from conftest import REPO, cli_env, ragkb_exe, wait_http

CHROMIUM = os.environ.get("RAGKB_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
ARTIFACTS = Path(os.environ.get("RAGKB_TEST_ARTIFACTS", REPO / "test-artifacts"))


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


@contextmanager
def running_server(data_dir: Path, log_path: Path, **env: str):
    """`ragkb serve` on a free loopback port; yields its URL, stops it afterwards."""
    from rag.local_llm import free_port, stop_process

    port = free_port()
    log = open(log_path, "wb")
    proc = subprocess.Popen([ragkb_exe(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=cli_env(data_dir, **env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(proc, url + "/api/health", log_path, "ragkb serve", 180, ok=(200, 401))
        yield url
    finally:
        stop_process(proc, timeout=30)
        log.close()


@contextmanager
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Shots:
    """Screenshots of the main states, kept under test-artifacts/screenshots/ for a person to look at."""

    def __init__(self, name: str):
        self.dir = ARTIFACTS / "screenshots" / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.n = 0

    def __call__(self, page, label: str) -> Path:  # noqa: ANN001
        self.n += 1
        path = self.dir / f"{self.n:02d}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def wait_until(fn, timeout: float = 60, interval: float = 0.2, message: str = ""):  # noqa: ANN001
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(message or f"condition not met in {timeout}s (last value: {last!r})")


def fill(page, elem_id: str, value: str) -> None:  # noqa: ANN001
    page.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(value)


def bot_messages(page) -> list[str]:  # noqa: ANN001
    return page.locator("#chatbot [data-testid=bot]").all_inner_texts()


def user_messages(page) -> list[str]:  # noqa: ANN001
    return page.locator("#chatbot [data-testid=user]").all_inner_texts()


@contextmanager
def scripted_model(reply: str):
    """An OpenAI-compatible model server on loopback that gives `reply` to every chat request (streamed or
    not), for a browser test about what the page does with a reply; it also serves any other GET (an image the
    reply points at) and records the paths asked for in `.fetched`."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    fetched: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args):  # noqa: ANN002
            pass

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            if self.path.rstrip("/").endswith("/v1/models"):
                return self._send(json.dumps({"object": "list", "data": [{"id": "scripted", "object": "model"}]})
                                  .encode(), "application/json")
            fetched.append(self.path)
            self._send(b"GIF89a", "image/gif")

        def do_POST(self):  # noqa: N802
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            base = {"id": "x", "created": 0, "model": "scripted"}
            if not req.get("stream"):
                return self._send(json.dumps({**base, "object": "chat.completion", "choices": [{
                    "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode(),
                    "application/json")
            events = [{"role": "assistant", "content": reply}, {}]
            body = "".join("data: " + json.dumps({**base, "object": "chat.completion.chunk", "choices": [{
                "index": 0, "delta": d, "finish_reason": None if d else "stop"}]}) + "\n\n" for d in events)
            self._send((body + "data: [DONE]\n\n").encode(), "text/event-stream")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", fetched
    finally:
        server.shutdown()
        server.server_close()
