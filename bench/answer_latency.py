#!/usr/bin/env python
"""Answer latency on this machine: the embedded model's own speed and what ragkb adds before it.

For each question, in the same run:
- app: ragkb's AnswerService end to end, the question asked once as a user asks it (the fixed system
  prompt already in the server's prompt cache, as after `ragkb serve`'s warm-up): time to first token,
  the model's part of it, and ragkb's own time before the model call (retrieval + prompt assembly);
- raw: the exact prompt ragkb built, streamed straight to the model server with its prompt cache off
  (`cache_prompt: false`): the cold prefill time, and decode tokens/s (one streamed chunk = one token).

Usage: python bench/answer_latency.py [--repeat 3] [--questions N]

--web [--pdf FILE] measures what a user of the web app gets instead: a real `ragkb serve`, the PDF
uploaded through the REST API (default: the ~140-page lshort-zh-cn manual from ../shared/eval/public,
with the questions of app/evaluation/devsets/lshort_zh.jsonl), one warm-up question, then every question
streamed through `POST /api/kbs/{kb}/ask` ("stream": true): time to the first answer token, prompt tokens,
refusal time for out-of-scope questions, and whether the answer holds the expected text. Run twice in the
same invocation: whole context blocks (RAGKB_ANSWER_CONTEXT_TOKENS=0, the former prompt) and the
evidence-within-budget prompt (the default), so the two rows are comparable.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.settings import Settings, apply_offline_env  # noqa: E402

apply_offline_env()

QUESTIONS = ["How do I re-index after changing the embedding model?", "ragkb 支持哪些文件格式？",
             "What happens when I ingest a changed file with the same name?", "检索使用了哪些方法？"]


ROOT = Path(__file__).resolve().parent.parent
LSHORT = ROOT.parent / "shared/eval/public/pdf_ingest_dev/pdfs/lshort-zh-cn.pdf"
DEVSET = ROOT / "app/evaluation/devsets/lshort_zh.jsonl"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--questions", type=int, default=None, help="Use only the first N questions.")
    ap.add_argument("--web", action="store_true", help="Through a real `ragkb serve` and its REST API.")
    ap.add_argument("--pdf", type=Path, default=LSHORT, help="--web: the document to upload.")
    ap.add_argument("--devset", type=Path, default=DEVSET, help="--web: questions (JSONL: question, answers).")
    ap.add_argument("--budgets", default="0,default", help="--web: RAGKB_ANSWER_CONTEXT_TOKENS values to compare.")
    ap.add_argument("--follow-up", default="它需要编译几次？", help="--web: a follow-up to the first question.")
    ap.add_argument("--new-question", default="How do I insert a footnote?",
                    help="--web: a complete new question asked in the same chat after the follow-up.")
    ap.add_argument("--json-out", type=Path, default=None, help="--web: every answer, as JSON.")
    args = ap.parse_args()
    if args.web:
        from web_latency import run_web

        return run_web(args.pdf, args.devset, args.budgets.split(","), args.questions, args.json_out,
                       args.follow_up, args.new_question)
    args.questions = args.questions or len(QUESTIONS)
    import openai

    import rag.answer.service as chain_mod
    from ingest.pipeline import ingest_paths
    from rag.answer import AnswerService
    from rag.store import KnowledgeBaseStore

    samples = Path(__file__).resolve().parent.parent / "app" / "samples"
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), _env_file=None)
        settings.data_dir.joinpath("models").mkdir(parents=True)
        real_models = Path("data/models")  # reuse an assembled model if there is one
        if (real_models / "qwen2.5-coder-0.5b-instruct-q4.gguf").exists():
            for f in real_models.iterdir():
                (settings.data_dir / "models" / f.name).symlink_to(f.resolve())
        store = KnowledgeBaseStore(settings)
        ingest_paths(store, "bench", [samples])
        service = AnswerService(store)
        t = time.perf_counter()
        base, model = service.llm.endpoint()
        start_s = time.perf_counter() - t
        client = openai.OpenAI(base_url=base, api_key="x")
        prompts: list = []
        orig = chain_mod.answer_messages

        def capture(*a, **k):
            m = orig(*a, **k)
            prompts.append(m)
            return m

        chain_mod.answer_messages = capture
        service.warm_up()  # what `ragkb serve` does at start: embedder loaded, system prompt in the prompt cache
        service.answer("bench", "hello?")  # loads the lexical index; not measured
        rows = []
        for q in QUESTIONS[:args.questions]:
            # app: the question asked for the first time (as a user asks it): only the fixed system prompt
            # is in the server's prompt cache, as in production
            prompts.clear()
            events = list(service.stream("bench", q))
            timings = events[-1].timings
            if not prompts:  # refused before the model
                continue
            msgs = [{"role": r, "content": c} for r, c in prompts[0]]
            raw = []
            for _ in range(args.repeat):
                # raw: the same prompt straight to the server with its prompt cache off (cold prefill)
                t0 = time.perf_counter()
                first = None
                n = 0
                for ch in client.chat.completions.create(model=model, messages=msgs, stream=True, temperature=0.0,
                                                         max_tokens=settings.llm_max_tokens,
                                                         extra_body={"cache_prompt": False}):
                    if ch.choices and ch.choices[0].delta.content:
                        n += 1
                        if first is None:
                            first = time.perf_counter()
                end = time.perf_counter()
                raw.append(((first or end) - t0) * 1000)
            rows.append({"q": q, "prompt_tokens": events[-1].prompt_tokens or 0,
                         "raw_ttft_ms": statistics.median(raw), "tokens": n,
                         "tok_s": (n - 1) / (end - first) if first and n > 1 else 0.0,
                         "app_ttft_ms": timings.get("ttft_ms", 0.0), "llm_ttft_ms": timings.get("llm_ttft_ms", 0.0),
                         "before_llm_ms": timings.get("before_llm_ms", 0.0),
                         "retrieval_ms": timings.get("retrieval_ms", 0.0)})
        service.llm.close()
        store.close()

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"model server start (incl. model assembly/verification if needed): {start_s:.1f} s")
    print("app = ragkb end to end, each question asked once (the fixed system prompt comes from the server's "
          f"prompt cache, as in production); raw = the same prompt sent straight to the server with its prompt "
          f"cache off (median of {args.repeat})")
    print("| question | prompt tokens | raw TTFT ms (cold) | app TTFT ms | app: model TTFT ms | app: before model ms "
          "| retrieval ms | tokens | decode tok/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['q'][:40]} | {r['prompt_tokens']} | {r['raw_ttft_ms']:.0f} | {r['app_ttft_ms']:.0f} | "
              f"{r['llm_ttft_ms']:.0f} | {r['before_llm_ms']:.1f} | {r['retrieval_ms']:.1f} | {r['tokens']} | "
              f"{r['tok_s']:.1f} |")
    print(f"\nmedian over {len(rows)} question{'s' if len(rows) != 1 else ''}: raw TTFT (cold) {med('raw_ttft_ms'):.0f} ms, app TTFT "
          f"{med('app_ttft_ms'):.0f} ms (cached system prompt: {med('raw_ttft_ms') - med('llm_ttft_ms'):.0f} ms "
          f"saved), app overhead before the model call {med('before_llm_ms'):.1f} ms, decode {med('tok_s'):.1f} tok/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
