"""Default mode end to end: a Hub (the chat hub of ``chat.py``, which the Serverless tests serve
too) given to ``SignalRAuth(hubs=[...])`` opens real server
connections to the emulator (Entra identity with *SignalR App Server*), and reference clients
connect through the emulator's client endpoint, one JSON and one MessagePack: invocations and
completions, errors, sends to all, a user, a group and a connection, groups with acks, streams
with cancel, client results, on_connected/on_disconnected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from anyio.abc import TaskStatus

from signalr_asgi_auth import SignalRContext
from signalr_asgi_auth.emulator import Emulator
from signalr_asgi_auth.hubs import Hub, HubCall, HubMethodError

from ..emulator.helpers import TIMEOUT
from ..emulator.hub_client import HubSocket
from ..support import auth_for, principal_with_role
from .chat import Seen, chat_hub, json_client, msgpack_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(service_mode="default")


@asynccontextmanager
async def app(
    emulator: Emulator, url: str, seen: Seen
) -> AsyncIterator[tuple[SignalRContext, Hub]]:
    principal = principal_with_role(emulator, "SignalR App Server")
    chat = chat_hub(seen)
    auth = auth_for(emulator, url, principal, hubs=[chat], server_connection_count=2)
    async with auth as context:
        yield context, chat


async def completion(ws: HubSocket, invocation_id: str, target: str, *args: Any) -> dict[str, Any]:
    await ws.send(
        {"type": 1, "invocationId": invocation_id, "target": target, "arguments": list(args)}
    )
    return await ws.receive()


async def test_json_and_messagepack_clients_over_server_connections(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    seen = Seen()
    async with (
        app(emulator, emulator_url, seen) as (context, chat),
        httpx2.AsyncClient(timeout=TIMEOUT) as http,
        json_client(http, emulator_url, context, "ann") as ann,
        msgpack_client(http, emulator_url, context, "bob") as bob,
    ):
        # a broadcast reaches both protocols; the caller gets its completion after it
        await ann.send({"type": 1, "invocationId": "1", "target": "send", "arguments": ["hi"]})
        assert await ann.receive() == {
            "type": 1,
            "target": "newMessage",
            "arguments": ["ann", "hi"],
        }
        assert await ann.receive() == {"type": 3, "invocationId": "1", "result": "delivered"}
        assert await bob.receive() == [1, {}, None, "newMessage", ["ann", "hi"], []]
        # MessagePack invocation, a sync handler's result
        await bob.send([1, {}, "b1", "add", [2, 3], []])
        assert await bob.receive() == [3, {}, "b1", 3, 5]
        # errors
        assert (await completion(ann, "2", "fail"))["error"] == "nope"
        crashed = await completion(ann, "3", "crash")
        assert crashed["error"] == "An unexpected error occurred invoking 'crash' on the server."
        assert (await completion(ann, "4", "add", "x", 1))["error"] == (
            "Argument 1 ('a') of 'add' must be int, not str."
        )
        assert (await completion(ann, "5", "nothing"))["error"] == "Unknown hub method 'nothing'"
        # a user; a group joined with the service's ack
        await ann.send(
            {"type": 1, "invocationId": "6", "target": "whisper", "arguments": ["bob", "psst"]}
        )
        assert await bob.receive() == [1, {}, None, "whisper", ["ann", "psst"], []]
        assert await ann.receive() == {"type": 3, "invocationId": "6"}
        await bob.send([1, {}, "b2", "join", ["room"], []])
        assert await bob.receive() == [1, {}, None, "joined", ["bob"], []]
        assert await bob.receive() == [3, {}, "b2", 3, "room"]
        # a stream, cancelled by the client
        await ann.send({"type": 4, "invocationId": "s", "target": "ticks", "arguments": [2]})
        assert await ann.receive() == {"type": 2, "invocationId": "s", "item": 0}
        assert await ann.receive() == {"type": 2, "invocationId": "s", "item": 1}
        await ann.send({"type": 5, "invocationId": "s"})
        assert await ann.receive() == {"type": 3, "invocationId": "s"}
        # a client result: the hub asks bob, bob answers
        await bob.send([1, {}, "b3", "ask", ["sure?"], []])
        asked = await bob.receive()
        assert asked[:2] == [1, {}]
        assert asked[3:5] == ["confirm", ["sure?"]]
        await bob.send([3, {}, asked[2], 3, True])
        assert await bob.receive() == [3, {}, "b3", 3, True]
        # the hub's clients from outside a call
        await chat.clients.all.send("news", "from a task")
        assert await ann.receive() == {"type": 1, "target": "news", "arguments": ["from a task"]}
        assert await bob.receive() == [1, {}, None, "news", ["from a task"], []]
    with anyio.fail_after(TIMEOUT):
        while len([s for s in seen.items if s.startswith("disconnected")]) < 2:  # noqa: ASYNC110
            await anyio.sleep(0.01)
    assert sorted(seen.items)[:2] == ["connected ann None default", "connected bob None default"]


async def test_the_service_forgets_client_results_answered_on_the_callers_server(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    """The client is on the server that asked: the hub layer takes its Completion itself, and
    tells the service with an empty ClientCompletion (as the .NET SDK does), or the service's
    table of pending invocations would grow by one per client result."""
    async with (
        app(emulator, emulator_url, Seen()) as (context, _),
        httpx2.AsyncClient(timeout=TIMEOUT) as http,
        json_client(http, emulator_url, context, "ann") as ann,
    ):
        for n in range(20):
            await ann.send(
                {"type": 1, "invocationId": f"a{n}", "target": "ask", "arguments": ["sure?"]}
            )
            asked = await ann.receive()
            assert (asked["target"], asked["arguments"]) == ("confirm", ["sure?"])
            await ann.send({"type": 3, "invocationId": asked["invocationId"], "result": n})
            assert await ann.receive() == {"type": 3, "invocationId": f"a{n}", "result": n}
        with anyio.fail_after(TIMEOUT):
            while emulator.pending_client_invocations:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        assert len(emulator.connections) == 1  # still connected: no close did the cleanup


async def test_pings_a_refusal_and_a_lost_app(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    seen = Seen()
    chat = Hub("chat", keep_alive_interval=0.2)

    @chat.on_connected
    async def connected(call: HubCall) -> None:
        if call.user_id == "mallory":
            raise HubMethodError("Not you.")  # noqa: EM101
        seen.add(f"connected {call.user_id}")

    @chat.on_disconnected
    async def disconnected(call: HubCall, error: str | None) -> None:
        seen.add(f"disconnected {call.user_id}")

    principal = principal_with_role(emulator, "SignalR App Server")
    auth = auth_for(emulator, emulator_url, principal, hubs=[chat], server_connection_count=1)
    stop = anyio.Event()

    async def serve(*, task_status: TaskStatus[SignalRContext]) -> None:
        async with auth as context:
            task_status.started(context)
            await stop.wait()

    async with httpx2.AsyncClient(timeout=TIMEOUT) as http, anyio.create_task_group() as tasks:
        context = await tasks.start(serve)
        async with json_client(http, emulator_url, context, "mallory") as mallory:
            assert await mallory.receive() == {"type": 7, "error": "Not you."}
        async with json_client(http, emulator_url, context, "ann") as ann:
            # the hub pings (the service does not, in Default mode)
            assert await ann.receive(skip_pings=False) == {"type": 6}
            assert await ann.receive(skip_pings=False) == {"type": 6}
            stop.set()  # the app stops under its client, which is told so
            close = await ann.receive()
            while close.get("type") != 7:
                close = await ann.receive()
            assert close["error"]  # the service says why (its app server left)
    assert seen.items[0] == "connected ann"
    assert "disconnected ann" in seen.items
    assert not [s for s in seen.items if "mallory" in s]
