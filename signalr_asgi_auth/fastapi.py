"""FastAPI glue: the ``SignalR`` dependency and an exception handler.

from signalr_asgi_auth.fastapi import SignalR, add_exception_handler

@app.post("/chat/negotiate")
async def negotiate(signalr: SignalR, user: str) -> dict[str, str]:
    return await signalr.negotiate("chat", user_id=user)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from ._context import SignalRContext
from ._errors import SignalRAuthError
from ._negotiate import error_response, get_context

__all__ = ["SignalR", "add_exception_handler", "get_signalr", "signalr_exception_handler"]


def get_signalr(connection: HTTPConnection) -> SignalRContext:
    """The request's SignalR context (a FastAPI dependency; works for WebSockets too)."""
    return get_context(connection)


SignalR = Annotated[SignalRContext, Depends(get_signalr)]
"""Declare a parameter ``signalr: SignalR`` to receive the context."""


async def signalr_exception_handler(request: Request, exc: Exception) -> Response:
    """Answers library errors as the negotiate endpoint does: 400/413 for bad input, 503 with
    ``Retry-After`` while SignalR cannot be used."""
    if not isinstance(exc, SignalRAuthError):  # registered for SignalRAuthError only
        raise exc
    return error_response(exc)


def add_exception_handler(app: FastAPI) -> None:
    """Register :func:`signalr_exception_handler` for every :class:`SignalRAuthError`."""
    app.add_exception_handler(SignalRAuthError, signalr_exception_handler)
