"""Server connections never starve the app's other calls: each holds its HTTP connection for as
long as it lives, so they go through a client of their own, and key refreshes, REST calls, health
probes and negotiations keep theirs, at the size where httpx2's default pool (100 connections)
was all taken by them. Real WebSockets to the emulator's Default mode; the Entra token from its
managed identity through real azure-identity."""

from __future__ import annotations

import httpx2
import pytest

from signalr_asgi_auth import ConfigurationError, SignalRAuth
from signalr_asgi_auth.emulator import Emulator

from .endpoints.support import health_requests, served, several
from .server.support import EchoHub
from .support import auth_for, principal_with_role, wait_until

pytestmark = pytest.mark.anyio

HUBS = 20
COUNT = 5
"""20 hubs x 5 connections: as many WebSockets as httpx2's default pool holds connections."""


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(service_mode="default")


async def test_a_hundred_server_connections_leave_room_for_keys_and_rest(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    principal = principal_with_role(emulator)
    emulator.assign(principal, "SignalR REST API Owner")
    auth = auth_for(
        emulator,
        emulator_url,
        principal,
        hubs=[EchoHub(f"hub{index}") for index in range(HUBS)],
        server_connection_count=COUNT,
        key_refresh_interval=0.5,
        request_timeout=3,
        startup_timeout=30,
    )
    async with auth as signalr:
        await wait_until(lambda: len(emulator.server_connections) == HUBS * COUNT, within=30)
        fetches = auth.health()["access_key"]["fetches"]
        await signalr.hub("hub0").send_to_all("news", "hello")  # a REST call
        await wait_until(lambda: auth.health()["access_key"]["fetches"] > fetches)
        health = auth.health()
        assert health["access_key"]["consecutive_failures"] == 0
        assert health["status"] == "ok"
        assert (await signalr.negotiate("hub19"))["url"].endswith("/client/?hub=hub19")


async def test_two_endpoints_of_ten_hubs_keep_probing_and_negotiating() -> None:
    with served(2, service_mode="default") as pairs:
        (east, _), (west, _) = pairs
        auth = several(
            pairs,
            ["east", "west"],
            hubs=[EchoHub(f"hub{index}") for index in range(10)],
            server_connection_count=COUNT,
            startup_timeout=30,
            compressed=False,  # the emulator checks the times of the server connections' tokens
            health_check_interval=0.5,
            health_check_timeout=0.4,
        )
        async with auth as signalr:
            await wait_until(
                lambda: len(east.server_connections) == len(west.server_connections) == 50,
                within=30,
            )
            probed = health_requests(east), health_requests(west)
            # a few rounds of probes, each answered
            await wait_until(
                lambda: (
                    health_requests(east) >= probed[0] + 3
                    and health_requests(west) >= probed[1] + 3
                )
            )
            assert [entry["usable"] for entry in auth.health()["endpoints"]] == [True, True]
            for index in range(10):
                reply = await signalr.negotiate(f"hub{index}")
                assert reply["url"].endswith(f"/client/?hub=hub{index}")


async def test_server_connections_go_through_the_client_given_for_them(
    emulator: Emulator, emulator_url: str
) -> None:
    upgrades: list[str] = []

    async def note(request: httpx2.Request) -> None:
        upgrades.append(request.url.path)

    key = emulator.connection_string(emulator_url, auth_type=None)
    async with httpx2.AsyncClient(event_hooks={"request": [note]}) as websockets:
        auth = SignalRAuth.from_connection_string(
            key, hubs=[EchoHub("chat")], server_connection_count=2, server_http_client=websockets
        )
        async with auth:
            await wait_until(lambda: len(emulator.server_connections) == 2)
        assert not websockets.is_closed  # the app's own: left open
    assert upgrades == ["/server/", "/server/"]


async def test_one_client_for_both_is_refused() -> None:
    async with httpx2.AsyncClient() as http:
        with pytest.raises(
            ConfigurationError, match="server_http_client must be a client of its own"
        ):
            SignalRAuth(
                endpoint="https://x.service.signalr.net",
                access_key="k",
                http_client=http,
                server_http_client=http,
            )
