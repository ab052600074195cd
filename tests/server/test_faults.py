"""Server connections under faults: closes, refusals, silence, broken frames, backoff, stopping."""

from __future__ import annotations

import logging

import anyio
import httpx2
import pytest
from wsproto.events import BytesMessage

from signalr_asgi_auth import NotReadyError
from signalr_asgi_auth._backoff import Backoff
from signalr_asgi_auth.protocol import ConnectionData, OpenConnection, Ping, frame_service_message
from signalr_asgi_auth.server import ConnectionTimings

from ..faults import keeper_tasks
from .fake_service import FakeService
from .support import ACCESS_KEY, make_pool, running, wait_for

pytestmark = pytest.mark.anyio


class ManualClock:
    """A clock that stands still; each ``sleep`` waits until the test calls :meth:`advance`."""

    def __init__(self) -> None:
        self._now = 1_000_000.0
        self.sleeps: list[float] = []
        self.sleeping = 0
        self._wake = anyio.Event()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping += 1
        wake = self._wake
        try:
            await wake.wait()
        finally:
            self.sleeping -= 1

    def advance(self) -> None:
        self._now += self.sleeps[-1]
        self._wake.set()
        self._wake = anyio.Event()


async def test_a_closed_connection_is_reported_and_reopened(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    pool = make_pool(fake.url, http, count=2)
    async with running(pool) as hub:
        victim = fake.live()[0]
        await victim.send(OpenConnection("c1"))
        await hub.wait_until(lambda: hub.opened)
        await victim.close(1011, "service restarting")
        await hub.wait_until(lambda: hub.lost)
        assert hub.lost[0][0] == victim.connection_id
        assert "closed the WebSocket (code 1011: service restarting)" in hub.lost[0][1]
        await wait_for(lambda: pool.up == 2 and len(fake.attempts) == 3)
        assert fake.attempts[2].query["cid"] not in {a.query["cid"] for a in fake.attempts[:2]}
        health = pool.health()
        assert health["reconnects"] == 1
        assert health["lost"] == 1
        assert "service restarting" in health["last_lost"]["reason"]
        # its client went with it: a send for it goes on another connection
        await pool.send(ConnectionData("c1", b"late"), client="c1")


async def test_a_handshake_error_is_retried_and_recovers(
    fake: FakeService, http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake.behaviour = "handshake_error"
    pool = make_pool(fake.url, http, count=2)
    async with running(pool, wait_up=False):
        await wait_for(lambda: len(fake.attempts) >= 6)
        assert pool.up == 0
        error = pool.health()["last_error"]
        assert error["current"]
        assert "refused the handshake (Hub is not allowed)" in error["message"]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # once per outage, not once per attempt
        with pytest.raises(
            NotReadyError,
            match=r"No server connection to SignalR Service is up for hub 'chat'.*Hub is not allowed",
        ):
            await pool.send(ConnectionData("c", b""))
        fake.behaviour = "accept"
        await wait_for(lambda: pool.up == 2)
        assert not pool.health()["last_error"]["current"]
    assert "are up again" in caplog.text


async def test_401_with_an_access_key_says_to_check_the_key(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    fake.behaviour, fake.refuse_status = "refuse", 401
    pool = make_pool(fake.url, http, count=1)
    async with running(pool, wait_up=False):
        await wait_for(lambda: pool.health()["last_error"] is not None)
    error = pool.health()["last_error"]
    assert error["type"] == "AuthenticationFailedError"
    assert (
        "rejected the token signed with the access key while trying to open a server connection for hub 'chat' (401 Unauthorized)"
        in error["message"]
    )


async def test_403_names_the_app_server_role(fake: FakeService, http: httpx2.AsyncClient) -> None:
    fake.behaviour, fake.refuse_status, fake.refuse_message = "refuse", 403, "Forbidden"
    pool = make_pool(fake.url, http, count=1)
    async with running(pool, wait_up=False):
        await wait_for(lambda: pool.health()["last_error"] is not None)
    message = pool.health()["last_error"]["message"]
    assert pool.health()["last_error"]["type"] == "PermissionDeniedError"
    assert "refused to open a server connection for hub 'chat' (403 Forbidden)" in message
    assert "Microsoft.SignalRService/SignalR/serverConnection/write" in message
    assert "'SignalR App Server' or 'SignalR Service Owner'" in message
    assert "az role assignment create" in message


async def test_a_silent_service_times_the_handshake_out(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    fake.behaviour = "silent"
    pool = make_pool(fake.url, http, count=1, timings=ConnectionTimings(handshake_timeout=0.2))
    async with running(pool, wait_up=False):
        await wait_for(lambda: pool.health()["last_error"] is not None)
        await wait_for(lambda: len(fake.attempts) >= 3)  # and it keeps trying
    assert "sent no handshake response within 0.2 s" in pool.health()["last_error"]["message"]


async def test_a_service_gone_quiet_is_left_and_reconnected(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    # The fake never pings: after the handshake nothing comes, so the receive timeout fires.
    timings = ConnectionTimings(receive_timeout=0.3)
    pool = make_pool(fake.url, http, count=1, timings=timings)
    async with running(pool) as hub:
        await hub.wait_until(lambda: hub.lost)
        assert hub.lost[0][1] == "no message from SignalR Service for 0.3 s"
        await wait_for(lambda: len(fake.attempts) >= 2 and pool.up == 1)


async def test_a_drop_in_the_middle_of_a_message(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    pool = make_pool(fake.url, http, count=1)
    async with running(pool) as hub:
        service = fake.live()[0]
        await service.send(OpenConnection("c1"))
        whole = frame_service_message(ConnectionData("c1", b"y" * 1000))
        # half of a WebSocket frame carrying half of a service message, then the TCP cut
        frame = service.ws.send(BytesMessage(data=whole[:500]))
        await service.drop(partial=frame[: len(frame) // 2])
        await hub.wait_until(lambda: hub.lost)
        assert hub.data == []
        await wait_for(lambda: pool.up == 1 and len(fake.attempts) == 2)


async def test_half_a_message_then_a_close(fake: FakeService, http: httpx2.AsyncClient) -> None:
    pool = make_pool(fake.url, http, count=1)
    async with running(pool) as hub:
        service = fake.live()[0]
        whole = frame_service_message(ConnectionData("c1", b"z" * 100))
        await service.send_raw(whole[:40])
        await service.close()
        await hub.wait_until(lambda: hub.lost)
        assert hub.data == []


async def test_reconnects_back_off_one_prober_at_a_time(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    fake.behaviour, fake.refuse_status = "refuse", 503
    clock = ManualClock()
    pool = make_pool(fake.url, http, count=4, clock=clock, backoff=Backoff(1.0, 60.0))
    async with running(pool, wait_up=False):
        await wait_for(lambda: clock.sleeping == 1)
        assert len(fake.attempts) == 5  # four at startup, then one prober
        fake.most_open_attempts = 0
        for step in range(1, 6):
            assert pool.health()["consecutive_failures"] == step
            clock.advance()
            await wait_for(lambda step=step: clock.sleeping == 1 and len(clock.sleeps) == step + 1)
            assert len(fake.attempts) == 5 + step
        assert fake.most_open_attempts == 1
        for failures, delay in enumerate(clock.sleeps, start=1):
            assert 0.1 <= delay <= min(60.0, 2.0 ** (failures - 1))
        fake.behaviour = "accept"
        clock.advance()
        await wait_for(lambda: pool.up == 4)
        assert pool.health()["consecutive_failures"] == 0
        assert len(clock.sleeps) == 6  # success holds nobody back


async def test_retry_after_is_honoured(fake: FakeService, http: httpx2.AsyncClient) -> None:
    fake.behaviour, fake.refuse_status = "refuse", 429
    fake.refuse_headers = [(b"retry-after", b"30")]
    clock = ManualClock()
    pool = make_pool(fake.url, http, count=1, clock=clock, backoff=Backoff(1.0, 60.0))
    async with running(pool, wait_up=False):
        await wait_for(lambda: clock.sleeping == 1)
        assert clock.sleeps[0] >= 30
        assert "throttling" in pool.health()["last_error"]["message"]


async def test_graceful_stop_says_shutdown_and_leaves_nothing(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    pool = make_pool(fake.url, http, count=3)
    async with running(pool) as hub:
        assert keeper_tasks()
        started = anyio.current_time()
        await pool.stop(within=60.0)  # finack may take 36 s of that (its share: 3/5)
        took = anyio.current_time() - started
    assert keeper_tasks() == []
    for connection in fake.connections:
        assert Ping(("shutdown", "fin:0")) in connection.received
    await fake.wait_until(lambda: fake.open_now == 0)
    # The service answered finack at once, so the stop ended then: a stop that waited for
    # finack's deadline instead would take 36 s; the bound leaves a loaded machine 30 s.
    assert took < 30.0
    assert len(hub.lost) == 3
    assert {reason for _, reason in hub.lost} == {"the app is shutting down"}


async def test_stop_is_bounded_when_finack_never_comes(
    fake: FakeService, http: httpx2.AsyncClient
) -> None:
    fake.answer_finack = False
    pool = make_pool(fake.url, http, count=2)
    async with running(pool):
        started = anyio.current_time()
        await pool.stop(within=1.0)
        took = anyio.current_time() - started
    # Bounded by ``within``, not the default 5 s stop (room for a loaded machine below that).
    assert 0.5 <= took < 4.0
    await fake.wait_until(lambda: fake.open_now == 0)


async def test_no_secret_in_logs_at_debug(
    fake: FakeService, http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.behaviour, fake.refuse_status = "refuse", 401
    pool = make_pool(fake.url, http, count=1)
    async with running(pool, wait_up=False):
        await wait_for(lambda: len(fake.attempts) >= 2)
        fake.behaviour = "accept"
        await wait_for(lambda: pool.up == 1)
        await fake.live()[0].close(1011, "bye")
        await wait_for(lambda: pool.health()["lost"] == 1)
    bearers = {a.headers["authorization"].removeprefix("Bearer ") for a in fake.attempts}
    logged = caplog.text + repr(pool.health()) + repr(pool)
    for secret in (ACCESS_KEY, *bearers):
        assert secret not in logged
    assert "401 Unauthorized" in logged
