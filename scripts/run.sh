#!/usr/bin/env bash
# Install everything into .venv and start ragkb on its embedded defaults (no GPU, no internet, no config).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh local
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False ANONYMIZED_TELEMETRY=False HF_HUB_DISABLE_PROGRESS_BARS=1
.venv/bin/ragkb demo
echo
.venv/bin/ragkb --help
