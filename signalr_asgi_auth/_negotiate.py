"""The ready-made negotiate endpoint, and how errors become HTTP answers.

Real clients POST ``{hub url}/negotiate?negotiateVersion=1`` with an empty body; GET is accepted
too. The query and body are ignored: the reply depends only on the server's own settings.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any, TypeAlias, TypeVar, Union

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ._client_tokens import ClaimValue
from ._context import SignalRContext
from ._errors import (
    InvalidInputError,
    NotReadyError,
    NoUsableEndpointError,
    ServiceError,
    SignalRAuthError,
    TokenTooLongError,
)
from ._middleware import STATE_KEY
from ._names import prefixed_hub
from ._repeated_warnings import RepeatedWarnings

__all__ = ["error_response", "get_context", "negotiate_endpoint", "signalr_exception_handler"]

logger = logging.getLogger("signalr_asgi_auth")

T = TypeVar("T")
PerRequest: TypeAlias = Union[T, Callable[[Request], Union[T, Awaitable[T]]]]  # noqa: UP007
"""A value, or a function of the request that returns it (sync or async)."""

_failures = RepeatedWarnings(logger, "Negotiation failed")
_SERVICE_RETRY_AFTER = 5
_METHODS = ("GET", "HEAD", "POST")
_REPLY = '{"url":%s,"accessToken":%s}'
_PLAIN = (str, type(None), int, float, dict, list, tuple, timedelta)
"""What per-request functions usually return: no need to ask whether it is awaitable."""
_REPLY_HEADERS = ((b"content-type", b"application/json"), (b"cache-control", b"no-store"))


def get_context(connection: HTTPConnection) -> SignalRContext:
    """The SignalR context of a request or WebSocket, put there by the middleware."""
    context = getattr(connection.state, STATE_KEY, None)
    if not isinstance(context, SignalRContext):
        msg = (
            "No SignalR context on this request: add SignalRAuthMiddleware to the app, e.g. "
            "Starlette(middleware=[Middleware(SignalRAuthMiddleware, auth=auth)])."
        )
        raise RuntimeError(msg)
    return context


def error_response(exc: SignalRAuthError) -> JSONResponse:
    """The JSON answer for a library error: 400/413 for bad input, 503 with ``Retry-After`` while
    the service cannot be used. The body's ``error`` is the message (as ASP.NET Core's negotiate
    writes it); ``code`` is for programs."""
    headers: dict[str, str] = {}
    if isinstance(exc, TokenTooLongError):
        status, code = 413, "token_too_long"
    elif isinstance(exc, InvalidInputError):
        status, code = 400, "invalid_request"
    elif isinstance(exc, NotReadyError):
        status, code = 503, "not_ready"
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        if isinstance(exc, NoUsableEndpointError):
            code = "no_usable_endpoint"
    else:
        status, code = 503, "service_error" if isinstance(exc, ServiceError) else "unavailable"
        retry = exc.retry_after if isinstance(exc, ServiceError) and exc.retry_after else None
        headers["Retry-After"] = str(max(1, math.ceil(retry or _SERVICE_RETRY_AFTER)))
    if status >= 500:
        _failures.warn(str(exc))
    body: dict[str, Any] = {"code": code, "error": str(exc)}
    if isinstance(exc, NoUsableEndpointError):
        body["endpoints"] = exc.reasons
    return JSONResponse(body, status_code=status, headers=headers)


async def signalr_exception_handler(request: Request, exc: Exception) -> Response:
    """An exception handler for Starlette (``exception_handlers={SignalRAuthError: ...}``) and
    FastAPI: answers library errors as the negotiate endpoint does."""
    if not isinstance(exc, SignalRAuthError):  # registered for SignalRAuthError only
        raise exc
    return error_response(exc)


def negotiate_endpoint(
    hub: str,
    *,
    user_id: PerRequest[str | None] = None,
    claims: PerRequest[Mapping[str, ClaimValue] | None] = None,
    roles: PerRequest[Sequence[str]] = (),
    lifetime: PerRequest[float | timedelta | None] = None,
) -> ASGIApp:
    """A Starlette endpoint for ``Route("/{hub}/negotiate", ...)`` that answers POST and GET.

    Each keyword is a value or a function of the request, e.g.
    ``user_id=lambda request: request.user.identity``. Bad input gets 400 JSON, "not ready" gets
    503 JSON with ``Retry-After``; never a traceback.
    """
    prefixed_hub(hub, None)  # a bad hub name is a programming error: fail at import time
    return _NegotiateEndpoint(hub, user_id=user_id, claims=claims, roles=roles, lifetime=lifetime)


class _NegotiateEndpoint:
    """A plain ASGI app (Starlette routes one to every method): cheaper per request than an
    ``HTTPEndpoint``, and which arguments are per-request functions is decided once, here."""

    def __init__(
        self,
        hub: str,
        *,
        user_id: PerRequest[str | None],
        claims: PerRequest[Mapping[str, ClaimValue] | None],
        roles: PerRequest[Sequence[str]],
        lifetime: PerRequest[float | timedelta | None],
    ) -> None:
        self.hub = hub
        arguments = {"user_id": user_id, "claims": claims, "roles": roles, "lifetime": lifetime}
        self._fixed: dict[str, Any] = {
            name: value for name, value in arguments.items() if not callable(value)
        }
        self._per_request: tuple[tuple[str, Callable[[Request], Any]], ...] = tuple(
            (name, value) for name, value in arguments.items() if callable(value)
        )

    def __repr__(self) -> str:
        return f"negotiate_endpoint({self.hub!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in _METHODS:
            response: Response = PlainTextResponse(
                "Method Not Allowed", status_code=405, headers={"Allow": ", ".join(_METHODS)}
            )
            await response(scope, receive, send)
            return
        try:
            reply = await self._negotiate(scope, receive)
        except SignalRAuthError as exc:
            await error_response(exc)(scope, receive, send)
            return
        # Written by hand rather than through JSONResponse: two known string members, and a
        # negotiation pays for every microsecond (benchmarks/negotiate.py).
        body = _REPLY % (_json_string(reply["url"]), _json_string(reply["accessToken"]))
        encoded = body.encode()
        headers = [*_REPLY_HEADERS, (b"content-length", b"%d" % len(encoded))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": encoded})

    async def _negotiate(self, scope: Scope, receive: Receive) -> dict[str, str]:
        state = scope.get("state")
        context = state.get(STATE_KEY) if isinstance(state, dict) else None
        if not isinstance(context, SignalRContext):
            context = get_context(Request(scope, receive))  # raises what is missing
        if not self._per_request:
            if context.endpoints.routes_by_request:  # the app's router may read the request
                return await context.negotiate(
                    self.hub, request=Request(scope, receive), **self._fixed
                )
            return await context.negotiate(self.hub, **self._fixed)
        request = Request(scope, receive)
        arguments: dict[str, Any] = dict(self._fixed)
        if context.endpoints.routes_by_request:
            arguments["request"] = request
        for name, function in self._per_request:
            value = function(request)
            if not isinstance(value, _PLAIN) and inspect.isawaitable(value):
                value = await value
            arguments[name] = value
        return await context.negotiate(self.hub, **arguments)
