"""``SignalRAuthMiddleware``: pure ASGI; owns the keepers through the app's lifespan and puts the
SignalR context into every HTTP and WebSocket request."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._auth import SignalRAuth
from ._errors import ConfigurationError

__all__ = ["STATE_KEY", "SignalRAuthMiddleware"]

logger = logging.getLogger("signalr_asgi_auth")

STATE_KEY = "signalr"
"""``scope["state"]["signalr"]``, so ``request.state.signalr`` in Starlette and FastAPI."""

_SHUTDOWN_REPLIES = ("lifespan.shutdown.complete", "lifespan.shutdown.failed")


class SignalRAuthMiddleware:
    """Add with ``Middleware(SignalRAuthMiddleware, auth=auth)`` or ``app.add_middleware(...)``.

    At lifespan startup it starts ``auth`` (credential, keepers), waiting up to ``startup_timeout``
    for the first key; a configuration error fails the startup with its message. At shutdown it
    stops the keepers and closes what it opened, after the app's own shutdown. Under a server that
    runs no lifespan it starts on the first request, with a warning.
    """

    def __init__(self, app: ASGIApp, *, auth: SignalRAuth) -> None:
        if not isinstance(auth, SignalRAuth):
            msg = f"auth must be a SignalRAuth, not {type(auth).__name__}."
            raise TypeError(msg)
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] in ("http", "websocket"):
            state = scope.setdefault("state", {})
            # Under a lifespan the context is already there: the server copies the lifespan
            # state into every request. Only servers without lifespan take the slower path.
            if STATE_KEY not in state:
                state[STATE_KEY] = await self.auth.request_context(mounted_at=_mount_path(scope))
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        if first["type"] != "lifespan.startup":  # not the protocol we know: stay out of the way
            await self.app(scope, _replay(first, receive), send)
            return
        try:
            context = await self.auth.__aenter__()
        except ConfigurationError as exc:
            logger.error("SignalR configuration error at startup: %s", exc)
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        if isinstance(scope.get("state"), dict):  # servers that support lifespan state
            scope["state"][STATE_KEY] = context
        held: list[Message] = []

        async def send_after_teardown(message: Message) -> None:
            if message["type"] in _SHUTDOWN_REPLIES:
                held.append(message)  # sent once the keepers are down and the client closed
            else:
                await send(message)

        try:
            await self.app(scope, _replay(first, receive), send_after_teardown)
        finally:
            await self.auth.__aexit__(None, None, None)
        for message in held:
            await send(message)


def _mount_path(scope: Scope) -> str | None:
    """Where an outer app mounted this one, or ``None`` when the server calls it directly.

    Starlette's ``Mount`` adds ``app_root_path`` and the outer router adds ``router`` before the
    sub-app (and so this middleware) sees the request.
    """
    if "app_root_path" not in scope and "router" not in scope:
        return None
    root: str = scope.get("root_path", "")
    outer: str = scope.get("app_root_path", "")
    return root.removeprefix(outer) if root.startswith(outer) else root


def _replay(first: Message, receive: Receive) -> Receive:
    pending = [first]

    async def replaying_receive() -> Message:
        return pending.pop() if pending else await receive()

    return replaying_receive
