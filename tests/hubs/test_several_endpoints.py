"""Default mode with two endpoints: the app opens server connections to both emulated resources
(one tenant, the real managed identity), a hub's sends reach clients on both, and an endpoint
whose server connections are down is skipped by sends and not used by negotiation until they are
back."""

from __future__ import annotations

import anyio
import httpx2
import pytest

from signalr_asgi_auth import SignalRAuth
from signalr_asgi_auth.emulator import Emulator, Principal, resource_id_named

from ..emulator.helpers import TIMEOUT
from ..support import FAST, auth_for
from .chat import chat_hub, json_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(east: Emulator) -> Principal:
    principal = east.add_principal("app-server")
    east.assign(principal, "SignalR App Server", resource_id_named("east").rsplit("/", 4)[0])
    return principal


async def until(condition: object, what: str) -> None:
    assert callable(condition)
    with anyio.move_on_after(TIMEOUT):
        while not condition():  # noqa: ASYNC110 - the emulator's threads change it
            await anyio.sleep(0.01)
        return
    pytest.fail(f"Timed out waiting for {what}.")


async def test_a_hubs_sends_reach_clients_on_both_endpoints_and_skip_one_that_is_down(
    east: Emulator, west: Emulator, tenant_urls: tuple[str, str], server: Principal
) -> None:
    east_url, west_url = tenant_urls
    east.service_mode = west.service_mode = "default"
    chat = chat_hub()
    both = SignalRAuth.from_connection_strings(
        {
            "east": east.connection_string(east_url, client_id=server.client_id),
            "west": west.connection_string(west_url, client_id=server.client_id),
        },
        hubs=[chat],
        server_connection_count=1,
        **FAST,
    )
    async with (
        both as context,
        auth_for(east, east_url, server) as east_signer,
        auth_for(west, west_url, server) as west_signer,
        httpx2.AsyncClient(timeout=TIMEOUT) as http,
    ):
        # Server connections go to every endpoint, as .NET does.
        await until(lambda: east.server_connections and west.server_connections, "both pools")
        async with (
            json_client(http, east_url, east_signer, "ann") as ann,
            json_client(http, west_url, west_signer, "bob") as bob,
        ):
            # From outside a call: both endpoints' clients.
            await chat.clients.all.send("news", 1)
            assert await ann.receive() == {"type": 1, "target": "news", "arguments": [1]}
            assert await bob.receive() == {"type": 1, "target": "news", "arguments": [1]}
            # Inside ann's call (on east): bob on west gets it too, ann before her completion.
            await ann.send({"type": 1, "invocationId": "1", "target": "send", "arguments": ["hi"]})
            new = {"type": 1, "target": "newMessage", "arguments": ["ann", "hi"]}
            assert await ann.receive() == new
            assert await ann.receive() == {"type": 3, "invocationId": "1", "result": "delivered"}
            assert await bob.receive() == new
            # A user on the other endpoint.
            await ann.send(
                {"type": 1, "invocationId": "2", "target": "whisper", "arguments": ["bob", "psst"]}
            )
            assert await bob.receive() == {
                "type": 1,
                "target": "whisper",
                "arguments": ["ann", "psst"],
            }
            assert await ann.receive() == {"type": 3, "invocationId": "2"}

        # West's server connections go down and stay down (the service refuses them): west is
        # not usable for negotiation, and sends skip it without an error.
        refusal = west.inject("server.connect", status=503)
        west.drop_server_connections()
        await until(lambda: not west.server_connections, "west's pool down")
        await until(
            lambda: [r.name for r in context.endpoints.usable("chat")] == ["east"],
            "west out of negotiation",
        )
        for _ in range(10):
            reply = await context.negotiate("chat", user_id="carol")
            assert reply["url"].startswith(east_url)
        await chat.clients.all.send("news", 2)

        # Back: the pool reconnects, and west takes negotiations again.
        west.remove_fault(refusal)
        await until(lambda: bool(west.server_connections), "west's pool back")
        await until(lambda: len(context.endpoints.usable("chat")) == 2, "west usable again")
    # One managed identity for both endpoints' server connections (and the two signers).
    assert west.log.count("identity.app_service") == 0
