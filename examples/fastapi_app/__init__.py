"""The chat example on FastAPI.

The page negotiates at ``POST /chat/negotiate?user=<name>``, connects to SignalR Service and
invokes the hub's methods (``examples/_chat_hub.py``). In Default mode the service hands those
calls to the app over its server connections; in Serverless mode it POSTs them to
``/upstream/{event}``.

``python -m examples.fastapi_app`` runs it (on the embedded emulator unless
``AZURE_SIGNALR_CONNECTION_STRING`` is set; ``SIGNALR_SERVICE_MODE=serverless`` for Serverless);
so does ``uvicorn --factory examples.fastapi_app:create_app`` with the connection string set.
"""

from __future__ import annotations

from fastapi import FastAPI, Response

from signalr_asgi_auth import SignalRAuth, SignalRAuthMiddleware, UpstreamVerifier
from signalr_asgi_auth.fastapi import SignalR, add_exception_handler

from .._chat_hub import chat
from .._names import name
from .._page import signalr_bundle, static_files
from .._upstream import UPSTREAM_PATH

__all__ = ["create_app"]


def create_app(
    auth: SignalRAuth | None = None, upstream: UpstreamVerifier | None = None
) -> FastAPI:
    """The chat app. Default mode: ``auth`` serves ``hubs=[chat]``. Serverless mode: give
    ``upstream``, and the service's calls are taken at ``/upstream/{event}``. Without ``auth``,
    it is read from ``AZURE_SIGNALR_CONNECTION_STRING``, for the mode ``upstream`` implies."""
    if auth is None:
        auth = SignalRAuth.from_connection_string(hubs=[chat] if upstream is None else [])
    app = FastAPI(title="signalr-asgi-auth chat")
    app.add_middleware(SignalRAuthMiddleware, auth=auth)
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
        return await signalr.negotiate(chat.name, user_id=user_id)

    if upstream is not None:  # Serverless: the service's calls to the same hub
        app.add_route(UPSTREAM_PATH, chat.upstream_endpoint(upstream), methods=["POST"])
    app.add_route("/signalr.min.js", signalr_bundle)
    app.mount("/", static_files())  # last: the page and its script
    return app
