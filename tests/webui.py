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
