"""The embedded model server process: llama.cpp's own OpenAI-compatible HTTP server (xllamacpp).

Run as `python -m rag.llama_server --model X.gguf --alias NAME --port P ...` by rag.local_llm, never
imported by the app: the C++ server lives in this small child process, so a crash or a kill of the
model cannot take the app down. It serves until SIGTERM/SIGINT, or until the app that started it is
gone (killed without stopping it), then shuts the server down.

Continuous batching with `--slots` parallel sequences (each with `--ctx-per-slot` tokens of context)
and llama.cpp's prompt cache: a request whose prompt starts like an earlier one (ragkb's fixed
system prompt) only prefills the new part.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def build_params(args: argparse.Namespace):  # noqa: ANN201
    import xllamacpp as xlc

    p = xlc.CommonParams()
    p.model.path = args.model
    p.model_alias = {args.alias}
    p.hostnames = ["127.0.0.1"]
    p.port = args.port
    p.n_parallel = args.slots
    p.n_ctx = args.ctx_per_slot * args.slots  # llama.cpp splits n_ctx evenly between the slots
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    p.cont_batching = True
    p.cache_prompt = True
    p.offline = True  # never try a model hub
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="GGUF file")
    ap.add_argument("--alias", required=True, help="model name served at /v1/models")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--slots", type=int, default=1, help="requests decoded at the same time")
    ap.add_argument("--ctx-per-slot", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parent-pid", type=int, default=None,
                    help="exit when this process (the app) is gone, even if it was killed without stopping us")
    args = ap.parse_args(argv)

    import xllamacpp as xlc

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = xlc.Server(build_params(args))  # returns once the model is loaded and the port listens
    print(f"ragkb model server listening on {server.listening_address}", flush=True)
    while not stop.wait(1.0):
        if args.parent_pid and os.getppid() != args.parent_pid:  # the app died (SIGKILL, OOM): no orphan server
            break
    del server  # the destructor stops llama.cpp's HTTP and decode loops
    return 0


if __name__ == "__main__":
    sys.exit(main())
