"""The client endpoint: ``POST /client/negotiate`` and the WebSocket upgrade at ``/client/``.

Both check the client access token (see ``_client_auth``) against the audience of the hub named in
``?hub=``, built from the emulator's public URL, never from the ``Host`` header (signalrcore drops
the port from it). Refusals come before the WebSocket upgrade, as HTTP responses, so that clients
see the status: 400 for a missing or repeated ``hub``, 401 with ``WWW-Authenticate`` for a token,
404 for an ``id`` that is unknown, used already or stale.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.websockets import WebSocket

from ._client_auth import ClientTokenError, client_audiences, verify_client_token
from ._cors import preflight
from ._state import EmulatorState

__all__ = ["Admission", "admit_websocket", "negotiate", "negotiate_preflight", "served_urls"]

_TRANSPORTS = [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
"""Only what the emulator implements: clients fall back down this list when a transport fails."""

_NEWEST_NEGOTIATE_VERSION = 1


@dataclass(frozen=True, slots=True, repr=False)
class Admission:
    """A WebSocket let through: who the client is, and the connection id it gets."""

    connection_id: str
    hub: str
    user_id: str | None
    claims: dict[str, Any]

    def __repr__(self) -> str:
        return f"Admission(connection_id={self.connection_id!r}, hub={self.hub!r})"


async def negotiate(state: EmulatorState, request: Request) -> Response:
    """``POST /client/negotiate?hub=…[&negotiateVersion=1]`` with the client token as Bearer.

    The body (empty, or whatever Content-Type a client chose) is never read.
    """
    hub = _hub(request.query_params)
    if isinstance(hub, Response):
        return hub
    version = _negotiate_version(request.query_params.get("negotiateVersion"))
    if isinstance(version, Response):
        return version
    try:
        verified = verify_client_token(
            _bearer(request.headers),
            hub=hub,
            audiences=_audiences(state, request, hub),
            keys=state.access_keys,
            resource_keys=state.resource_keys,
            now=state.clock.now(),
        )
    except ClientTokenError as error:
        return _unauthorized(error.description)
    negotiated = state.negotiated.create(
        hub=hub, user_id=verified.user_id, claims=verified.claims, now=state.clock.now()
    )
    body: dict[str, Any] = {"negotiateVersion": version, "connectionId": negotiated.connection_id}
    if version >= 1:
        body["connectionToken"] = negotiated.connection_token
    body["availableTransports"] = _TRANSPORTS
    return JSONResponse(body)


async def negotiate_preflight(state: EmulatorState, request: Request) -> Response:
    """``OPTIONS /client/negotiate``: the browser's CORS preflight."""
    return preflight(request)


def admit_websocket(state: EmulatorState, websocket: WebSocket) -> Admission | Response:
    """Decide on a WebSocket upgrade at ``/client/``: the admission, or the response refusing it.

    The token comes from the ``Authorization`` header (Node, Python clients) or the
    ``access_token`` query parameter (browsers). Without ``id`` (pysignalr and signalrcore skip the
    service's negotiate) the connection gets its id now.
    """
    hub = _hub(websocket.query_params)
    if isinstance(hub, Response):
        return hub
    now = state.clock.now()
    token = _bearer(websocket.headers) or websocket.query_params.get("access_token")
    try:
        verified = verify_client_token(
            token,
            hub=hub,
            audiences=_audiences(state, websocket, hub),
            keys=state.access_keys,
            resource_keys=state.resource_keys,
            now=now,
        )
    except ClientTokenError as error:
        return _unauthorized(error.description)
    connection_token = websocket.query_params.get("id")
    if connection_token is None:
        connection_id = secrets.token_urlsafe(16)
        return Admission(connection_id, verified.hub, verified.user_id, verified.claims)
    # Each connection token is taken once: a second WebSocket on the same id finds nothing.
    negotiated = state.negotiated.take(connection_token, now=now)
    if negotiated is None or negotiated.hub != hub:
        message = (
            "No connection with this id: it was not negotiated for this hub, is connected already, "
            f"or came more than {state.negotiated.ttl:g} s after its negotiate."
        )
        return PlainTextResponse(message, status_code=404)
    return Admission(
        negotiated.connection_id, negotiated.hub, negotiated.user_id, negotiated.claims
    )


def _hub(query: QueryParams) -> str | Response:
    hubs = query.getlist("hub")
    if len(hubs) > 1:
        return PlainTextResponse(
            "'hub' is a preserved query parameter and must appear only once.", status_code=400
        )
    if not hubs or not hubs[0].strip():
        return PlainTextResponse("The 'hub' query parameter is required.", status_code=400)
    return hubs[0].lower()


def _negotiate_version(value: str | None) -> int | Response:
    if value is None:
        return 0
    try:
        version = int(value)
    except ValueError:
        version = -1
    if version < 0:
        return PlainTextResponse(
            f"The client requested an invalid protocol version {value!r}.", status_code=400
        )
    return min(version, _NEWEST_NEGOTIATE_VERSION)


def _bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _audiences(state: EmulatorState, connection: HTTPConnection, hub: str) -> list[str]:
    return client_audiences(served_urls(state, connection), hub)


def served_urls(state: EmulatorState, connection: HTTPConnection) -> list[str]:
    """The base URLs tokens' audiences may name: the public address, else the one served at."""
    urls = state.address.urls()
    if not urls:
        # Served by something that did not report its URL: the address the server listens on (the
        # socket's, not the Host header's).
        server = connection.scope.get("server") or ("127.0.0.1", None)
        host, port = server[0], server[1]
        scheme = "https" if connection.scope.get("scheme") in ("https", "wss") else "http"
        netloc = f"[{host}]" if ":" in host else host
        urls = [f"{scheme}://{netloc}" + (f":{port}" if port else "")]
    return urls


def _unauthorized(description: str) -> Response:
    # Quoted-string safe and ASCII: the description may quote claims an attacker chose.
    quoted = description.replace("\\", "\\\\").replace('"', "'")
    quoted = quoted.encode("ascii", "backslashreplace").decode("ascii")
    challenge = f'Bearer error="invalid_token", error_description="{quoted}"'
    return PlainTextResponse(description, status_code=401, headers={"WWW-Authenticate": challenge})
