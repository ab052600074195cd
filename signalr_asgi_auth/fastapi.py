"""FastAPI glue: the ``SignalR`` dependency and an exception handler.

from signalr_asgi_auth.fastapi import SignalR, add_exception_handler

@app.post("/chat/negotiate")
async def negotiate(signalr: SignalR, user: str | None = None) -> dict[str, str]:
    return await signalr.negotiate("chat", user_id=user)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection

from ._context import SignalRContext
from ._errors import SignalRAuthError
from ._negotiate import get_context, signalr_exception_handler

__all__ = ["SignalR", "add_exception_handler", "get_signalr", "signalr_exception_handler"]


async def get_signalr(connection: HTTPConnection) -> SignalRContext:
    """The request's SignalR context (a FastAPI dependency; works for WebSockets too).

    A coroutine although it never awaits: FastAPI runs a plain-function dependency in a worker
    thread, one per request under load.
    """
    return get_context(connection)


SignalR = Annotated[SignalRContext, Depends(get_signalr)]
"""Declare a parameter ``signalr: SignalR`` to receive the context."""


def add_exception_handler(app: FastAPI) -> None:
    """Register :func:`signalr_exception_handler` for every :class:`SignalRAuthError`."""
    app.add_exception_handler(SignalRAuthError, signalr_exception_handler)
