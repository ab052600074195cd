"""The route table, and the wrappers that give every route the same log and fault injection.

A new route is one line in ``ROUTES``: its name (for the log and for faults), path, methods and
handler, and ``cors=True`` for routes browsers call cross-origin. The WebSocket routes, the client
endpoint's (``client.websocket``) and the app servers' (``server.connect``, Default mode), have
their own wrapper: they are logged at the upgrade (101, or the refusal's status), a fault with a
status refuses the upgrade with it, and one with ``close`` closes the socket right after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from . import _client_endpoint, _client_tokens_api, _data_plane, _identity, _rest_api
from ._cors import cors_headers
from ._default_session import run_default_session
from ._hub_session import run_hub_session
from ._log import attributed_principal
from ._paths import wire_path
from ._server_auth import admit_server
from ._server_session import run_server_session
from ._state import EmulatorState
from ._websockets import accept_headers

__all__ = [
    "ROUTES",
    "ROUTE_NAMES",
    "SERVER_PATHS",
    "SERVER_ROUTE",
    "WEBSOCKET_PATHS",
    "WEBSOCKET_ROUTE",
    "EmulatorApp",
    "EmulatorRoute",
    "build_app",
]

Handler = Callable[[EmulatorState, Request], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class EmulatorRoute:
    """An HTTP route: ``name`` is how the request log and fault injection refer to it."""

    name: str
    path: str
    methods: tuple[str, ...]
    handler: Handler
    cors: bool = False


_GET = ("GET",)

ROUTES: tuple[EmulatorRoute, ...] = (
    EmulatorRoute("identity.app_service", "/msi/token", _GET, _identity.app_service_token),
    EmulatorRoute("identity.imds", "/metadata/identity/oauth2/token", _GET, _identity.imds_token),
    EmulatorRoute(
        "identity.openid",
        "/{tenant}/.well-known/openid-configuration",
        _GET,
        _identity.openid_configuration,
    ),
    EmulatorRoute(
        "identity.openid",
        "/{tenant}/v2.0/.well-known/openid-configuration",
        _GET,
        _identity.openid_configuration_v2,
    ),
    EmulatorRoute("identity.jwks", "/{tenant}/discovery/keys", _GET, _identity.jwks),
    EmulatorRoute("identity.jwks", "/{tenant}/discovery/v2.0/keys", _GET, _identity.jwks),
    EmulatorRoute("signalr.access_key", "/api/v1/auth/accessKey", _GET, _data_plane.access_key),
    EmulatorRoute("signalr.health", "/api/health", ("GET", "HEAD"), _data_plane.health),
    EmulatorRoute("signalr.health", "/api/v1/health", ("GET", "HEAD"), _data_plane.health),
    EmulatorRoute(
        "signalr.generate_token",
        "/api/hubs/{hub}/:generateToken",
        ("POST",),
        _client_tokens_api.generate_token,
    ),
    EmulatorRoute(
        "signalr.rest",
        "/api/hubs/{path:path}",
        ("POST", "PUT", "DELETE", "HEAD"),
        _rest_api.dispatch,
    ),
    EmulatorRoute(
        "client.negotiate",
        "/client/negotiate",
        ("POST",),
        _client_endpoint.negotiate,
        cors=True,
    ),
    EmulatorRoute(
        "client.preflight",
        "/client/negotiate",
        ("OPTIONS",),
        _client_endpoint.negotiate_preflight,
        cors=True,
    ),
)

WEBSOCKET_ROUTE = "client.websocket"
WEBSOCKET_PATHS = ("/client/", "/client")
"""Both: the SDKs' URL ends in ``/client/?hub=``, a hand-written one may not, and Starlette's
slash redirect does not apply to WebSockets."""

SERVER_ROUTE = "server.connect"
SERVER_PATHS = ("/server/", "/server")
"""Where app servers open their connections in Default mode (``/server/?hub=…&cid=…``)."""

ROUTE_NAMES = frozenset(route.name for route in ROUTES) | {WEBSOCKET_ROUTE, SERVER_ROUTE}


class EmulatorApp(Starlette):
    """The emulator's ASGI app. :func:`serve_in_thread` and :func:`serve` report the URL they serve
    it at, which becomes the client endpoint's public URL unless the emulator was given one."""

    def __init__(self, state: EmulatorState, routes: list[BaseRoute]) -> None:
        super().__init__(routes=routes)
        self._emulator_state = state

    def serving_started(self, url: str) -> None:
        self._emulator_state.address.serving_started(url)

    def serving_stopped(self, url: str) -> None:
        self._emulator_state.address.serving_stopped(url)


def _observed(state: EmulatorState, route: EmulatorRoute) -> Endpoint:
    """The Starlette endpoint for ``route``: apply a pending fault, run the handler, log it."""

    async def endpoint(request: Request) -> Response:
        arrived = state.clock.now()
        status = 500  # what the client sees if the handler raises
        try:
            response = await _answer(state, route, request)
            if route.cors:
                response.headers.update(cors_headers(request.headers))
            status = response.status_code
            return response
        finally:
            state.log.record(
                route=route.name,
                method=request.method,
                path=wire_path(request),
                query=request.query_params.items(),
                headers=request.headers.items(),
                status=status,
                principal_oid=attributed_principal(request),
                at=arrived,
            )

    return endpoint


async def _answer(state: EmulatorState, route: EmulatorRoute, request: Request) -> Response:
    fault = state.faults.take(route.name)
    if fault is None:
        return await route.handler(state, request)
    if fault.delay:
        await anyio.sleep(fault.delay)
    if fault.replaces_handler:
        return fault.response()
    response = await route.handler(state, request)
    response.headers.update(fault.headers)
    return response


WebSocketEndpoint = Callable[[WebSocket], Awaitable[None]]
Admit = Callable[[EmulatorState, WebSocket], Any]
Run = Callable[[EmulatorState, WebSocket, Any, dict[str, str]], Awaitable[None]]


def _observed_websocket(
    state: EmulatorState, route: str, admit: Admit, run: Run
) -> WebSocketEndpoint:
    """A WebSocket route: admit or refuse (logged either way, with the principal an Entra token
    named), then the session. A fault with a status refuses the upgrade with it; one with
    ``close`` accepts it and closes at once with that code."""

    async def endpoint(websocket: WebSocket) -> None:
        arrived = state.clock.now()
        fault_headers: dict[str, str] = {}
        decision: Any
        fault = state.faults.take(route)
        if fault is not None and fault.delay:
            await anyio.sleep(fault.delay)
        if fault is not None and fault.replaces_handler:
            decision = fault.response()
        else:
            decision = admit(state, websocket)
            fault_headers = dict(fault.headers) if fault is not None else {}
        state.log.record(
            route=route,
            method="GET",
            path=wire_path(websocket),
            query=websocket.query_params.multi_items(),
            headers=websocket.headers.items(),
            status=decision.status_code if isinstance(decision, Response) else 101,
            principal_oid=attributed_principal(websocket),
            at=arrived,
        )
        if isinstance(decision, Response):
            await _refuse_upgrade(websocket, decision)
        elif fault is not None and fault.close is not None:
            await websocket.accept(headers=accept_headers(fault_headers))
            await websocket.close(fault.close)
        else:
            await run(state, websocket, decision, fault_headers)

    return endpoint


async def _client_session(
    state: EmulatorState, websocket: WebSocket, admission: Any, headers: dict[str, str]
) -> None:
    if state.service_mode.value == "default":
        await run_default_session(state, websocket, admission, headers)
    else:
        await run_hub_session(state, websocket, admission, headers)


async def _refuse_upgrade(websocket: WebSocket, response: Response) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:  # a server without the denial extension can only answer 403
        await websocket.close(code=1008)


def build_app(state: EmulatorState) -> EmulatorApp:
    routes: list[BaseRoute] = [
        Route(r.path, _observed(state, r), methods=list(r.methods)) for r in ROUTES
    ]
    client = _observed_websocket(
        state, WEBSOCKET_ROUTE, _client_endpoint.admit_websocket, _client_session
    )
    routes += [WebSocketRoute(path, client) for path in WEBSOCKET_PATHS]
    server = _observed_websocket(state, SERVER_ROUTE, admit_server, run_server_session)
    routes += [WebSocketRoute(path, server) for path in SERVER_PATHS]
    return EmulatorApp(state, routes)
