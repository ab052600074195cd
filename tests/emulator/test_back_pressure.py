"""The emulator bounds what waits for each socket, as Azure does: a client that does not read is
closed alone once more than 1 MB waits for it; a client's bytes wait for room toward an app server
that reads slowly, and a client whose bytes find none for ``server_timeout`` seconds is closed. The
emulator's memory stays bounded while one peer is flooded, and the others are served throughout."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx2
import pytest
from httpx2.websockets import WebSocketDisconnect
from wsproto.utilities import LocalProtocolError

from signalr_asgi_auth.emulator import Emulator, serve_in_thread

from .helpers import TIMEOUT, wait_until
from .hub_client import RS, HubSocket, hub_socket
from .service_client import ServerSocket
from .test_default_mode import client_token, connected_server, entra_token, open_client

pytestmark = pytest.mark.anyio

SLOW_CLIENT = (
    "Connection closed by the service: more than 1 MB of messages waited for this client to read "
    "them."
)
STALLED_SERVER = (
    "Connection closed by the service: the app server did not take this client's messages in time."
)
FLOOD = 32 * 1024 * 1024
"""What is sent toward the peer that does not read: 32 times what Azure lets wait for a client."""
PIECE = 32 * 1024
MEMORY_BOUND = 10 * 1024 * 1024
"""The emulator's (and the test's) peak of new Python memory while the flood lasts."""


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(service_mode="default", server_ping_interval=0.2, server_timeout=3.0)


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
        yield http


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """The peak of Python memory allocated in the block, in bytes, in the list once it ends."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


UNREAD = 1
"""The ``queue_size`` of a WebSocket that holds one message, then reads its socket no further
until the test asks for a message."""


async def routed(server: ServerSocket, ws: HubSocket) -> str:
    """Send ``ws``'s handshake through ``server``; its connection id once it has the answer."""
    await ws.session.send_text(json.dumps({"protocol": "json", "version": 1}) + RS)
    opened = await open_client(server, ws)
    assert await ws.receive(skip_pings=False) == {}
    connection_id: str = opened[1]
    return connection_id


def flood_record(n: int) -> bytes:
    message = {"type": 1, "target": "flood", "arguments": [n, "x" * PIECE]}
    return json.dumps(message).encode() + RS.encode()


async def rest_of(ws: HubSocket) -> tuple[list[dict[str, Any]], int]:
    """Every message ``ws`` still gets, and the close code that ends them."""
    messages: list[dict[str, Any]] = []
    with anyio.fail_after(TIMEOUT):
        try:
            while True:
                messages.append(await ws.receive())
        except WebSocketDisconnect as closed:
            return messages, closed.code


async def test_a_client_that_does_not_read_is_closed_alone_with_a_reason(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    async with (
        connected_server(client, emulator_url, entra_token(emulator)) as server,
        hub_socket(client, emulator_url, client_token(emulator, "ann"), queue_size=UNREAD) as slow,
        hub_socket(client, emulator_url, client_token(emulator, "bob")) as honest,
    ):
        slow_id = await routed(server, slow)
        honest_id = await routed(server, honest)
        slow_ended: list[tuple[list[dict[str, Any]], int]] = []
        async with anyio.create_task_group() as tasks:

            async def read_slow_once_closed() -> None:
                connection = emulator.find_connection(slow_id)
                await wait_until(lambda: connection is None or connection.closing, "a close")
                slow_ended.append(await rest_of(slow))  # it reads again, at last

            tasks.start_soon(read_slow_once_closed)
            with peak_memory() as peak:
                for n in range(FLOOD // PIECE):
                    record = flood_record(n)
                    await server.send([6, slow_id, record, {}], [6, honest_id, record, {}])
                    got = await honest.receive()  # the honest client reads as it goes
                    assert got.get("arguments", [None])[0] == n, got
        [(slow_got, slow_code)] = slow_ended
        # Both through one server connection: only the client that did not read was closed.
        assert peak[0] < MEMORY_BOUND, f"{peak[0] / 2**20:.0f} MiB"
        assert slow_got[-1] == {"type": 7, "error": SLOW_CLIENT, "allowReconnect": True}
        assert len(slow_got) < FLOOD // PIECE // 2  # what had reached its socket, no more
        assert slow_code == 1000
        await server.send([6, honest_id, flood_record(-1), {}])
        assert (await honest.receive())["arguments"][0] == -1
        closed = await server.receive_type(5)
        assert closed == [5, slow_id, SLOW_CLIENT, {}, {}]  # the app server hears why


async def test_a_client_whose_server_does_not_read_waits_then_is_closed(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    async with (
        connected_server(  # it takes whole batches of the service's frames, one at a time
            client,
            emulator_url,
            entra_token(emulator),
            queue_size=UNREAD,
            max_message_size_bytes=FLOOD,
        ) as server,
        hub_socket(client, emulator_url, client_token(emulator, "ann")) as ws,
    ):
        await routed(server, ws)  # from here on the server reads nothing
        [connection] = emulator.server_connections
        most_queued = 0
        async with anyio.create_task_group() as tasks:

            async def keep_the_server_alive() -> None:
                nonlocal most_queued
                while True:
                    await server.send([3])
                    most_queued = max(most_queued, connection.queued)
                    await anyio.sleep(0.05)

            async def flood() -> None:
                record = flood_record(0).decode()
                try:
                    for _ in range(FLOOD // PIECE):
                        await ws.session.send_text(record)
                except (LocalProtocolError, WebSocketDisconnect):
                    pass  # closed by the service

            tasks.start_soon(keep_the_server_alive)
            tasks.start_soon(flood)
            got, code = await rest_of(ws)
            tasks.cancel_scope.cancel()
        assert got == [{"type": 7, "error": STALLED_SERVER, "allowReconnect": True}]
        assert code == 1000
        # What waited for the server: 1 MiB and one message more, not what the client sent.
        assert 1024 * 1024 <= most_queued < 1024 * 1024 + 2 * PIECE
        await wait_until(lambda: not emulator.connections, "the client to be forgotten")
        assert emulator.server_connections == [connection]  # the server connection stays


async def test_serverless_a_client_that_does_not_read_is_closed_alone(
    client: httpx2.AsyncClient,
) -> None:
    emulator = Emulator()  # Serverless: the service writes to clients itself
    with serve_in_thread(emulator.app) as url:
        async with (
            hub_socket(client, url, client_token(emulator, "ann"), queue_size=UNREAD) as slow,
            hub_socket(client, url, client_token(emulator, "bob")) as honest,
        ):
            assert await slow.handshake() == {}
            assert await honest.handshake() == {}
            [slow_connection, honest_connection] = emulator.connections
            registry = emulator.connection_registry
            with peak_memory() as peak:
                for n in range(FLOOD // PIECE):
                    await registry.deliver([slow_connection], "flood", [n, "x" * PIECE])
                    await registry.deliver([honest_connection], "flood", [n, "x" * PIECE])
                    assert (await honest.receive())["arguments"][0] == n
                    if slow_connection.closing:
                        break  # the rest would be dropped: nothing more to see
            got, code = await rest_of(slow)
            assert got[-1] == {"type": 7, "error": SLOW_CLIENT, "allowReconnect": True}
            assert code == 1000
            assert peak[0] < MEMORY_BOUND, f"{peak[0] / 2**20:.0f} MiB"
            await honest_connection.send({"type": 1, "target": "still", "arguments": []})
            assert (await honest.receive())["target"] == "still"


async def test_serverless_a_record_without_its_separator_is_bounded(
    client: httpx2.AsyncClient,
) -> None:
    emulator = Emulator()
    with serve_in_thread(emulator.app) as url:
        async with hub_socket(client, url, client_token(emulator, "ann")) as ws:
            assert await ws.handshake() == {}
            piece = "x" * (4 * 1024 * 1024)
            try:
                for _ in range(6):  # 24 MiB of one record, past the 16 MiB a message may hold
                    await ws.session.send_text(piece)
            except (LocalProtocolError, WebSocketDisconnect):
                pass  # closed by the service
            got, _ = await rest_of(ws)  # the service dropped what it held, and says why
        error = "Connection closed with an error: a message was not a hub message."
        assert got == [{"type": 7, "error": error, "allowReconnect": False}]
