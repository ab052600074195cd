"""``POST /api/hubs/{hub}/:generateToken``: client tokens issued by the service itself.

For app servers whose identity holds SignalR REST API Owner (or Service Owner) but may not fetch the
temporary access key. The caller proves who it is with an Entra bearer token whose principal holds
``auth/clientToken/action``; the reply is ``{"token": "<jwt>"}``, an HS256 client token for the hub,
signed with the resource's primary key, which the client endpoint accepts like any other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from jwt.utils import base64url_encode
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._client_endpoint import _audiences
from ._data_plane import _authorize
from ._rest_api import _bad_request, _hub_of
from ._roles import Action
from ._state import EmulatorState

__all__ = ["DEFAULT_MINUTES", "FIRST_API_VERSION", "MAX_MINUTES", "generate_token"]

FIRST_API_VERSION = "2022-11-01"
"""The first REST API version with ``:generateToken`` (the one Azure's client-negotiation docs
call it with); later ones take it too. Azure publishes no full list of the versions it accepts."""

DEFAULT_MINUTES = 60
MAX_MINUTES = 366 * 24 * 60
"""No maximum is documented; a year keeps ``exp`` a sane number."""

_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
_MAX_USER_ID = 1024


async def generate_token(state: EmulatorState, request: Request) -> Response:
    """``POST /api/hubs/{hub}/:generateToken?api-version=…[&userId=…][&minutesToExpire=…]
    [&application=…]`` → 200 ``{"token": ...}``; 401/403 as the other data-plane routes, 400 for a
    bad hub, application, api-version, user id or ``minutesToExpire``."""
    claims = _authorize(state, request, Action.CLIENT_TOKEN)
    if isinstance(claims, Response):
        return claims
    query = request.query_params
    hub = _hub_of(request, request.path_params["hub"])
    if isinstance(hub, Response):
        return hub
    problem = _api_version_problem(query.get("api-version"))
    if problem is not None:
        return _bad_request(problem)
    minutes = _minutes(query.get("minutesToExpire"))
    if isinstance(minutes, str):
        return _bad_request(minutes)
    user_id = query.get("userId")
    if user_id is not None and not _valid_user_id(user_id):
        return _bad_request(
            f"userId must be 1 to {_MAX_USER_ID} characters without control characters."
        )
    now = int(state.clock.now())
    payload: dict[str, object] = {}
    if user_id is not None:
        payload["asrs.s.uid"] = user_id
        payload["nameid"] = user_id
    payload.update(nbf=now, exp=now + minutes * 60, iat=now, aud=_audiences(state, request, hub)[0])
    token = _sign(payload, state.resource_keys[0])
    return JSONResponse({"token": token}, headers={"Cache-Control": "no-store"})


def _api_version_problem(value: str | None) -> str | None:
    if not value:
        return f"The api-version query parameter is required, e.g. {FIRST_API_VERSION}."
    if not _API_VERSION.fullmatch(value) or value[:10] < FIRST_API_VERSION:
        return f"api-version {value!r} has no :generateToken; use {FIRST_API_VERSION} or later."
    return None


def _minutes(value: str | None) -> int | str:
    """``minutesToExpire`` as a number, or the message saying what is wrong with it."""
    if value is None:
        return DEFAULT_MINUTES
    if value.isascii() and value.isdigit() and len(value) < 10 and 1 <= int(value) <= MAX_MINUTES:
        return int(value)
    return f"minutesToExpire must be a whole number from 1 to {MAX_MINUTES}, not {value!r:.40}."


def _valid_user_id(user_id: str) -> bool:
    return 0 < len(user_id) <= _MAX_USER_ID and not any(
        ord(char) < 32 or ord(char) == 127 for char in user_id
    )


def _sign(payload: dict[str, object], key: str) -> str:
    # By hand rather than with PyJWT, which warns about keys shorter than it likes (a configured
    # resource key may be), and the suite turns warnings into errors.
    header = base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = base64url_encode(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = header + b"." + body
    signature = base64url_encode(hmac.digest(key.encode(), signing_input, hashlib.sha256))
    return (signing_input + b"." + signature).decode()
