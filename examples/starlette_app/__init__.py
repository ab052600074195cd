"""The chat example on Starlette.

The page negotiates at ``POST /chat/negotiate?user=<name>`` and then talks to SignalR Service
directly. What a user says is POSTed here, and the app sends it on through the service's REST API;
or the page invokes the hub's ``send`` and the service calls the app at ``/upstream/{event}``
(serverless upstream), as it does when a client connects or disconnects.

``python -m examples.starlette_app`` runs it (on the embedded emulator unless
``AZURE_SIGNALR_CONNECTION_STRING`` is set); so does
``uvicorn --factory examples.starlette_app:create_app`` with the connection string set.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from signalr_asgi_auth import (
    InvalidInputError,
    SignalRAuth,
    SignalRAuthError,
    SignalRAuthMiddleware,
    UpstreamVerifier,
    get_context,
    negotiate_endpoint,
    signalr_exception_handler,
)

from .._names import name
from .._page import signalr_bundle, static_files
from .._upstream import UPSTREAM_PATH, upstream_route

__all__ = ["create_app"]

HUB = "chat"


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        msg = 'Send a JSON object, e.g. {"user": "ada", "text": "hello"}.'
        raise InvalidInputError(msg)
    return body


async def _said(request: Request) -> tuple[str, str]:
    """Who said what: ``{"user": ..., "text": ...}``."""
    body = await _json(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        msg = "text must be a non-empty string."
        raise InvalidInputError(msg)
    return name(body.get("user"), "user"), text[:1000]


def user_of(request: Request) -> str:
    # A real app takes the user from its own sign-in (request.user); the demo trusts the page.
    return name(request.query_params.get("user"), "The user query parameter")


async def to_everyone(request: Request) -> Response:
    user, text = await _said(request)
    await get_context(request).hub(HUB).send_to_all("newMessage", user, text)
    return Response(status_code=202)


async def to_user(request: Request) -> Response:
    recipient = name(request.path_params["user"], "The recipient")
    user, text = await _said(request)
    await get_context(request).hub(HUB).send_to_user(recipient, "directMessage", user, text)
    return Response(status_code=202)


async def join_group(request: Request) -> Response:
    group = name(request.path_params["group"], "The group")
    user = name((await _json(request)).get("user"), "user")
    await get_context(request).hub(HUB).add_user_to_group(group, user)
    return Response(status_code=204)


async def to_group(request: Request) -> Response:
    group = name(request.path_params["group"], "The group")
    user, text = await _said(request)
    await get_context(request).hub(HUB).send_to_group(group, "groupMessage", group, user, text)
    return Response(status_code=202)


def create_app(
    auth: SignalRAuth | None = None, upstream: UpstreamVerifier | None = None
) -> Starlette:
    """The chat app; without ``auth`` it reads ``AZURE_SIGNALR_CONNECTION_STRING``. With
    ``upstream``, it takes the service's upstream calls at ``/upstream/{event}``."""
    if auth is None:
        auth = SignalRAuth.from_connection_string()
    routes = [
        Route("/chat/negotiate", negotiate_endpoint(HUB, user_id=user_of)),
        Route("/messages", to_everyone, methods=["POST"]),
        Route("/users/{user}/messages", to_user, methods=["POST"]),
        Route("/groups/{group}/members", join_group, methods=["POST"]),
        Route("/groups/{group}/messages", to_group, methods=["POST"]),
        Route("/signalr.min.js", signalr_bundle),
    ]
    if upstream is not None:
        routes.append(Route(UPSTREAM_PATH, upstream_route(upstream), methods=["POST"]))
    return Starlette(
        routes=[*routes, Mount("/", static_files())],
        middleware=[Middleware(SignalRAuthMiddleware, auth=auth)],
        # bad input → 400, no key yet or a missing role → 503 with Retry-After; JSON both
        exception_handlers={SignalRAuthError: signalr_exception_handler},
    )
