#!/usr/bin/env python
"""The running app under load: memory while idle and while ingesting, and N simultaneous streamed chats.

Starts a real `ragkb serve` (embedded Chroma, packaged embedder, embedded llama.cpp model server) on a
free loopback port in a temporary data directory, then:
1. memory: resident set size (VmRSS from /proc) of the app process and of its model server, after start,
   after a first answer (models loaded: "idle"), and the peak while files are uploaded and ingested
   through the REST API (sampled every 50 ms);
2. one streamed chat alone (the single-user time to first token), then N chats started at the same
   moment through the OpenAI-compatible endpoint: errors (goal 0), TTFT p50/p95 and total time.

Usage: python bench/app_load.py [--chats 8] [FILES ...]
(RAGKB_LLM_BASE_URL set: the app answers with that server, whose memory is then not counted)
(default files: app/samples plus the first two FinanceBench PDFs when ../shared/eval/public is present)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.local_llm import free_port, stop_process  # noqa: E402
from rag.settings import OFFLINE_ENV, apply_offline_env  # noqa: E402

apply_offline_env()

ROOT = Path(__file__).resolve().parent.parent
FINANCEBENCH = ROOT.parent / "shared/eval/public/financebench_dev/pdfs"
QUESTIONS = ["How do I re-index after changing the embedding model?", "ragkb 支持哪些文件格式？",
             "What happens when I ingest a changed file with the same name?", "检索使用了哪些方法？",
             "How are citations shown?", "如何删除一个知识库？", "Which models can answer questions?",
             "上传文件有大小限制吗？", "Does ragkb work offline?", "怎样启动 Web 界面？"]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def stream_chat(url: str, kb: str, question: str) -> dict:
    import httpx

    t0 = time.perf_counter()
    first = None
    text = []
    try:
        with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=600,
                          json={"model": kb, "stream": True, "messages": [{"role": "user", "content": question}]}) as r:
            if r.status_code != 200:
                return {"error": f"HTTP {r.status_code}: {r.read()[:200]!r}"}
            for line in r.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                delta = json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                if delta and first is None:
                    first = time.perf_counter()
                text.append(delta)
    except Exception as exc:  # noqa: BLE001 - counted
        return {"error": f"{type(exc).__name__}: {exc}"}
    answer = "".join(text)
    if first is None or "[error:" in answer:
        return {"error": answer.strip() or "no answer tokens"}
    return {"ttft_s": first - t0, "total_s": time.perf_counter() - t0, "chars": len(answer)}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chats", type=int, default=8)
    ap.add_argument("files", nargs="*", type=Path)
    args = ap.parse_args()
    import httpx

    files = [f for p in (args.files or [ROOT / "app" / "samples", *sorted(FINANCEBENCH.glob("*.pdf"))[:2]])
             for f in (sorted(x for x in p.iterdir() if x.is_file()) if p.is_dir() else [p])]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        (data / "models").mkdir(parents=True)
        for f in (ROOT / "data" / "models").glob("*"):  # reuse an assembled model instead of assembling again
            (data / "models" / f.name).symlink_to(f.resolve())
        port = free_port()
        # the user's model settings (RAGKB_LLM_*, RAGKB_LOCAL_MODEL) apply; their data and access settings do not
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("RAGKB_") or k.startswith("RAGKB_LLM_") or k == "RAGKB_LOCAL_MODEL"}
        env.update(OFFLINE_ENV)
        env.update({"RAGKB_DATA_DIR": str(data), "RAGKB_CONCURRENCY": str(args.chats)})
        log = open(Path(tmp) / "serve.log", "wb")
        exe = Path(sys.executable).parent / "ragkb"
        proc = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            t0 = time.perf_counter()
            while True:
                try:
                    if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.perf_counter() - t0 > 180:
                    print((Path(tmp) / "serve.log").read_text()[-3000:], file=sys.stderr)
                    return 1
                time.sleep(0.5)
            mem = {"app after start": rss_mb(proc.pid)}

            peak = {"app": 0.0, "llm": 0.0}
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    peak["app"] = max(peak["app"], rss_mb(proc.pid))
                    peak["llm"] = max([peak["llm"], *(rss_mb(c) for c in children(proc.pid))])
                    time.sleep(0.05)

            kb = "bench"
            httpx.post(f"{url}/api/kbs", json={"name": kb}, timeout=30).raise_for_status()
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            t1 = time.perf_counter()
            handles = [open(f, "rb") for f in files]
            try:
                r = httpx.post(f"{url}/api/kbs/{kb}/documents", timeout=3600,
                               files=[("files", (f.name, h)) for f, h in zip(files, handles)])
            finally:
                for h in handles:
                    h.close()
            ingest_s = time.perf_counter() - t1
            stop.set()
            sampler.join()
            r.raise_for_status()
            up = r.json()
            mem["app peak while ingesting"] = peak["app"]

            single = stream_chat(url, kb, QUESTIONS[0])  # also loads the model server
            llm_pids = children(proc.pid)
            mem["app idle (models loaded)"] = rss_mb(proc.pid)
            if llm_pids:  # none with RAGKB_LLM_BASE_URL: the model server is not the app's
                mem["model server idle"] = sum(rss_mb(c) for c in llm_pids)
            single2 = stream_chat(url, kb, QUESTIONS[1])

            results: list[dict] = [{}] * args.chats
            barrier = threading.Barrier(args.chats)

            def one(i: int) -> None:
                barrier.wait()
                results[i] = stream_chat(url, kb, QUESTIONS[i % len(QUESTIONS)])

            threads = [threading.Thread(target=one, args=(i,)) for i in range(args.chats)]
            t2 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t2
            mem["app peak overall (VmHWM)"] = rss_mb(proc.pid, "VmHWM")
            if llm_pids:
                mem["model server peak (VmHWM)"] = sum(rss_mb(c, "VmHWM") for c in llm_pids)
        finally:
            stop_process(proc, timeout=30)
            log.close()

    ok = [r for r in results if "ttft_s" in r]
    errors = [r["error"] for r in results if "error" in r]
    print(f"ingested through the API: {up['ingested']} files ({sum(x.get('pages') or 0 for x in up['results'])} "
          f"pages, {sum(x.get('chunks') or 0 for x in up['results'])} chunks) in {ingest_s:.1f} s; failed {up['failed']}")
    print("| memory | MB |")
    print("|---|---|")
    for k, v in mem.items():
        print(f"| {k} | {v:.0f} |")
    for name, s in (("single chat (first, model loading)", single), ("single chat (warm)", single2)):
        print(f"{name}: " + (f"TTFT {s['ttft_s']:.2f} s, total {s['total_s']:.2f} s" if "ttft_s" in s
                             else f"error {s['error']}"))
    print(f"{args.chats} simultaneous streamed chats: {len(ok)} answered, {len(errors)} errors"
          + (f" (e.g. {errors[0][:200]})" if errors else "") + f", all done in {wall:.1f} s")
    if ok:
        ttft = [r["ttft_s"] for r in ok]
        print(f"TTFT p50 {statistics.median(ttft):.2f} s, p95 {pct(ttft, 95):.2f} s, max {max(ttft):.2f} s; "
              f"total p50 {statistics.median(r['total_s'] for r in ok):.2f} s"
              + (f"; p95 TTFT / single warm TTFT = {pct(ttft, 95) / single2['ttft_s']:.1f}x" if "ttft_s" in single2 else ""))
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
