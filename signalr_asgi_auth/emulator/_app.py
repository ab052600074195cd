"""The route table, and the wrapper that gives every route the same log and fault injection.

A new route is one line in ``ROUTES``: its name (for the log and for faults), path, methods and
handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import _data_plane, _identity
from ._log import attributed_principal
from ._state import EmulatorState

__all__ = ["ROUTES", "ROUTE_NAMES", "EmulatorRoute", "build_app"]

Handler = Callable[[EmulatorState, Request], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class EmulatorRoute:
    """An HTTP route: ``name`` is how the request log and fault injection refer to it."""

    name: str
    path: str
    methods: tuple[str, ...]
    handler: Handler


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
)

ROUTE_NAMES = frozenset(route.name for route in ROUTES)


def _observed(state: EmulatorState, route: EmulatorRoute) -> Endpoint:
    """The Starlette endpoint for ``route``: apply a pending fault, run the handler, log it."""

    async def endpoint(request: Request) -> Response:
        arrived = state.clock.now()
        status = 500  # what the client sees if the handler raises
        try:
            response = await _answer(state, route, request)
            status = response.status_code
            return response
        finally:
            state.log.record(
                route=route.name,
                method=request.method,
                path=request.url.path,
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


def build_app(state: EmulatorState) -> Starlette:
    routes = [Route(r.path, _observed(state, r), methods=list(r.methods)) for r in ROUTES]
    return Starlette(routes=routes)
