#!/usr/bin/env bash
# Create .venv and install ragkb into it. Usage: scripts/setup.sh [extras]  (e.g. "local,test")
# "local" is the embedded model (llama.cpp's server as the prebuilt xllamacpp wheel + packaged GGUF):
# nothing compiles, a fresh install takes about 2 minutes. "local-1-5b" adds the larger packaged model.
# Idempotent: re-running only reinstalls when pyproject.toml or this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False ANONYMIZED_TELEMETRY=False HF_HUB_DISABLE_PROGRESS_BARS=1 PIP_DISABLE_PIP_VERSION_CHECK=1

extra="${1:-}"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "ragkb needs Python >= 3.11 (found: $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating virtual environment .venv"
  "$PY" -m venv .venv
fi
stamp=".venv/.ragkb-installed${extra:+-$extra}"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "==> .venv is up to date"
  exit 0
fi
echo "==> installing torch (CPU build) first"
.venv/bin/python -m pip install -q --upgrade pip
# torch==2.13.0 is the local CPU build; a plain "torch" would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
echo "==> installing ragkb${extra:+ with [$extra]}"
.venv/bin/python -m pip install -q -e ".${extra:+[$extra]}"
echo "$want" > "$stamp"
echo "==> ready: .venv/bin/ragkb"
