"""REST API and OpenAI-compatible endpoints: thin routers over `RagkbService`, one module per resource.

Errors are JSON `{"error": {"message", "type"}}` with the status that says what went wrong
(404 unknown knowledge base, 409 name taken, 413 too large, 415 unsupported type, 422 bad request,
503 model unavailable). With `RAGKB_API_KEYS` set, every route but /api/health needs
`Authorization: Bearer KEY` (or `X-API-Key: KEY`). Routes get the service from `app.state.service`
(set by `app.server.create_app(service)`), so a test hands in the service it built.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.routing import Match

from app.api import answers, conversations, knowledge_bases, openai_compat
from app.api.errors import error_response, install_error_handlers
from app.services import RagkbService

ROUTERS = (knowledge_bases.router, answers.router, conversations.router, openai_compat.router)


def add_api(app: FastAPI, service: RagkbService) -> None:
    app.state.service = service
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    _api_paths_answer_json(app)


def _api_paths_answer_json(app: FastAPI) -> None:
    """The web UI is mounted at "/" and would answer every other path under /api and /v1 with its own
    404 page. A known API path with a method it does not take gets 405 (with Allow); an unknown path
    under /api or /v1 gets the API's JSON 404."""

    def flat(routes):  # noqa: ANN001, ANN202  (FastAPI >= 0.16x keeps included routers as objects)
        for r in routes:
            inner = getattr(r, "original_router", None)
            yield from (flat(inner.routes) if inner is not None else [r])

    api_routes = [r for r in flat(app.router.routes) if getattr(r, "path", "").startswith(("/api/", "/v1/"))]

    @app.middleware("http")
    async def method_not_allowed(request: Request, call_next):
        path = request.url.path
        if path.startswith(("/api/", "/v1/")):
            full, allowed = False, set()
            for route in api_routes:
                match, _ = route.matches(request.scope)
                if match == Match.FULL:
                    full = True
                    break
                if match == Match.PARTIAL:
                    allowed |= set(getattr(route, "methods", None) or ())
            if not full:
                if allowed:
                    resp = error_response(405, f"Method {request.method} is not allowed on {path} (allowed: "
                                               f"{', '.join(sorted(allowed))}).", "method_not_allowed")
                    resp.headers["Allow"] = ", ".join(sorted(allowed))
                    return resp
                return error_response(404, f"No such API route: {path}", "not_found")
        return await call_next(request)
