"""The HTTP server: FastAPI with the Gradio UI mounted at "/" (the REST and OpenAI-compatible
routes live beside it). `ragkb serve` runs it with uvicorn."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.services import RagkbService
from rag.settings import Settings, apply_offline_env

log = logging.getLogger(__name__)


def create_app(service: RagkbService | None = None, settings: Settings | None = None, ui: bool = True) -> FastAPI:
    apply_offline_env()
    service = service or RagkbService(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if service.settings.warm_up:  # in the background: the UI serves at once, the first answer comes sooner
            threading.Thread(target=service.warm_up, name="ragkb-warm-up", daemon=True).start()
        yield
        service.close()  # stops the embedded model server with the app

    app = FastAPI(title="ragkb", version="0.1.0", lifespan=lifespan,
                  description="Self-hosted RAG knowledge bases: REST API, OpenAI-compatible chat, web UI.")
    app.state.service = service

    @app.get("/api/health", tags=["health"])
    def health() -> dict:
        """Liveness: the registry answers. The model server is started on the first question."""
        return {"status": "ok", "knowledge_bases": len(service.kb_names())}

    from app.api import add_api

    add_api(app, service)
    if ui:
        import gradio as gr

        from app.ui import build_ui, ui_launch_kwargs

        demo = build_ui(service)
        demo.queue(default_concurrency_limit=service.settings.concurrency)
        app = gr.mount_gradio_app(app, demo, path="/", **ui_launch_kwargs(service))
    return app


def serve(host: str, port: int, settings: Settings | None = None) -> None:
    import uvicorn

    for name in ("app", "ingest", "rag"):  # ragkb's own messages (warm-up, model server) beside uvicorn's
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s:     ragkb: %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
    app = create_app(settings=settings)
    log.info("ragkb on http://%s:%s", host, port)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
