"""`bench/answer_latency.py --web`: answer latency as a web user gets it, through a real `ragkb serve`."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rag.local_llm import free_port, stop_process
from rag.settings import OFFLINE_ENV

ROOT = Path(__file__).resolve().parent.parent
WARM_UP = "What is this document about?"


def ask(url: str, kb: str, question: str, conversation_id: str | None = None) -> dict:
    """One streamed question: TTFT (first answer token), total, prompt tokens, refused, answer text."""
    import httpx

    t0 = time.perf_counter()
    first = None
    out: dict = {"text": "", "error": None}
    body = {"question": question, "stream": True}
    if conversation_id:
        body["conversation_id"] = conversation_id
    with httpx.stream("POST", f"{url}/api/kbs/{kb}/ask", json=body, timeout=600) as r:
        if r.status_code != 200:
            return {"error": f"HTTP {r.status_code}: {r.read()[:300]!r}"}
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            ev = json.loads(line[6:])
            if ev["type"] == "token":
                if first is None:
                    first = time.perf_counter()
                out["text"] += ev["text"]
            elif ev["type"] == "error":
                out["error"] = ev["text"]
            elif ev["type"] == "conversation":
                out["conversation_id"] = ev["conversation_id"]  # event data is flattened into the SSE payload
            elif ev["type"] == "done":
                out.update(refused=bool(ev.get("refused")), prompt_tokens=ev.get("prompt_tokens"),
                           timings=ev.get("timings", {}))
    end = time.perf_counter()
    out["ttft_s"] = (first or end) - t0
    out["total_s"] = end - t0
    return out


def _serve(data: Path, env_extra: dict, log_path: Path):
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("RAGKB_DATA_DIR", "RAGKB_ANSWER_CONTEXT_TOKENS")}
    env.update(OFFLINE_ENV)
    env.update({"RAGKB_DATA_DIR": str(data), **env_extra})
    log = open(log_path, "ab")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "ragkb"), "serve", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    while True:
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.perf_counter() - t0 > 300:
            stop_process(proc)
            raise RuntimeError("ragkb serve did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.5)


def _contains(text: str, answers: list[str]) -> bool:
    norm = "".join(text.split()).lower()
    return any("".join(a.split()).lower() in norm for a in answers)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p50 of an even count: the upper middle value)."""
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def run_web(pdf: Path, devset: Path, budgets: list[str], limit: int | None, json_out: Path | None = None,
            follow_up: str = "它需要编译几次？", new_question: str = "How do I insert a footnote?") -> int:
    import httpx

    if not pdf.exists():
        print(f"{pdf} not found: pass --pdf FILE (and --devset QUESTIONS.jsonl)", file=sys.stderr)
        return 2
    items = [json.loads(line) for line in devset.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [it for it in items if not it.get("follows")]  # follow-ups need their conversation: eval answers asks them
    items = items[:limit] if limit else items
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        (data / "models").mkdir(parents=True)
        for f in (ROOT / "data" / "models").glob("*"):  # reuse an assembled model instead of assembling again
            (data / "models" / f.name).symlink_to(f.resolve())
        kb = "manual"
        for budget in budgets:
            extra = {} if budget == "default" else {"RAGKB_ANSWER_CONTEXT_TOKENS": budget}
            proc, url = _serve(data, extra, Path(tmp) / "serve.log")
            try:
                if not any(k["name"] == kb for k in httpx.get(f"{url}/api/kbs", timeout=30).json()):
                    httpx.post(f"{url}/api/kbs", json={"name": kb}, timeout=30).raise_for_status()
                    t = time.perf_counter()
                    with open(pdf, "rb") as fh:
                        r = httpx.post(f"{url}/api/kbs/{kb}/documents", timeout=3600, files=[("files", (pdf.name, fh))])
                    r.raise_for_status()
                    print(f"uploaded {pdf.name} through the API in {time.perf_counter() - t:.1f} s: "
                          f"{r.json()['results']}", file=sys.stderr)
                warm = ask(url, kb, WARM_UP)  # starts the model server, loads the embedder and the indexes
                results = []
                for it in items:
                    res = ask(url, kb, it["question"])
                    res.update(item=it)
                    results.append(res)
                    print(f"[budget {budget}] {it['question'][:40]} -> TTFT {res.get('ttft_s', 0):.1f} s, "
                          f"{res.get('prompt_tokens')} prompt tokens: {res.get('text', '')[:80]!r}", file=sys.stderr)
                # a conversation: a question, a follow-up that refers back to it, then a complete new question
                first = ask(url, kb, items[0]["question"])
                turns = [first]
                for q in (follow_up, new_question):
                    turns.append(ask(url, kb, q, first.get("conversation_id")))
                for q, t in zip((items[0]["question"], follow_up, new_question), turns):
                    print(f"[budget {budget}] chat: {q} -> TTFT {t.get('ttft_s', 0):.1f} s, {t.get('prompt_tokens')} "
                          f"prompt tokens, timings {t.get('timings')}: {t.get('text', '')[:100]!r}", file=sys.stderr)
            finally:
                stop_process(proc, timeout=30)
            rows.append((budget, warm, results, turns))
    if json_out:
        json_out.write_text(json.dumps([{"budget": b, "warm_up": w, "questions": r, "chat": t} for b, w, r, t in rows],
                                       ensure_ascii=False, indent=1), encoding="utf-8")

    print(f"\nDocument: {pdf.name}; questions: {devset.name} ({len(items)}); after one warm-up question; "
          "each question streamed through POST /api/kbs/{kb}/ask on a real `ragkb serve`. TTFT: time to the first "
          "answer token, over the answerable questions the app answered (not refused); refusal time: the slowest "
          "refusal of an out-of-scope question.\n")
    print("| context | prompt tokens p50 / max | TTFT p50 | TTFT p95 | total p50 | holds the answer | refused | "
          "out-of-scope: refused | refusal time max | chat: follow-up TTFT | chat: new question TTFT |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for budget, _warm, results, turns in rows:
        ans = [r for r in results if r["item"]["answers"] and not r.get("error")]
        answered = [r for r in ans if not r["refused"]]
        oos = [r for r in results if not r["item"]["answers"] and not r.get("error")]
        errors = [r for r in results if r.get("error")]
        label = "whole blocks (RAGKB_ANSWER_CONTEXT_TOKENS=0)" if budget == "0" else \
            f"evidence within budget ({'default' if budget == 'default' else budget})"
        ttft = [r["ttft_s"] for r in answered]
        tokens = [r["prompt_tokens"] for r in answered if r.get("prompt_tokens")]
        refusals = [r["total_s"] for r in oos if r["refused"]]
        print(f"| {label} | {f'{statistics.median(tokens):.0f} / {max(tokens)}' if tokens else 'n/a'} | "
              f"{pct(ttft, 50):.1f} s | {pct(ttft, 95):.1f} s | {pct([r['total_s'] for r in answered], 50):.1f} s | "
              f"{sum(_contains(r['text'], r['item']['answers']) for r in ans)}/{len(ans)} | "
              f"{sum(r['refused'] for r in ans)}/{len(ans)} | {len(refusals)}/{len(oos)} | "
              f"{max(refusals, default=float('nan')):.2f} s | {turns[1]['ttft_s']:.1f} s | "
              f"{turns[2]['ttft_s']:.1f} s |" + (f" errors: {len(errors)}" if errors else ""))
    return 0
