"""The chat example on Starlette.

The page negotiates at ``POST /chat/negotiate?user=<name>``, connects to SignalR Service and
invokes the hub's methods (``examples/_chat_hub.py``). In Default mode the service hands those
calls to the app over its server connections; in Serverless mode it POSTs them to
``/upstream/{event}``.

``python -m examples.starlette_app`` runs it (on the embedded emulator unless
``AZURE_SIGNALR_CONNECTION_STRING`` is set; ``SIGNALR_SERVICE_MODE=serverless`` for Serverless);
so does ``uvicorn --factory examples.starlette_app:create_app`` with the connection string set.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Mount, Route

from signalr_asgi_auth import (
    SignalRAuth,
    SignalRAuthError,
    SignalRAuthMiddleware,
    UpstreamVerifier,
    negotiate_endpoint,
    signalr_exception_handler,
)

from .._chat_hub import chat
from .._names import name
from .._page import signalr_bundle, static_files
from .._upstream import UPSTREAM_PATH

__all__ = ["create_app"]


def user_of(request: Request) -> str:
    # A real app takes the user from its own sign-in (request.user); the demo trusts the page.
    return name(request.query_params.get("user"), "The user query parameter")


def create_app(
    auth: SignalRAuth | None = None, upstream: UpstreamVerifier | None = None
) -> Starlette:
    """The chat app. Default mode: ``auth`` serves ``hubs=[chat]``. Serverless mode: give
    ``upstream``, and the service's calls are taken at ``/upstream/{event}``. Without ``auth``,
    it is read from ``AZURE_SIGNALR_CONNECTION_STRING``, for the mode ``upstream`` implies."""
    if auth is None:
        auth = SignalRAuth.from_connection_string(hubs=[chat] if upstream is None else [])
    routes = [
        Route("/chat/negotiate", negotiate_endpoint(chat.name, user_id=user_of)),
        Route("/signalr.min.js", signalr_bundle),
    ]
    if upstream is not None:
        routes.append(Route(UPSTREAM_PATH, chat.upstream_endpoint(upstream), methods=["POST"]))
    return Starlette(
        routes=[*routes, Mount("/", static_files())],
        middleware=[Middleware(SignalRAuthMiddleware, auth=auth)],
        exception_handlers={SignalRAuthError: signalr_exception_handler},  # 503 + Retry-After
    )
