#!/usr/bin/env bash
# Install ragkb and its test dependencies into .venv, then run the whole test suite (all tiers).
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh local,test
# System programs the tests start for real, from Debian's packages (installed once when missing):
#   chromium + fonts: the browser tests (Playwright drives it; `playwright install` is never used)
#   postgresql: the PostgreSQL registry tests;  docker-compose: validates docker-compose.yml (no engine)
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -d /usr/share/fonts/opentype/noto ] || need+=(fonts-noto-cjk)
[ -d /usr/share/fonts/truetype/noto ] || need+=(fonts-noto-color-emoji)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
lean=()
command -v docker-compose >/dev/null 2>&1 || lean+=(docker-compose)
if [ $((${#need[@]} + ${#lean[@]})) -gt 0 ]; then
  echo "==> installing with apt: ${need[*]} ${lean[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  [ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  # no recommends: only the compose file parser is needed, not a Docker engine
  [ ${#lean[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False ANONYMIZED_TELEMETRY=False HF_HUB_DISABLE_PROGRESS_BARS=1
# One pytest worker per core (at most 4; RAGKB_TEST_WORKERS=N to choose, 1 for one process), each test file on one
# worker (its module fixtures are built once), and each worker's model server and embedder on cores/workers
# threads: a llama.cpp server on 2 threads that shares its 2 cores with another busy process waits at every step
# and runs 2-3x slower, so two workers on 2 threads each took longer than one process (1091 s vs 895 s here).
cores=$(nproc 2>/dev/null || echo 1)
workers=${RAGKB_TEST_WORKERS:-$(( cores < 4 ? cores : 4 ))}
if [ "$workers" -gt 1 ]; then
  threads=$(( cores / workers > 0 ? cores / workers : 1 ))
  export OMP_NUM_THREADS=$threads RAGKB_LLM_LOCAL_THREADS=$threads
  exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
fi
exec .venv/bin/python -m pytest "$@"
