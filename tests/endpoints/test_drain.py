"""A removed endpoint drains: in Default mode until none of the app's clients is left there (or the
drain time is over); in Serverless mode for the drain time, then, if asked, its hubs' connections
are closed at that resource only (a failure of that close still removes it).

Real time here: the emulator checks the ``nbf`` of the tokens the app signs, so a compressed app
clock would sign tokens it refuses. The drains that must end early are long (600 s) and bounded by
a short ``fail_after``; the ones that must run out are short.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx2
import pytest

from signalr_asgi_auth import SignalRContext
from signalr_asgi_auth.emulator import Emulator
from signalr_asgi_auth.hubs import Hub

from ..emulator.helpers import TIMEOUT
from ..emulator.hub_client import HubSocket, hub_socket, negotiate
from ..support import wait_until
from .support import served, several

pytestmark = pytest.mark.anyio

CLOSE = "/:closeConnections"


@asynccontextmanager
async def client_at(
    http: httpx2.AsyncClient, context: SignalRContext, url: str, hub: str = "chat"
) -> AsyncIterator[HubSocket]:
    """A JSON client of ``hub`` at the resource at ``url``, negotiated through the app, pinned to
    that endpoint."""
    name = {e.config.service.endpoint: e.name for e in context.endpoints.all}[url]
    reply = await context.negotiate(hub, user_id="ann", endpoint=name)
    assert reply["url"].startswith(f"{url}/client/")
    token = reply["accessToken"]
    answer = await negotiate(http, url, token, hub=hub)
    assert answer.status_code == 200, answer.text
    connection_token = answer.json()["connectionToken"]
    async with hub_socket(http, url, token, hub=hub, connection_token=connection_token) as ws:
        assert await ws.handshake() == {}
        yield ws


def closes(emulator: Emulator) -> list[str]:
    """The ``:closeConnections`` paths ``emulator``'s REST API was called on."""
    return [e.path for e in emulator.log.entries("signalr.rest") if e.path.endswith(CLOSE)]


async def test_default_mode_drains_until_the_last_client_leaves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "signalr_asgi_auth.endpoints")
    with served(2) as pairs:
        (east, east_url), (west, _) = pairs
        east.service_mode = west.service_mode = "default"
        chat = Hub("chat")
        auth = several(
            pairs, ["east", "west"], compressed=False, hubs=[chat], server_connection_count=1
        )
        async with auth as context, httpx2.AsyncClient(timeout=TIMEOUT) as http:
            runtime = context.endpoints.get("east")
            assert runtime is not None
            await wait_until(lambda: bool(east.server_connections and west.server_connections))
            removed = anyio.Event()

            async def remove() -> None:
                await auth.remove_endpoint("east", drain=600)
                removed.set()

            async with anyio.create_task_group() as tasks:
                async with client_at(http, context, east_url) as ann:
                    await wait_until(lambda: runtime.clients() == 1)
                    tasks.start_soon(remove)
                    await wait_until(lambda: runtime.draining)
                    # Two polls and more with ann still there: still draining, and she still
                    # gets the hub's messages.
                    await anyio.sleep(2.5)
                    assert not removed.is_set()
                    assert runtime.clients() == 1
                    assert auth.health()["endpoints"][0]["status"] == "draining"
                    await chat.clients.all.send("news", 1)
                    assert await ann.receive() == {"type": 1, "target": "news", "arguments": [1]}
                # ann left: the drain ends at the next poll, not after 600 s.
                with anyio.fail_after(15):
                    await removed.wait()
            assert [r.name for r in context.endpoints.all] == ["west"]
            await wait_until(lambda: not east.server_connections)
            assert west.server_connections
    assert "SignalR endpoint 'east' drained after" in caplog.text
    assert "no clients left" in caplog.text
    assert closes(east) == []  # close_connections was not asked for


async def test_default_mode_without_clients_is_removed_at_once() -> None:
    with served(2) as pairs:
        (east, _), (west, _) = pairs
        east.service_mode = west.service_mode = "default"
        auth = several(
            pairs, ["east", "west"], compressed=False, hubs=[Hub("chat")], server_connection_count=1
        )
        async with auth as context:
            await wait_until(lambda: bool(east.server_connections and west.server_connections))
            with anyio.fail_after(15):
                await auth.remove_endpoint("east", drain=600)
            assert [r.name for r in context.endpoints.all] == ["west"]


async def test_default_mode_drain_time_over_with_a_client_left_and_close_connections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "signalr_asgi_auth.endpoints")
    with served(2) as pairs:
        (east, east_url), (west, _) = pairs
        east.service_mode = west.service_mode = "default"
        auth = several(
            pairs, ["east", "west"], compressed=False, hubs=[Hub("chat")], server_connection_count=1
        )
        async with auth as context, httpx2.AsyncClient(timeout=TIMEOUT) as http:
            await wait_until(lambda: bool(east.server_connections and west.server_connections))
            async with client_at(http, context, east_url) as ann:
                with anyio.fail_after(15):
                    await auth.remove_endpoint("east", drain=0.5, close_connections=True)
                # The drain ran out with ann there: her hub's connections at east were closed.
                message = await ann.receive()
                assert message["type"] == 7
                assert "being removed" in message["error"]
            assert [r.name for r in context.endpoints.all] == ["west"]
    assert closes(east) == ["/api/hubs/chat/:closeConnections"]
    assert closes(west) == []
    assert "drain time over; clients left: 1." in caplog.text


@pytest.mark.parametrize("close_connections", [True, False])
async def test_serverless_closes_the_hubs_in_use_at_the_removed_resource_only(
    close_connections: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "signalr_asgi_auth.endpoints")
    with served(2) as pairs:
        (east, east_url), (west, west_url) = pairs
        auth = several(pairs, ["east", "west"], compressed=False)
        async with (
            auth as context,
            httpx2.AsyncClient(timeout=TIMEOUT) as http,
            client_at(http, context, east_url) as ann,
            client_at(http, context, east_url, hub="news") as reader,
            client_at(http, context, west_url) as bob,
        ):
            await wait_until(lambda: len(east.connections) == 2 and len(west.connections) == 1)
            started = anyio.current_time()
            with anyio.fail_after(15):
                # Serverless: the clients cannot be counted, so the drain lasts its time.
                await auth.remove_endpoint("east", drain=0.5, close_connections=close_connections)
            assert anyio.current_time() - started >= 0.5
            assert [r.name for r in context.endpoints.all] == ["west"]
            assert "drain time over (Serverless mode" in caplog.text
            assert closes(west) == []
            if close_connections:
                assert sorted(closes(east)) == [
                    "/api/hubs/chat/:closeConnections",
                    "/api/hubs/news/:closeConnections",
                ]
                for ws in (ann, reader):
                    message = await ws.receive()
                    assert message["type"] == 7
                    assert "being removed" in message["error"]
                await wait_until(lambda: not east.connections)
            else:
                assert closes(east) == []
                await anyio.sleep(0.2)
                assert len(east.connections) == 2
            # West's client is untouched: still there, and still reached.
            [bob_there] = west.connections
            await bob_there.send({"type": 1, "target": "still", "arguments": []})
            assert (await bob.receive())["target"] == "still"


async def test_a_close_that_fails_still_removes_the_endpoint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with served(2) as pairs:
        east, _ = pairs[0]
        auth = several(pairs, ["east", "west"], compressed=False)
        async with auth as context:
            await context.negotiate("chat")  # a hub in use
            east.inject("signalr.rest", status=500)
            with anyio.fail_after(15):
                await auth.remove_endpoint("east", drain=0.1, close_connections=True)
            assert [r.name for r in context.endpoints.all] == ["west"]
            assert [e.name for e in auth.endpoints] == ["west"]
    tried = [e for e in east.log.entries("signalr.rest") if e.path.endswith(CLOSE)]
    assert tried
    assert {(e.path, e.status) for e in tried} == {("/api/hubs/chat/:closeConnections", 500)}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "Could not close the connections of hub 'chat' at SignalR endpoint 'east'" in r.getMessage()
        for r in warnings
    )
    for secret in east.access_keys:
        assert secret not in caplog.text
