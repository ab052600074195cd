"""The chat's upstream: what SignalR Service POSTs to the app when a client invokes ``send``,
connects or disconnects (serverless mode with an upstream URL of ``{app}/upstream/{event}``).

``send`` broadcasts the text under the user id the service vouches for (``X-ASRS-User-Id``, from
the client's token, not from the page) and answers ``"delivered"``, which the client's
``invoke("send", text)`` returns; ``connected`` and ``disconnected`` tell everyone who came and
went. Each call is verified first: an Entra token of the resource's managed identity for
``AUDIENCE``, or an ``X-ASRS-Signature`` made with an access key.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from signalr_asgi_auth import (
    HubClient,
    HubMethodError,
    UpstreamRequest,
    UpstreamVerifier,
    get_context,
    upstream_endpoint,
)

__all__ = [
    "AUDIENCE",
    "UPSTREAM_PATH",
    "azure_verifier",
    "on_call",
    "upstream_route",
]

UPSTREAM_PATH = "/upstream/{event}"
AUDIENCE = "api://signalr-asgi-auth-chat"
"""The upstream auth ``Resource`` the emulator uses; on Azure, set ``UPSTREAM_AUDIENCE``."""


async def on_call(call: UpstreamRequest, hub: HubClient) -> object:
    """Handle one upstream call; the return value is the client's ``invoke`` result."""
    user = call.user_id or "someone"
    event = call.event.lower()
    if event in ("connected", "disconnected"):
        await hub.send_to_all("presence", user, "joined" if event == "connected" else "left")
        return None
    if event != "send":
        message = f"The chat hub has no method {call.event!r}; it has send(text)."
        raise HubMethodError(message)
    text = call.arguments[0] if len(call.arguments) == 1 else None
    if not isinstance(text, str) or not text.strip():
        message = "send takes one argument: the message text."
        raise HubMethodError(message)
    await hub.send_to_all("newMessage", user, text[:1000])
    return "delivered"


def upstream_route(verifier: UpstreamVerifier) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint for ``POST /upstream/{event}``: verify, handle, answer (401 when refused)."""

    async def endpoint(request: Request) -> Response:
        hub_of = get_context(request).hub

        async def handle(call: UpstreamRequest) -> object:
            return await on_call(call, hub_of(call.hub))

        return await upstream_endpoint(verifier, handle)(request)

    return endpoint


def azure_verifier() -> UpstreamVerifier | None:
    """From ``UPSTREAM_AUDIENCE`` (the upstream auth's Resource) and ``UPSTREAM_TENANT_ID``, and
    optionally ``UPSTREAM_OBJECT_ID`` (the resource's managed identity); None when not set."""
    audience = os.environ.get("UPSTREAM_AUDIENCE")
    tenant_id = os.environ.get("UPSTREAM_TENANT_ID")
    if not audience or not tenant_id:
        return None
    object_id = os.environ.get("UPSTREAM_OBJECT_ID")
    return UpstreamVerifier(
        audience=audience,
        tenant_id=tenant_id,
        allowed_object_ids=[object_id] if object_id else None,
    )
