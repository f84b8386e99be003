"""What every route is handed: the service as the caller may use it (app.access), from the API key they sent."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.api.models import ErrorBody
from app.services import RagkbService


def caller_key(request: Request) -> str:
    """`Authorization: Bearer KEY` or `X-API-Key: KEY`."""
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key", "")


def get_service(request: Request):  # noqa: ANN201 - RagkbService, or app.access.UserService for a user's key
    """Unauthenticated callers are refused here (401) once a key is needed; a user's key gets the checked view."""
    service: RagkbService = request.app.state.service
    return service.as_user(service.user_for_key(caller_key(request)))


Service = Annotated[RagkbService, Depends(get_service)]

ERRORS = {400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody},
          422: {"model": ErrorBody}}


def require_key(service: Service) -> None:
    """On every router: a route that takes no service still refuses a caller without a valid key."""
