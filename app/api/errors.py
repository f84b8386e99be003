"""One error shape for every route: `{"error": {"message", "type", "code"}}`, with the status chosen by
the error's type (never by its text)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.services import FileTooLarge, UnsupportedFileType, UploadRejected
from rag.errors import (
    ChunkNotFound, ConversationNotFound, DocumentNotFound, EmbeddingMismatch, EmbeddingModelUnavailable, Forbidden,
    InvalidName, KnowledgeBaseExists, KnowledgeBaseNotFound, LLMUnavailable, MessageNotFound, NotAuthenticated,
    RagkbError, ReindexRefused, UserError, UserNotFound, VectorStoreUnavailable,
)

STATUS = [
    ((NotAuthenticated,), 401, "unauthorized"),
    ((Forbidden,), 403, "forbidden"),
    ((KnowledgeBaseNotFound, UserNotFound, DocumentNotFound, ChunkNotFound, ConversationNotFound, MessageNotFound), 404,
     "not_found"),
    ((KnowledgeBaseExists, EmbeddingMismatch, ReindexRefused), 409, "conflict"),
    ((FileTooLarge,), 413, "invalid_file"),
    ((UnsupportedFileType,), 415, "invalid_file"),
    ((UploadRejected,), 422, "invalid_file"),
    ((InvalidName, UserError), 422, "invalid_request"),
    ((LLMUnavailable, EmbeddingModelUnavailable), 503, "model_unavailable"),
    ((VectorStoreUnavailable,), 503, "vector_store_unavailable"),
]


class ApiError(Exception):
    """An error only the HTTP face has (a missing key, a malformed chat request)."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def error_response(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def status_of(exc: RagkbError) -> tuple[int, str]:
    for types, status, kind in STATUS:
        if isinstance(exc, types):
            return status, kind
    return 400, "bad_request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.kind)

    @app.exception_handler(RagkbError)
    async def _ragkb_error(_req: Request, exc: RagkbError):
        status, kind = status_of(exc)
        return error_response(status, str(exc), kind)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return error_response(422, "Invalid request: " + "; ".join(parts), "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), "not_found" if exc.status_code == 404 else "http_error")
