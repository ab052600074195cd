"""SignalR Service data-plane routes: the temporary access key and the health probe."""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from ._entra import SIGNALR_AUDIENCES, EntraTokenError
from ._log import attribute
from ._roles import Action, granting
from ._state import EmulatorState

__all__ = ["access_key", "health"]


def _bearer_token(request: HTTPConnection) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _unauthorized(message: str, *, token_presented: bool) -> Response:
    challenge = 'Bearer error="invalid_token"' if token_presented else "Bearer"
    return JSONResponse(
        {"code": "Unauthorized", "message": message},
        status_code=401,
        headers={"WWW-Authenticate": challenge},
    )


def _forbidden(state: EmulatorState, principal_oid: str, action: str) -> Response:
    roles = " or ".join(role.name for role in granting(action))
    message = (
        f"The principal '{principal_oid}' does not have authorization to perform action "
        f"'{action}' over scope '{state.directory.resource_id}'. Assign it {roles} at this "
        "resource, its resource group or its subscription; in Azure a new assignment can take up "
        "to 30 minutes to take effect."
    )
    return JSONResponse({"code": "Forbidden", "message": message}, status_code=403)


def _authorize(
    state: EmulatorState, request: HTTPConnection, action: str
) -> dict[str, Any] | Response:
    """The caller's verified Entra claims, or the 401/403 response that refuses it."""
    token = _bearer_token(request)
    if token is None:
        message = "The request has no 'Authorization: Bearer <token>' header."
        return _unauthorized(message, token_presented=False)
    try:
        claims = state.entra.verify(token, audiences=SIGNALR_AUDIENCES)
    except EntraTokenError as error:
        return _unauthorized(error.reason, token_presented=True)
    attribute(request, claims["oid"])
    if not state.directory.is_allowed(claims["oid"], action):
        return _forbidden(state, claims["oid"], action)
    return claims


async def access_key(state: EmulatorState, request: Request) -> Response:
    """``GET /api/v1/auth/accessKey`` with an Entra bearer token → ``{"KeyId", "AccessKey"}``."""
    claims = _authorize(state, request, Action.ACCESS_KEY)
    if isinstance(claims, Response):
        return claims
    key = state.access_keys.issue(claims["oid"])
    return JSONResponse({"KeyId": key.key_id, "AccessKey": key.access_key})


async def health(state: EmulatorState, request: Request) -> Response:
    """``GET``/``HEAD /api/health`` (REST API versions) and ``/api/v1/health`` (v1): 200 with no
    body and no authentication, as the SDKs' health checks expect."""
    return Response(status_code=200)
