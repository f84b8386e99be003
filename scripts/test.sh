#!/usr/bin/env bash
# Install ragkb and its test dependencies into .venv, then run the whole test suite (all tiers).
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh local,test
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False ANONYMIZED_TELEMETRY=False HF_HUB_DISABLE_PROGRESS_BARS=1
exec .venv/bin/python -m pytest "$@"
