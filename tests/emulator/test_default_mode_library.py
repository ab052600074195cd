"""The library's Default mode against the emulator's: ``SignalRAuth(hubs=[...])`` opens server
connections with the real azure-identity token of a managed identity, and clients that negotiate with
the library reach the Python hub through the emulator (JSON and MessagePack), on asyncio and trio.
A service restart closes the clients with a reason they may reconnect on, and the library's
connections come back by themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from signalr_asgi_auth import Hub, SignalRAuth
from signalr_asgi_auth.emulator import Emulator

from ..support import auth_for, principal_with_role
from .helpers import TIMEOUT, wait_until
from .hub_client import MessagePackHubSocket, hub_socket, negotiate

pytestmark = pytest.mark.anyio

CONNECTIONS = 2


def chat_hub() -> Hub:
    chat = Hub("chat")

    @chat.on("send")
    async def send(call: Any, text: str) -> str:
        await call.clients.all.send("newMessage", call.user_id, text)
        return "delivered"

    @chat.on("join")
    async def join(call: Any, room: str) -> None:
        await call.groups.add(room)  # acknowledged by the service before it returns
        await call.clients.group(room).send("joined", call.user_id)

    return chat


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(service_mode="default")


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
        yield http


def hub_server(emulator: Emulator, url: str) -> SignalRAuth:
    principal = principal_with_role(emulator)
    return auth_for(
        emulator, url, principal, hubs=[chat_hub()], server_connection_count=CONNECTIONS
    )


@pytest.mark.usefixtures("app_service_env")
async def test_clients_reach_a_python_hub_through_the_emulator(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    async with hub_server(emulator, emulator_url) as signalr:
        await wait_until(
            lambda: len(emulator.server_connections) == CONNECTIONS, "server connections"
        )
        server_ids = {server.server_id for server in emulator.server_connections}
        assert len(server_ids) == 1  # one app server process
        assert all(s.principal_oid is not None for s in emulator.server_connections)

        alice = (await signalr.negotiate("chat", user_id="alice"))["accessToken"]
        bob = (await signalr.negotiate("chat", user_id="bob"))["accessToken"]
        negotiated = (await negotiate(client, emulator_url, alice)).json()
        async with (
            hub_socket(
                client, emulator_url, alice, connection_token=negotiated["connectionToken"]
            ) as json_ws,
            hub_socket(client, emulator_url, bob) as raw,
        ):
            assert await json_ws.handshake() == {}
            packed = MessagePackHubSocket(raw.session)
            assert await packed.handshake() == {}

            await json_ws.send(
                {"type": 1, "target": "send", "arguments": ["hi"], "invocationId": "1"}
            )
            assert await json_ws.receive() == {
                "type": 1,
                "target": "newMessage",
                "arguments": ["alice", "hi"],
            }
            assert await json_ws.receive() == {
                "type": 3,
                "invocationId": "1",
                "result": "delivered",
            }
            # (the library writes the optional stream ids too)
            assert (await packed.receive())[:5] == [1, {}, None, "newMessage", ["alice", "hi"]]

            await packed.send([1, {}, "2", "join", ["room"]])
            assert (await packed.receive())[:5] == [1, {}, None, "joined", ["bob"]]
            completion = await packed.receive()
            assert completion[:4] == [3, {}, "2", 2]  # a void result
            assert {c.user_id for c in emulator.connection_registry.in_group("chat", "room")} == {
                "bob"
            }


@pytest.mark.usefixtures("app_service_env")
async def test_a_service_restart_closes_clients_and_the_library_reconnects(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    async with hub_server(emulator, emulator_url) as signalr:
        await wait_until(
            lambda: len(emulator.server_connections) == CONNECTIONS, "server connections"
        )
        first = {s.connection_id for s in emulator.server_connections}
        token = (await signalr.negotiate("chat", user_id="alice"))["accessToken"]
        async with hub_socket(client, emulator_url, token) as ws:
            assert await ws.handshake() == {}
            assert emulator.drop_server_connections() == CONNECTIONS
            close = await ws.receive()
            assert close["type"] == 7
            assert close["allowReconnect"] is True
            assert close["error"].startswith("ServerOffline")

        await wait_until(
            lambda: (
                len(emulator.server_connections) == CONNECTIONS
                and not first & {s.connection_id for s in emulator.server_connections}
            ),
            "the library's connections to come back",
        )
        async with hub_socket(client, emulator_url, token) as ws:
            assert await ws.handshake() == {}
            await ws.send(
                {"type": 1, "target": "send", "arguments": ["again"], "invocationId": "1"}
            )
            assert (await ws.receive())["arguments"] == ["alice", "again"]
