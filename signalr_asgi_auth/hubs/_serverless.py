"""Serverless mode with the same :class:`Hub`: verified upstream requests call its handlers, and
``call.clients`` / ``call.groups`` go through the REST API."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._negotiate import get_context
from .._rest import HubClient
from .._rest_fan_out import EndpointsHubClient
from .._upstream import (
    HubMethodError,
    UpstreamVerifier,
    error_completion,
    upstream_response,
    verified_upstream,
)
from .._upstream_request import UpstreamRequest
from ._call import Details, HubCall
from ._clients import Audience
from ._methods import refusal
from ._running import call_method, run_handler

if TYPE_CHECKING:
    from ._hub import Hub

__all__ = ["RestTransport", "hub_upstream_endpoint"]

logger = logging.getLogger("signalr_asgi_auth.hubs")

_NO_HEADERS: Mapping[str, tuple[str, ...]] = MappingProxyType({})  # the service forwards none

NO_CLIENT_RESULTS = (
    "Client results (invoke) need Default mode: over upstream requests SignalR Service cannot "
    "carry a client's answer back to the app."
)
NO_STREAMING = "The streaming hub method '{target}' needs Default mode (server connections)."


class RestTransport:
    """Sends and group changes through the REST API (``HubClient``), for Serverless mode. A send
    to several users, groups or connections is one REST call each; with several endpoints each
    call goes to every one (``EndpointsHubClient``)."""

    __slots__ = ("_client",)

    def __init__(self, client: Callable[[], HubClient | EndpointsHubClient]) -> None:
        self._client = client

    async def send(self, audience: Audience, target: str, arguments: tuple[Any, ...]) -> None:
        client = self._client()
        names, excluded = audience.names, audience.excluded
        if audience.kind == "all":
            await client.send_to_all(target, *arguments, excluded=excluded)
        elif audience.kind == "group":
            await client.send_to_group(names[0], target, *arguments, excluded=excluded)
        else:
            send = {
                "connections": client.send_to_connection,
                "user": client.send_to_user,
                "users": client.send_to_user,
                "groups": client.send_to_group,
            }[audience.kind]
            for name in names:
                await send(name, target, *arguments)

    async def invoke(
        self, connection_id: str, target: str, arguments: tuple[Any, ...], seconds: float
    ) -> Any:
        # A HubMethodError, so that a hub method which does not catch it fails its invocation
        # with this message rather than the generic one.
        raise HubMethodError(NO_CLIENT_RESULTS)

    async def join(self, connection_id: str, group: str) -> None:
        await self._client().add_connection_to_group(group, connection_id)

    async def leave(self, connection_id: str, group: str) -> None:
        await self._client().remove_connection_from_group(group, connection_id)


def hub_upstream_endpoint(
    hub: Hub, verifier: UpstreamVerifier
) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint behind :meth:`Hub.upstream_endpoint`."""

    async def endpoint(request: Request) -> Response:
        upstream = await verified_upstream(request, verifier)
        if isinstance(upstream, Response):
            return upstream
        if upstream.hub.lower() != hub.name.lower():
            body = {
                "code": "unknown_hub",
                "error": f"This upstream endpoint serves hub {hub.name!r}, not {upstream.hub!r}.",
            }
            return JSONResponse(body, status_code=404)
        hub.remember_rest(request)
        call = HubCall(
            hub=hub.name,
            connection_id=upstream.connection_id,
            user_id=upstream.user_id,
            details=partial(_details, upstream),
            transport=RestTransport(lambda: get_context(request).hub(hub.name)),
            mode="serverless",
            invocation_id=upstream.invocation_id,
        )
        if upstream.category == "connections":
            await _connection_event(hub, call, upstream)
            return Response(status_code=204)
        return await _invocation(hub, call, upstream)

    return endpoint


def _details(upstream: UpstreamRequest) -> Details:
    return upstream.claims, upstream.query, _NO_HEADERS


async def _connection_event(hub: Hub, call: HubCall, upstream: UpstreamRequest) -> None:
    try:
        if upstream.event == "connected":
            if hub.connected_handler is not None:
                await run_handler(hub.connected_handler, call, limiter=hub.thread_limiter())
        elif hub.disconnected_handler is not None:
            function, takes_error = hub.disconnected_handler
            args = (call, upstream.error) if takes_error else (call,)
            await run_handler(function, *args, limiter=hub.thread_limiter())
    except Exception:  # the service cannot act on a failed event: log it
        logger.exception("%s of hub %r failed", f"on_{upstream.event}", hub.name)


async def _invocation(hub: Hub, call: HubCall, upstream: UpstreamRequest) -> Response:
    method = hub.method(upstream.event)
    error = refusal(method, upstream.event, upstream.arguments, streaming=False)
    if method is not None and method.kind == "stream":
        error = NO_STREAMING.format(target=upstream.event)
    if error is None and method is not None:
        result, error = await call_method(
            method,
            hub.name,
            upstream.event,
            call,
            upstream.arguments,
            limiter=hub.thread_limiter(),
        )
        if error is None:
            return upstream_response(upstream, result)
    if upstream.invocation_id is None:
        if error:
            logger.info("Hub %r: %s", hub.name, error)
        return Response(status_code=204)
    return error_completion(upstream.invocation_id, error or "", protocol=upstream.protocol)
