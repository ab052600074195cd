"""What the service sends is limited frame by frame, not WebSocket message by WebSocket message:
the service batches many clients' frames into one message, and a client's message that is too big
costs that client alone, never the server connection and the clients it carries."""

from __future__ import annotations

import httpx2
import pytest

from signalr_asgi_auth.protocol import (
    ClientCompletion,
    ConnectionData,
    ConnectionDataTooLarge,
    ErrorCompletion,
    OpenConnection,
    Ping,
)
from signalr_asgi_auth.server import ConnectionTimings

from .fake_service import FakeService
from .support import make_pool, running

pytestmark = pytest.mark.anyio

LIMIT = 64 * 1024
"""The service frame limit in these tests (16 MiB by default): small, so that the bytes are few."""


async def test_a_websocket_message_of_many_frames_over_the_limit_is_read_frame_by_frame(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    pool = make_pool(fake.url, http, count=1, timings=ConnectionTimings(max_message_size=LIMIT))
    async with running(pool) as hub:
        service = fake.live()[0]
        await service.send(OpenConnection("c1", ()), OpenConnection("c2", ()))
        # Each frame is under the limit; the WebSocket message holding them is three times over.
        batch = [ConnectionData(f"c{1 + n % 2}", bytes([n]) * 50_000) for n in range(4)]
        await service.send(*batch)
        await hub.wait_until(lambda: len(hub.data) == 4)
        assert hub.data == batch
        assert hub.lost == []
        assert pool.up == 1
        await service.wait_for(
            lambda got: sum(isinstance(m, ConnectionData) for m in got) == 4
        )  # every echo went back on the same connection


@pytest.mark.parametrize("parts", [1, 40])
async def test_one_clients_frame_over_the_limit_closes_that_client_alone(
    fake: FakeService, http: httpx2.AsyncClient, parts: int
) -> None:
    pool = make_pool(fake.url, http, count=1, timings=ConnectionTimings(max_message_size=LIMIT))
    async with running(pool) as hub:
        service = fake.live()[0]
        await service.send(OpenConnection("big", ()), OpenConnection("small", ()))
        await service.send_split(ConnectionData("big", b"x" * (4 * LIMIT)), parts)
        await service.send(ConnectionData("small", b"hello"), Ping(("echo", "still here")))
        await hub.wait_until(lambda: hub.data)
        assert hub.data == [ConnectionData("small", b"hello")]
        [too_large] = hub.other
        assert isinstance(too_large, ConnectionDataTooLarge)
        assert too_large.connection_id == "big"
        assert too_large.size > 4 * LIMIT
        await service.wait_for(lambda got: Ping(("echo", "still here")) in got)
        assert hub.lost == []
        assert pool.up == 1


async def test_a_clients_result_over_the_limit_fails_the_invocation_alone(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    """A client on another app server answers this server's invocation with a result too big to
    hold: the invocation fails with the reason, and the connection goes on."""
    pool = make_pool(fake.url, http, count=1, timings=ConnectionTimings(max_message_size=LIMIT))
    async with running(pool) as hub:
        service = fake.live()[0]
        answer = ClientCompletion("inv-1", "far", pool.server_id, "json", b"x" * (2 * LIMIT))
        await service.send(answer, Ping(("echo", "after")))
        await hub.wait_until(lambda: hub.other)
        [failed] = hub.other
        assert isinstance(failed, ErrorCompletion)
        assert (failed.invocation_id, failed.connection_id) == ("inv-1", "far")
        assert failed.error.startswith("The client's result of ")
        assert failed.error.endswith(f" bytes is over the limit of {LIMIT} bytes.")
        await service.wait_for(lambda got: Ping(("echo", "after")) in got)
        assert hub.lost == []
