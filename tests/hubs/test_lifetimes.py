"""What a client's invocations, streams and events live as long as, in Default mode against the
emulator with real WebSocket clients: nothing of a client runs on after it left, a stream id is
used once at a time, a cancellation raised by user code fails that call alone, a client the app
closes leaves nothing behind, a second OpenConnection for a live client changes nothing, and the
app's stop ends every client (their on_disconnected run) without waiting for a slow handler."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest
from anyio.abc import TaskStatus

from signalr_asgi_auth import SignalRAuth, SignalRContext
from signalr_asgi_auth.emulator import Emulator
from signalr_asgi_auth.hubs import Hub, HubCall, HubMethodError
from signalr_asgi_auth.protocol import Ext, OpenConnection, frame_service_message

from ..emulator.helpers import TIMEOUT
from ..emulator.hub_client import HubSocket
from ..support import auth_for, principal_with_role, wait_until
from .chat import Seen, json_client, raw_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(service_mode="default")


@asynccontextmanager
async def serving(
    emulator: Emulator, url: str, hub: Hub, **options: Any
) -> AsyncIterator[tuple[SignalRAuth, SignalRContext, httpx2.AsyncClient]]:
    """``hub`` served over one server connection to the emulator at ``url``; an HTTP client for
    the hub's clients."""
    principal = principal_with_role(emulator, "SignalR App Server")
    options = {"server_connection_count": 1, **options}
    auth = auth_for(emulator, url, principal, hubs=[hub], **options)
    async with auth as context, httpx2.AsyncClient(timeout=TIMEOUT) as http:
        yield auth, context, http


async def invoke(ws: HubSocket, invocation_id: str, target: str, *args: Any) -> dict[str, Any]:
    await ws.send(
        {"type": 1, "invocationId": invocation_id, "target": target, "arguments": list(args)}
    )
    return await completion_of(ws, invocation_id)


async def completion_of(ws: HubSocket, invocation_id: str) -> dict[str, Any]:
    """The completion of ``invocation_id``, past stream items and other messages."""
    while True:
        message = await ws.receive()
        if message.get("type") == 3 and message["invocationId"] == invocation_id:
            return message


async def cancelled_elsewhere() -> BaseException:
    """A cancellation exception as a handler meets one when it awaits something that another
    task cancelled: raised where nothing is cancelling the handler's own task."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await anyio.lowlevel.checkpoint()
        except anyio.get_cancelled_exc_class() as exc:
            return exc
    raise AssertionError  # pragma: no cover - the scope was cancelled


async def test_a_reused_stream_id_is_refused_and_no_stream_outlives_its_client(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    started: list[str] = []
    stopped: list[str] = []
    hub = Hub("chat")

    @hub.on("count")
    async def count(call: HubCall, label: str) -> AsyncIterator[int]:
        started.append(label)
        try:
            n = 0
            while True:
                yield n
                n += 1
                await anyio.sleep(0.01)
        finally:
            stopped.append(label)

    async with serving(emulator, emulator_url, hub) as (_, context, http):
        async with json_client(http, emulator_url, context, "ann") as ann:
            await ann.send({"type": 4, "invocationId": "1", "target": "count", "arguments": ["a"]})
            assert await ann.receive() == {"type": 2, "invocationId": "1", "item": 0}
            await ann.send({"type": 4, "invocationId": "1", "target": "count", "arguments": ["b"]})
            assert await completion_of(ann, "1") == {
                "type": 3,
                "invocationId": "1",
                "error": "Invocation ID '1' is already in use.",
            }
            await ann.send({"type": 4, "invocationId": "2", "target": "count", "arguments": ["c"]})
            await ann.send({"type": 5, "invocationId": "1"})
            assert await completion_of(ann, "1") == {"type": 3, "invocationId": "1"}
            await wait_until(lambda: "c" in started)
        # ann has left: its stream "2" stops with it, and nothing else of it runs on
        await wait_until(lambda: sorted(stopped) == sorted(started))
        assert sorted(started) == ["a", "c"]


async def test_invocations_queued_behind_a_running_one_are_dropped_when_the_client_leaves(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    seen = Seen()
    release = anyio.Event()
    hub = Hub("chat")  # no on_disconnected: nothing else empties the queue

    @hub.on("hold")
    async def hold(call: HubCall) -> None:
        seen.add("holding")
        await release.wait()
        seen.add("released")

    @hub.on("record")
    async def record(call: HubCall) -> None:
        seen.add("recorded")

    async with serving(emulator, emulator_url, hub) as (_, context, http):
        async with json_client(http, emulator_url, context, "ann") as ann:
            await ann.send({"type": 1, "invocationId": "h", "target": "hold", "arguments": []})
            await ann.send({"type": 1, "invocationId": "r", "target": "record", "arguments": []})
            await wait_until(lambda: "holding" in seen.items)
        await wait_until(lambda: not emulator.connections)
        await wait_until(lambda: hub.running()[0].clients == 0)
        release.set()
        await wait_until(lambda: "released" in seen.items)
        await anyio.lowlevel.checkpoint()
        assert seen.items == ["holding", "released"]


async def test_a_cancellation_raised_by_user_code_fails_that_call_alone(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = Seen()
    hub = Hub("chat")

    @hub.on("method")
    async def method(call: HubCall) -> None:
        raise await cancelled_elsewhere()

    @hub.on("stream")
    async def stream(call: HubCall) -> AsyncIterator[int]:
        yield 1
        raise await cancelled_elsewhere()

    @hub.on("add")
    def add(call: HubCall, a: int, b: int) -> int:
        return a + b

    @hub.on_connected
    async def connected(call: HubCall) -> None:
        if call.user_id == "carol":
            raise await cancelled_elsewhere()
        seen.add(f"connected {call.user_id}")

    @hub.on_disconnected
    async def disconnected(call: HubCall) -> None:
        seen.add(f"disconnected {call.user_id}")
        if call.user_id == "dave":
            raise await cancelled_elsewhere()

    with caplog.at_level(logging.ERROR, logger="signalr_asgi_auth.hubs"):
        async with serving(emulator, emulator_url, hub) as (auth, context, http):
            async with json_client(http, emulator_url, context, "ann") as ann:
                assert await invoke(ann, "1", "method") == {
                    "type": 3,
                    "invocationId": "1",
                    "error": "An unexpected error occurred invoking 'method' on the server.",
                }
                assert await invoke(ann, "2", "add", 2, 3) == {
                    "type": 3,
                    "invocationId": "2",
                    "result": 5,
                }
                await ann.send(
                    {"type": 4, "invocationId": "3", "target": "stream", "arguments": []}
                )
                assert await ann.receive() == {"type": 2, "invocationId": "3", "item": 1}
                assert await ann.receive() == {
                    "type": 3,
                    "invocationId": "3",
                    "error": "An error occurred on the server while streaming results.",
                }
            async with json_client(http, emulator_url, context, "carol") as carol:
                closed = await carol.receive()
                assert (closed["type"], closed["error"]) == (7, "Connection closed with an error.")
            async with json_client(http, emulator_url, context, "dave"):
                pass
            await wait_until(lambda: "disconnected dave" in seen.items)
            async with json_client(http, emulator_url, context, "bob") as bob:
                assert (await invoke(bob, "1", "add", 1, 1))["result"] == 2
            assert auth.health()["status"] == "ok"
    failures = [r for r in caplog.records if r.exc_info and r.name == "signalr_asgi_auth.hubs"]
    assert len(failures) == 4  # the method, the stream, on_connected and on_disconnected


def clients_routed(auth: SignalRAuth) -> int:
    clients: int = auth.health()["server_connections"]["chat"]["clients"]
    return clients


async def test_clients_the_app_closes_are_forgotten(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    """Handshake refused, the client's own Close, a protocol error, a close from on_connected:
    the service sends no CloseConnection back for these, so the app must forget them itself."""
    hub = Hub("chat")

    @hub.on_connected
    async def connected(call: HubCall) -> None:
        if call.user_id == "mallory":
            raise HubMethodError("Not you.")  # noqa: EM101

    async with serving(emulator, emulator_url, hub) as (auth, context, http):
        async with json_client(http, emulator_url, context, "ann"):
            await wait_until(lambda: clients_routed(auth) == 1)
            for n in range(5):
                async with raw_client(http, emulator_url, context, f"refused{n}") as ws:
                    assert "error" in await ws.handshake(protocol="xml")
                async with json_client(http, emulator_url, context, f"leaver{n}") as ws:
                    await ws.send({"type": 7})
                async with json_client(http, emulator_url, context, f"garbled{n}") as ws:
                    await ws.session.send_text("{not json\x1e")
                    assert (await ws.receive())["type"] == 7
                async with json_client(http, emulator_url, context, "mallory") as ws:
                    assert await ws.receive() == {"type": 7, "error": "Not you."}
            await wait_until(lambda: len(emulator.connections) == 1)
            await wait_until(lambda: clients_routed(auth) == 1)
            assert hub.running()[0].clients == 1
        await wait_until(lambda: clients_routed(auth) == 0)
        assert hub.running()[0].clients == 0


async def test_a_second_open_connection_for_a_live_client_is_ignored_and_logged(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = Seen()
    hub = Hub("chat")

    @hub.on("whoami")
    async def whoami(call: HubCall) -> str | None:
        return call.user_id

    @hub.on_connected
    async def connected(call: HubCall) -> None:
        seen.add(f"connected {call.user_id} {call.connection_id}")

    @hub.on_disconnected
    async def disconnected(call: HubCall) -> None:
        seen.add(f"disconnected {call.user_id}")

    async with serving(emulator, emulator_url, hub) as (auth, context, http):
        async with json_client(http, emulator_url, context, "ann") as ann:
            await wait_until(lambda: len(seen.items) == 1)
            connection_id = seen.items[0].split()[-1]
            [server] = emulator.server_connections
            again = OpenConnection(
                connection_id, (("asrs.s.uid", "mallory"),), {}, "", Ext(protocol="json")
            )
            with caplog.at_level(logging.WARNING, logger="signalr_asgi_auth.hubs"):
                assert server.send(frame_service_message(again))
                assert (await invoke(ann, "1", "whoami"))["result"] == "ann"
            [warning] = [r for r in caplog.records if r.name == "signalr_asgi_auth.hubs"]
            assert warning.levelno == logging.WARNING
            assert connection_id in warning.getMessage()
            assert "mallory" not in warning.getMessage()
        await wait_until(lambda: "disconnected ann" in seen.items)
        await wait_until(lambda: clients_routed(auth) == 0)
    assert [s.split()[:2] for s in seen.items] == [["connected", "ann"], ["disconnected", "ann"]]


async def test_the_apps_stop_waits_for_no_handler_and_runs_every_disconnect_event(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    """Three clients when the app stops: one in a sync method that will not return soon, one in
    an async method that never returns, one idle whose on_disconnected will not return soon. The
    stop waits for none of them, and on_disconnected runs for each."""
    seen = Seen()
    release = threading.Event()
    hub = Hub("chat")

    @hub.on("block")
    def block(call: HubCall) -> None:  # a worker thread
        seen.add(f"blocking {call.user_id}")
        release.wait(timeout=TIMEOUT)
        seen.add(f"unblocked {call.user_id}")

    @hub.on("busy")
    async def busy(call: HubCall) -> None:
        seen.add(f"busy {call.user_id}")
        await anyio.sleep_forever()

    @hub.on_disconnected
    def disconnected(call: HubCall) -> None:
        seen.add(f"disconnected {call.user_id}")
        if call.user_id == "carol":  # a handler that would hold the stop: its deadline ends it
            release.wait(timeout=TIMEOUT)

    principal = principal_with_role(emulator, "SignalR App Server")
    auth = auth_for(emulator, emulator_url, principal, hubs=[hub], server_connection_count=1)
    stop, stopped = anyio.Event(), anyio.Event()
    blocked_after_stop: list[bool] = []

    async def serve(*, task_status: TaskStatus[SignalRContext]) -> None:
        async with auth as context:
            task_status.started(context)
            await stop.wait()
        blocked_after_stop.append("unblocked ann" not in seen.items)
        stopped.set()

    try:
        async with httpx2.AsyncClient(timeout=TIMEOUT) as http, anyio.create_task_group() as tasks:
            context = await tasks.start(serve)
            async with (
                json_client(http, emulator_url, context, "ann") as ann,
                json_client(http, emulator_url, context, "bob") as bob,
                json_client(http, emulator_url, context, "carol"),
            ):
                await ann.send({"type": 1, "invocationId": "1", "target": "block", "arguments": []})
                await bob.send({"type": 1, "invocationId": "1", "target": "busy", "arguments": []})
                await wait_until(lambda: {"blocking ann", "busy bob"} <= set(seen.items))
                stop.set()
                with anyio.fail_after(TIMEOUT * 2):
                    await stopped.wait()
    finally:
        release.set()
    assert blocked_after_stop == [True]
    assert {s for s in seen.items if s.startswith("disconnected")} == {
        "disconnected ann",
        "disconnected bob",
        "disconnected carol",
    }
