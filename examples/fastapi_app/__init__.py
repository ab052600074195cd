"""The chat example on FastAPI.

The page negotiates at ``POST /chat/negotiate?user=<name>`` and then talks to SignalR Service
directly. What a user says is POSTed here, and the app sends it on through the service's REST API;
or the page invokes the hub's ``send`` and the service calls the app at ``/upstream/{event}``
(serverless upstream), as it does when a client connects or disconnects.

``python -m examples.fastapi_app`` runs it (on the embedded emulator unless
``AZURE_SIGNALR_CONNECTION_STRING`` is set); so does
``uvicorn --factory examples.fastapi_app:create_app`` with the connection string set.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Response
from pydantic import BaseModel, Field, StringConstraints

from signalr_asgi_auth import SignalRAuth, SignalRAuthMiddleware, UpstreamVerifier
from signalr_asgi_auth.fastapi import SignalR, add_exception_handler

from .._names import MAX_NAME, name
from .._page import signalr_bundle, static_files
from .._upstream import UPSTREAM_PATH, upstream_route

__all__ = ["create_app"]

HUB = "chat"
# Spaces around a name are dropped, as examples._names.name drops them for the starlette example.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME)]


class Join(BaseModel):
    user: Name


class Said(BaseModel):
    user: Name
    text: Annotated[str, Field(min_length=1, max_length=1000)]


def create_app(
    auth: SignalRAuth | None = None, upstream: UpstreamVerifier | None = None
) -> FastAPI:
    """The chat app; without ``auth`` it reads ``AZURE_SIGNALR_CONNECTION_STRING``. With
    ``upstream``, it takes the service's upstream calls at ``/upstream/{event}``."""
    app = FastAPI(title="signalr-asgi-auth chat")
    app.add_middleware(SignalRAuthMiddleware, auth=auth or SignalRAuth.from_connection_string())
    # bad input → 400, no key yet or a missing role → 503 with Retry-After and the reason; JSON
    add_exception_handler(app)

    @app.post("/chat/negotiate")
    async def negotiate(
        signalr: SignalR, response: Response, user: str | None = None
    ) -> dict[str, str]:
        # A real app takes the user from its own sign-in; the demo trusts the page. The name is
        # checked by the same rule as the starlette example's, and refused with the same 400 JSON
        # as negotiate_endpoint's (not FastAPI's 422 validation reply).
        user_id = name(user, "The user query parameter")
        response.headers["Cache-Control"] = "no-store"  # the reply carries a credential
        return await signalr.negotiate(HUB, user_id=user_id)

    @app.post("/messages", status_code=202)
    async def to_everyone(signalr: SignalR, said: Said) -> None:
        await signalr.hub(HUB).send_to_all("newMessage", said.user, said.text)

    @app.post("/users/{user}/messages", status_code=202)
    async def to_user(signalr: SignalR, user: str, said: Said) -> None:
        recipient = name(user, "The recipient")
        await signalr.hub(HUB).send_to_user(recipient, "directMessage", said.user, said.text)

    @app.post("/groups/{group}/members", status_code=204)
    async def join_group(signalr: SignalR, group: str, join: Join) -> None:
        await signalr.hub(HUB).add_user_to_group(name(group, "The group"), join.user)

    @app.post("/groups/{group}/messages", status_code=202)
    async def to_group(signalr: SignalR, group: str, said: Said) -> None:
        group = name(group, "The group")
        await signalr.hub(HUB).send_to_group(group, "groupMessage", group, said.user, said.text)

    if upstream is not None:  # the service's calls: invoke("send"), connected, disconnected
        app.add_route(UPSTREAM_PATH, upstream_route(upstream), methods=["POST"])
    app.add_route("/signalr.min.js", signalr_bundle)
    app.mount("/", static_files())  # last: the page and its script
    return app
