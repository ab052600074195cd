"""Server connections against a fake service on 127.0.0.1: the handshake, the wire, routing."""

from __future__ import annotations

import time
import uuid

import anyio
import httpx2
import jwt
import pytest

from signalr_asgi_auth.protocol import (
    Ack,
    CloseConnection,
    ConnectionData,
    HandshakeRequest,
    JoinGroupWithAck,
    OpenConnection,
    Ping,
    ServiceErrorMessage,
    ServiceEvent,
)
from signalr_asgi_auth.server import ConnectionTimings, server_id, user_agent

from .fake_service import FakeService
from .support import ACCESS_KEY, make_pool, running, wait_for

pytestmark = pytest.mark.anyio


async def test_opens_the_connections_as_dotnet_does(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    pool = make_pool(fake.url, http, hub="myapp_chat", count=3)
    async with running(pool):
        assert pool.up == 3
        await wait_for(lambda: all(c.received for c in fake.connections))
    cids = {attempt.query["cid"] for attempt in fake.attempts}
    assert len(cids) == 3
    for attempt in fake.attempts:
        assert attempt.path == "/server/"
        assert attempt.query["hub"] == "myapp_chat"
        uuid.UUID(attempt.query["cid"])
        assert attempt.headers["x-asrs-server-id"] == server_id()
        assert attempt.headers["asrs-user-agent"] == user_agent()
        assert attempt.headers["asrs-user-agent"].startswith("signalr-asgi-auth/")
        assert "python" in attempt.headers["asrs-user-agent"].lower()
    # .NET's HandshakeRequest, byte for byte (ServiceProtocolFacts.cs): [1, 1, 0, "", 0, {}]
    for connection in fake.connections:
        assert connection.raw[0] == bytes([7]) + bytes.fromhex("96010100a00080")
        assert connection.received[0] == HandshakeRequest()


async def test_the_server_token_is_dotnets(fake: FakeService, http: httpx2.AsyncClient) -> None:
    pool = make_pool(fake.url, http, hub="chat", count=1)
    async with running(pool):
        pass
    bearer = fake.attempts[0].headers["authorization"].removeprefix("Bearer ")
    header = jwt.get_unverified_header(bearer)
    assert header["alg"] == "HS256"
    # The audience has the host but not the port, although the URL has one.
    claims = jwt.decode(
        bearer,
        ACCESS_KEY.encode(),
        algorithms=["HS256"],
        audience="http://127.0.0.1/server/?hub=chat",
    )
    assert claims["nameid"] == server_id()
    assert 3590 <= claims["exp"] - time.time() <= 3610


async def test_messages_several_to_a_frame_and_one_over_several_frames(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    pool = make_pool(fake.url, http, count=1)
    async with running(pool) as hub:
        service = fake.live()[0]
        await service.send(
            OpenConnection("c1", claims=(("role", "a"), ("role", "b"))),
            ConnectionData("c1", b"hello"),
            Ping(),
        )
        await service.send_split(ConnectionData("c1", b"x" * 300), parts=7)
        await hub.wait_until(lambda: len(hub.data) == 2)
        assert hub.opened == [
            (hub.opened[0][0], OpenConnection("c1", claims=(("role", "a"), ("role", "b"))))
        ]
        assert hub.opened[0][0] == service.connection_id
        assert [d.payload for d in hub.data] == [b"hello", b"x" * 300]
        await service.wait_for(
            lambda got: (
                [m for m in got if isinstance(m, ConnectionData)]
                == [
                    ConnectionData("c1", b"echo:hello"),
                    ConnectionData("c1", b"echo:" + b"x" * 300),
                ]
            )
        )


async def test_a_clients_messages_go_on_its_own_connection(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    pool = make_pool(fake.url, http, count=3)
    async with running(pool) as hub:
        carrier = fake.live()[1]
        await carrier.send(OpenConnection("c9"))
        await hub.wait_until(lambda: hub.opened)
        for _ in range(10):
            await pool.send(ConnectionData("c9", b"m"), client="c9")
        await carrier.wait_for(
            lambda got: len([m for m in got if isinstance(m, ConnectionData)]) == 10
        )
        others = [c for c in fake.live() if c is not carrier]
        assert not any(isinstance(m, ConnectionData) for c in others for m in c.received)
        await carrier.send(CloseConnection("c9", error_message="bye"))
        await hub.wait_until(lambda: hub.closed)
        assert hub.closed == [CloseConnection("c9", error_message="bye")]


async def test_pings_echo_and_keep_alive(fake: FakeService, http: httpx2.AsyncClient) -> None:
    interval = 0.05
    timings = ConnectionTimings(keepalive_interval=interval)
    pool = make_pool(fake.url, http, count=1, timings=timings)
    started = anyio.current_time()
    async with running(pool):
        service = fake.live()[0]
        await service.send(Ping(("echo", "1234")))
        await service.wait_for(lambda got: Ping(("echo", "1234")) in got)
        await service.wait_for(lambda got: got.count(Ping()) >= 3)  # keep-alive while idle
        pings = service.received.count(Ping())
        elapsed = anyio.current_time() - started
    assert service.received.count(Ping(("echo", "1234"))) == 1  # each echo answered once
    # At most one keep-alive per interval since the connection opened (a slow machine only
    # sends fewer): a ping loop that forgot to wait would flood the service.
    assert pings <= elapsed / interval + 1


async def test_acks_resolve_the_waiting_send(fake: FakeService, http: httpx2.AsyncClient) -> None:
    pool = make_pool(fake.url, http, count=2)
    async with running(pool) as hub:
        carrier = fake.live()[0]
        await carrier.send(OpenConnection("c1"))
        await hub.wait_until(lambda: hub.opened)

        async def acknowledge() -> None:
            await carrier.wait_for(lambda got: any(isinstance(m, JoinGroupWithAck) for m in got))
            join = next(m for m in carrier.received if isinstance(m, JoinGroupWithAck))
            await carrier.send(Ack(join.ack_id, 1))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(acknowledge)
            ack = await pool.send_with_ack(
                lambda ack_id: JoinGroupWithAck("c1", "room", ack_id), client="c1"
            )
        assert ack.status == 1
        with pytest.raises(
            Exception, match=r"did not acknowledge a message for hub 'chat' within 0\.1 s"
        ):
            await pool.send_with_ack(
                lambda ack_id: JoinGroupWithAck("c1", "r", ack_id), timeout=0.1
            )


async def test_after_a_service_error_nothing_more_is_written_but_reading_goes_on(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    pool = make_pool(fake.url, http, count=2)
    async with running(pool) as hub:
        erring, _ = fake.live()
        await erring.send(ServiceErrorMessage("overloaded"), ServiceEvent(1, "c1", 1, "invalid"))
        await wait_for(lambda: pool.health()["last_error"] is not None)
        assert "overloaded" in pool.health()["last_error"]["message"]
        for _ in range(5):
            await pool.send(ConnectionData("cx", b"m"))

        def sent_elsewhere() -> int:
            others = [c for c in fake.live() if c is not erring]
            return sum(isinstance(m, ConnectionData) for c in others for m in c.received)

        await wait_for(lambda: sent_elsewhere() == 5)
        assert not any(isinstance(m, ConnectionData) for m in erring.received)
        await erring.send(OpenConnection("c2"), ConnectionData("c2", b"still read"))
        await hub.wait_until(lambda: hub.data)
        assert hub.data[0].payload == b"still read"


async def test_a_service_error_takes_the_connection_down_and_replaces_it_at_once(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    # .NET's ServiceConnectionBase: the status is Disconnected at once, so it is not counted up
    # and nothing is sent on it; the pool opens another in its place.
    pool = make_pool(fake.url, http, count=1)
    async with running(pool):
        (erring,) = fake.live()
        await erring.send(ServiceErrorMessage("Maximum message count limit reached"))
        await wait_for(lambda: len(fake.attempts) == 2 and pool.up == 1)
        await pool.send(ConnectionData("cx", b"after"))
        replacement = fake.live()[-1]
        assert replacement is not erring
        await replacement.wait_for(lambda got: ConnectionData("cx", b"after") in got)
        assert ConnectionData("cx", b"after") not in erring.received
        assert pool.health()["up"] == 1


async def test_a_service_that_stops_reading_is_left_and_sends_move_on(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    timings = ConnectionTimings(write_timeout=0.5)
    pool = make_pool(fake.url, http, count=2, timings=timings)
    async with running(pool) as hub:
        deaf, _ = fake.live()
        await deaf.send(OpenConnection("c1"))
        await hub.wait_until(lambda: hub.opened)
        deaf.deaf = True
        payload = b"x" * 512 * 1024
        # 24 MiB: more than the sockets on both ends buffer, so writes to the deaf one stall.
        with anyio.fail_after(30):  # a hang guard: each stalled write gives up after 0.5 s
            for _ in range(48):
                await pool.send(ConnectionData("c1", payload), client="c1")
        await wait_for(lambda: pool.up == 2 and pool.health()["lost"] == 1)
        lost = pool.health()["last_lost"]["reason"]
        assert "SignalR Service took no message for 0.5 s" in lost
        assert [lost[0] for lost in hub.lost] == [deaf.connection_id]


async def test_offline_drops_the_clients_of_that_instance(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    pool = make_pool(fake.url, http, count=1)
    async with running(pool) as hub:
        service = fake.live()[0]
        await service.send(
            OpenConnection("a", headers={"Asrs-Instance-Id": ("i1",)}),
            OpenConnection("b", headers={"Asrs-Instance-Id": ("i2",)}),
            Ping(("offline", "i1")),
        )
        await hub.wait_until(lambda: hub.closed)
        assert [c.connection_id for c in hub.closed] == ["a"]
        assert "i1 went offline" in hub.closed[0].error_message


async def test_target_opens_an_on_demand_connection(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    pool = make_pool(fake.url, http, count=1)
    async with running(pool):
        await fake.live()[0].send(Ping(("target", "instance/7")))
        await fake.wait_until(lambda: len(fake.live()) == 2 and bool(fake.live()[1].received))
        on_demand = fake.live()[1]
        assert on_demand.attempt.query["target"] == "instance/7"
        assert on_demand.received[0] == HandshakeRequest(connection_type=1, target="instance/7")
        await wait_for(lambda: pool.up == 2)
        assert pool.health()["on_demand"] == 1


async def test_hub_layer_errors_do_not_end_the_connection(
    fake: FakeService, http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(fake.url, http, count=1)

    async with running(pool) as hub:
        service = fake.live()[0]
        original = hub.client_data

        async def broken(message: ConnectionData) -> None:
            msg = "a bug in the hub layer"
            raise RuntimeError(msg)

        hub.client_data = broken  # type: ignore[method-assign]
        await service.send(ConnectionData("c1", b"boom"))
        await wait_for(lambda: "a bug in the hub layer" in caplog.text)
        hub.client_data = original  # type: ignore[method-assign]
        await service.send(OpenConnection("c2"), ConnectionData("c2", b"fine"))
        await hub.wait_until(lambda: hub.data)
        assert pool.up == 1
    assert "Handling ConnectionData from SignalR Service on hub 'chat' failed" in caplog.text
