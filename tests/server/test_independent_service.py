"""The pool against the independent service (tests/independent_service, written from the .NET
sources and sharing no code with the library): it checks the server token itself, and its fault
hooks break the service in the ways Azure's service is seen to break."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from signalr_asgi_auth import ServiceError
from signalr_asgi_auth.protocol import JoinGroupWithAck
from signalr_asgi_auth.server import ConnectionTimings, ServerConnectionPool, server_id

from ..independent_service import IndependentService
from .support import ACCESS_KEY, EchoHub, make_pool, running, wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
async def service() -> AsyncIterator[IndependentService]:
    async with IndependentService.running(access_key=ACCESS_KEY) as running_service:
        yield running_service


def pool_on(
    service: IndependentService, http: httpx2.AsyncClient, **kwargs: object
) -> ServerConnectionPool:
    return make_pool(service.url, http, **kwargs)  # type: ignore[arg-type]


async def test_it_accepts_our_server_token_handshake_keepalive_and_shutdown(
    service: IndependentService, http: httpx2.AsyncClient
) -> None:
    service.faults.ping_interval = 0.05
    pool = pool_on(
        service, http, hub="app_chat", count=2, timings=ConnectionTimings(keepalive_interval=0.05)
    )
    async with running(pool):
        await service.wait_for_servers("app_chat", count=2)
        first = service.up("app_chat")[0]
        await first.ping("echo", "e1")
        await first.wait_for(lambda c: [3, "echo", "e1"] in c.received)
        await first.wait_for(lambda c: c.received.count([3]) >= 2)
        # Answered once, and the answer not answered again (no echo ping-pong).
        assert first.received.count([3, "echo", "e1"]) == 1
    assert {a.auth for a in service.attempts} == {"access-key"}
    assert {a.headers["x-asrs-server-id"] for a in service.attempts} == {server_id()}
    for connection in service.connections:
        assert connection.handshake == [1, 1, 0, "", 0, {}]
        assert [3, "shutdown", "fin:0"] in connection.received
        assert connection.errors == []


async def test_a_message_cut_into_pieces_and_several_in_one(
    service: IndependentService, http: httpx2.AsyncClient
) -> None:
    pool = pool_on(service, http, count=1)
    async with running(pool) as hub:
        (connection,) = service.up("chat")
        await connection.send([4, "c1", {}, {}, ""], [6, "c1", b"a" * 500, {}], pieces=9)
        await connection.send([6, "c1", b"b", {}], [6, "c1", b"c", {}])
        await hub.wait_until(lambda: len(hub.data) == 3)
        assert [d.payload for d in hub.data] == [b"a" * 500, b"b", b"c"]
        await connection.wait_for(lambda c: len(c.of_type(6)) == 3)
        assert [m[2] for m in connection.of_type(6)] == [
            b"echo:" + b"a" * 500,
            b"echo:b",
            b"echo:c",
        ]


@pytest.mark.parametrize(
    ("status", "kind", "says"),
    [
        (401, "AuthenticationFailedError", "(401 Unauthorized)"),
        (403, "PermissionDeniedError", "'SignalR App Server' or 'SignalR Service Owner'"),
        (429, "ServiceError", "throttling"),
        (503, "ServiceError", "503"),
    ],
)
async def test_refused_upgrades(
    service: IndependentService, http: httpx2.AsyncClient, status: int, kind: str, says: str
) -> None:
    service.faults.refuse_status = status
    pool = pool_on(service, http, count=1)
    async with running(pool, wait_up=False):
        await wait_for(lambda: len(service.attempts) >= 2)
        error = pool.health()["last_error"]
        assert error["type"] == kind
        assert says in error["message"]
        service.faults.refuse_status = None
        await wait_for(lambda: pool.up == 1)


async def test_a_handshake_error_then_recovery(
    service: IndependentService, http: httpx2.AsyncClient
) -> None:
    service.faults.handshake_error = "Too many server connections"
    pool = pool_on(service, http, count=2)
    async with running(pool, wait_up=False):
        await wait_for(lambda: pool.health()["last_error"] is not None)
        assert "Too many server connections" in pool.health()["last_error"]["message"]
        service.faults.handshake_error = None
        await wait_for(lambda: pool.up == 2)


async def test_silence_before_and_after_the_handshake(
    service: IndependentService, http: httpx2.AsyncClient
) -> None:
    service.faults.answer_handshake = False
    timings = ConnectionTimings(handshake_timeout=0.2, receive_timeout=0.3)
    pool = pool_on(service, http, count=1, timings=timings)
    async with running(pool, wait_up=False) as hub:
        await wait_for(lambda: pool.health()["last_error"] is not None)
        assert "no handshake response within 0.2 s" in pool.health()["last_error"]["message"]
        service.faults.answer_handshake, service.faults.ping_interval = True, None
        await hub.wait_until(lambda: hub.lost)
        assert hub.lost[0][1] == "no message from SignalR Service for 0.3 s"


async def test_pings_of_the_service_keep_a_connection(
    service: IndependentService, http: httpx2.AsyncClient
) -> None:
    service.faults.ping_interval = 0.05
    pool = pool_on(service, http, count=1, timings=ConnectionTimings(receive_timeout=0.4))
    hub = EchoHub()
    async with running(pool, hub):
        with pytest.raises(TimeoutError):
            await hub.wait_until(lambda: hub.lost, within=1.2)
        service.faults.ping_interval = None  # see the first test


async def test_a_drop_mid_message(service: IndependentService, http: httpx2.AsyncClient) -> None:
    pool = pool_on(service, http, count=1)
    async with running(pool) as hub:
        (connection,) = service.up("chat")
        await connection.drop_mid_message([6, "c1", b"x" * 200, {}])
        await hub.wait_until(lambda: hub.lost)
        assert hub.data == []
        await wait_for(lambda: pool.up == 1 and len(service.attempts) == 2)


async def test_acks_answered_and_not(service: IndependentService, http: httpx2.AsyncClient) -> None:
    pool = pool_on(service, http, count=1)
    async with running(pool):
        (connection,) = service.up("chat")
        await connection.send([4, "c1", {}, {}, ""])
        await wait_for(lambda: pool.health()["up"] == 1)
        ack = await pool.send_with_ack(
            lambda ack_id: JoinGroupWithAck("c1", "room", ack_id), client="c1"
        )
        assert ack.status == 2  # NotFound: the OpenConnection above came from no client it knows
        service.faults.answer_acks = False
        with pytest.raises(ServiceError, match="did not acknowledge"):
            await pool.send_with_ack(
                lambda ack_id: JoinGroupWithAck("c1", "r2", ack_id), timeout=0.2
            )
