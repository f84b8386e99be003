"""What every route is handed: the service the app was created with, and the API-key check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request

from app.api.errors import ApiError
from app.api.models import ErrorBody
from app.services import RagkbService


def get_service(request: Request) -> RagkbService:
    return request.app.state.service


Service = Annotated[RagkbService, Depends(get_service)]

ERRORS = {400: {"model": ErrorBody}, 404: {"model": ErrorBody}, 422: {"model": ErrorBody},
          401: {"model": ErrorBody}}


def require_key(request: Request, service: Service) -> None:
    """With RAGKB_API_KEYS set: `Authorization: Bearer KEY` or `X-API-Key: KEY`."""
    keys = service.settings.api_key_list()
    if not keys:
        return
    auth = request.headers.get("authorization", "")
    given = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    if not given or not any(secrets.compare_digest(given, k) for k in keys):
        raise ApiError(401, "Missing or wrong API key: send 'Authorization: Bearer <key>'.", "unauthorized")
