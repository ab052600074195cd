"""Serverless mode with two endpoints: upstream requests from both resources of one tenant verify
(the verifier holds each resource's access keys), and the hub's ``call.clients`` reach clients on
both resources through the REST fan-out."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from signalr_asgi_auth import SignalRAuth, SignalRAuthMiddleware, UpstreamVerifier
from signalr_asgi_auth.emulator import (
    UPSTREAM_ROUTE,
    Emulator,
    Principal,
    UpstreamSettings,
    serve_in_thread,
)
from signalr_asgi_auth.emulator._roles import ResourceId

from ..emulator.helpers import TIMEOUT
from ..emulator.hub_client import HubSocket
from ..support import FAST, auth_for
from .chat import chat_hub, json_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def identity(east: Emulator) -> Principal:
    principal = east.add_principal("app")
    group = ResourceId(east.resource_id.subscription, east.resource_id.resource_group)
    east.assign(principal, "SignalR Service Owner", group)
    return principal


def app_url_for(
    east: Emulator,
    west: Emulator,
    tenant_urls: tuple[str, str],
    identity: Principal,
    keys: list[str],
) -> Any:
    auth = SignalRAuth.from_connection_strings(
        {
            "east": east.connection_string(tenant_urls[0], client_id=identity.client_id),
            "west:secondary": west.connection_string(tenant_urls[1], client_id=identity.client_id),
        },
        **FAST,
    )
    endpoint = chat_hub().upstream_endpoint(UpstreamVerifier(access_keys=keys))
    app = Starlette(
        routes=[Route("/upstream/{event}", endpoint, methods=["POST"])],
        middleware=[Middleware(SignalRAuthMiddleware, auth=auth)],
    )
    return serve_in_thread(app, lifespan=True)


async def completion(ws: HubSocket, invocation_id: str, *arguments: Any) -> list[dict[str, Any]]:
    """What ``ws`` receives up to and including its completion of ``send``."""
    await ws.send(
        {"type": 1, "invocationId": invocation_id, "target": "send", "arguments": list(arguments)}
    )
    received = [await ws.receive()]
    while received[-1].get("type") != 3:
        received.append(await ws.receive())
    return received


async def test_upstream_from_both_resources_verifies_and_replies_reach_both(
    east: Emulator, west: Emulator, tenant_urls: tuple[str, str], identity: Principal
) -> None:
    east_url, west_url = tenant_urls
    keys = [*east.access_keys, *west.access_keys]
    with app_url_for(east, west, tenant_urls, identity, keys) as app_url:
        for resource in (east, west):
            resource.upstream = UpstreamSettings([f"{app_url}/upstream/{{event}}"])
        async with (
            auth_for(east, east_url, identity) as east_signer,
            auth_for(west, west_url, identity) as west_signer,
            httpx2.AsyncClient(timeout=TIMEOUT) as http,
            json_client(http, east_url, east_signer, "ann") as ann,
            json_client(http, west_url, west_signer, "bob") as bob,
        ):
            new = {"type": 1, "target": "newMessage", "arguments": ["bob", "hi"]}
            # bob's invocation comes upstream from west; the reply goes out at both resources.
            assert await completion(bob, "1", "hi") == [
                new,
                {"type": 3, "invocationId": "1", "result": "delivered"},
            ]
            assert await ann.receive() == new
            # and ann's from east
            answer = await completion(ann, "2", "yo")
            assert answer[-1] == {"type": 3, "invocationId": "2", "result": "delivered"}
            assert await bob.receive() == {
                "type": 1,
                "target": "newMessage",
                "arguments": ["ann", "yo"],
            }
    for resource in (east, west):
        statuses = [entry.status for entry in resource.log.entries(UPSTREAM_ROUTE)]
        assert statuses
        assert set(statuses) <= {200, 204}  # 204: connection events


async def test_a_verifier_without_a_resources_keys_refuses_its_upstream(
    east: Emulator, west: Emulator, tenant_urls: tuple[str, str], identity: Principal
) -> None:
    _, west_url = tenant_urls
    with app_url_for(east, west, tenant_urls, identity, list(east.access_keys)) as app_url:
        west.upstream = UpstreamSettings([f"{app_url}/upstream/{{event}}"])
        async with (
            auth_for(west, west_url, identity) as west_signer,
            httpx2.AsyncClient(timeout=TIMEOUT) as http,
            json_client(http, west_url, west_signer, "bob") as bob,
        ):
            answer = await completion(bob, "1", "hi")
            assert "error" in answer[-1]
    # The client's `disconnected` event may reach the app only after it stopped (status 0, no
    # answer); every call the app did answer was refused, none accepted.
    answered = {entry.status for entry in west.log.entries(UPSTREAM_ROUTE)} - {0}
    assert answered == {401}
