"""Message limits end to end, on the emulator in Default mode with real WebSocket clients: the
service batches many clients' frames into one WebSocket message to the app, so the app limits each
service frame and each client's hub message, never the WebSocket message; a client over its limit
is closed with a reason, alone, and the others (on the same server connection) go on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest

from signalr_asgi_auth import SignalRContext
from signalr_asgi_auth.emulator import Emulator

from ..emulator.helpers import TIMEOUT
from ..support import auth_for, principal_with_role
from .chat import Seen, chat_hub, json_client, msgpack_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(service_mode="default")


@asynccontextmanager
async def app(
    emulator: Emulator, url: str, seen: Seen, **hub: Any
) -> AsyncIterator[SignalRContext]:
    """The chat hub (with ``hub`` options) on one server connection: every client shares it."""
    principal = principal_with_role(emulator, "SignalR App Server")
    auth = auth_for(
        emulator, url, principal, hubs=[chat_hub(seen, **hub)], server_connection_count=1
    )
    async with auth as context:
        yield context


async def test_a_burst_of_big_messages_under_the_limit_costs_no_client_its_connection(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    """Sixty 900 KB messages (each under the 1 MiB default) reach the app batched into
    WebSocket messages of many megabytes: every client stays connected."""
    seen = Seen()
    big = {"type": 1, "target": "add", "arguments": ["x" * 900_000, 1]}  # no id: no answer
    async with (
        app(emulator, emulator_url, seen) as context,
        httpx2.AsyncClient(timeout=TIMEOUT) as http,
        json_client(http, emulator_url, context, "ann") as ann,
        msgpack_client(http, emulator_url, context, "bob") as bob,
    ):
        for _ in range(60):
            await ann.send(big)
        await ann.send({"type": 1, "invocationId": "1", "target": "add", "arguments": [2, 3]})
        await bob.send([1, {}, "b1", "add", [4, 5], []])
        assert await bob.receive() == [3, {}, "b1", 3, 9]
        assert await ann.receive() == {"type": 3, "invocationId": "1", "result": 5}
        assert not [s for s in seen.items if s.startswith("disconnected")]


async def test_a_client_over_max_receive_message_size_is_closed_alone(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    seen = Seen()
    limit = 64 * 1024
    async with (
        app(emulator, emulator_url, seen, max_receive_message_size=limit) as context,
        httpx2.AsyncClient(timeout=TIMEOUT) as http,
        json_client(http, emulator_url, context, "ann") as ann,
        msgpack_client(http, emulator_url, context, "bob") as bob,
    ):
        text = "x" * (limit - 100)
        await ann.send({"type": 1, "invocationId": "1", "target": "send", "arguments": [text]})
        assert (await ann.receive())["target"] == "newMessage"
        assert await ann.receive() == {"type": 3, "invocationId": "1", "result": "delivered"}
        assert (await bob.receive())[3] == "newMessage"
        await ann.send({"type": 1, "invocationId": "2", "target": "send", "arguments": [text * 2]})
        close = await ann.receive()
        assert close["type"] == 7
        assert close["error"] == (
            f"Connection closed with an error. The maximum message size of {limit}B was exceeded."
        )
        with anyio.fail_after(TIMEOUT):
            while not [s for s in seen.items if s.startswith("disconnected ann")]:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        await bob.send([1, {}, "b1", "add", [4, 5], []])
        assert await bob.receive() == [3, {}, "b1", 3, 9]
        assert not [s for s in seen.items if s.startswith("disconnected bob")]
