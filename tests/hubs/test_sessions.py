"""The hub layer over an in-memory pool: handshake, invocations, errors, streams, client results,
pings, closes, on both protocols and on asyncio and trio."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from signalr_asgi_auth import NotReadyError, ServiceError
from signalr_asgi_auth.hubs import Hub, HubCall, HubMethodError
from signalr_asgi_auth.protocol import (
    AckStatus,
    BroadcastData,
    CancelInvocation,
    ClientCompletion,
    ClientInvocation,
    CloseConnection,
    Completion,
    ConnectionData,
    ConnectionDataTooLarge,
    DataMessageType,
    ErrorCompletion,
    GroupBroadcastData,
    HubClose,
    HubMessage,
    HubPing,
    Invocation,
    JoinGroupWithAck,
    LeaveGroupWithAck,
    MultiConnectionData,
    MultiGroupBroadcastData,
    MultiUserData,
    StreamInvocation,
    StreamItem,
    UserData,
)

from .memory_pool import FakeClient, connect, running

pytestmark = pytest.mark.anyio

PROTOCOLS = ["json", "messagepack"]


def chat_hub(**options: Any) -> Hub:
    hub = Hub("chat", **options)
    seen: list[str] = []
    hub.seen = seen  # type: ignore[attr-defined]

    @hub.on("send")
    async def send(call: HubCall, text: str) -> str:
        seen.append(f"send:{call.user_id}:{text}")
        await call.clients.all.send("newMessage", call.user_id, text)
        return "delivered"

    @hub.on("add")
    def add(call: HubCall, a: int, b: float = 0.5) -> float:
        seen.append(f"thread:{threading.current_thread() is threading.main_thread()}")
        return a + b

    @hub.on("fail")
    async def fail(call: HubCall) -> None:
        raise HubMethodError("nope")  # noqa: EM101

    @hub.on("crash")
    async def crash(call: HubCall) -> None:
        raise KeyError("secret-detail")  # noqa: EM101

    @hub.on_connected
    async def joined(call: HubCall) -> None:
        seen.append(f"connected:{call.connection_id}")

    @hub.on_disconnected
    async def left(call: HubCall, error: str | None) -> None:
        seen.append(f"disconnected:{call.connection_id}:{error}")

    return hub


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_invoke_gets_its_result_after_on_connected(protocol: str) -> None:
    hub = chat_hub()
    async with running(hub) as (pool, events):
        client = await connect(
            pool,
            events,
            protocol=protocol,
            claims=(("asrs.s.uid", "ann"), ("role", "a"), ("role", "b")),
        )
        [reply] = [m for m, _ in pool.sent if isinstance(m, ConnectionData)]
        assert reply.ext.data_message_type == DataMessageType.HANDSHAKE
        await client.send(Invocation(target="send", arguments=("hi",), invocation_id="1"))
        done = await client.receive(Completion, invocation_id="1")
        assert (done.result, done.error) == ("delivered", None)
        assert hub.seen == ["connected:c1", "send:ann:hi"]  # type: ignore[attr-defined]
        [broadcast] = pool.of_type(BroadcastData)
        assert set(broadcast.payloads) == {"json", "messagepack"}  # every protocol a client may use
        for name, payload in broadcast.payloads.items():
            [message] = FakeClient(pool, events, "x", name).protocol.reader().feed(payload)
            assert message == Invocation(
                target="newMessage", arguments=("ann", "hi"), invocation_id=None
            )


async def test_a_sync_handler_runs_in_a_worker_thread() -> None:
    hub = chat_hub()
    async with running(hub) as (pool, events):
        client = await connect(pool, events)
        await client.send(
            Invocation(target="ADD", arguments=(2,), invocation_id="7")
        )  # method names ignore case
        done = await client.receive(Completion, invocation_id="7")
        assert done.result == 2.5
        assert "thread:False" in hub.seen  # type: ignore[attr-defined]


async def test_handshake_split_across_payloads_and_partial_chunks() -> None:
    hub = chat_hub()
    async with running(hub) as (pool, events):
        client = FakeClient(pool, events, "c1", "json")
        await client.open()
        await client.feed(b'{"protocol":"js')
        assert client.handshake_reply is None
        assert pool.sent == []
        invocation = client.protocol.write(
            Invocation(target="send", arguments=("x",), invocation_id="1")
        )
        await client.feed(b'on","version":1}\x1e' + invocation[:5], partial=True)
        assert pool.sent == []  # a partial chunk waits for the rest
        await client.feed(invocation[5:])
        assert (await client.receive(Completion, invocation_id="1")).result == "delivered"
        assert client.handshake_reply == b"{}\x1e"
        # a record split over two ordinary payloads waits for its end, per client
        other = await connect(pool, events, "c2", "messagepack")
        record = other.protocol.write(Invocation(target="add", arguments=(1, 2), invocation_id="2"))
        await other.feed(record[:4])
        await client.feed(
            client.protocol.write(Invocation(target="add", arguments=(3,), invocation_id="3"))[:7]
        )
        await other.feed(record[4:])
        assert (await other.receive(Completion, invocation_id="2")).result == 3


@pytest.mark.parametrize(
    ("request_bytes", "error"),
    [
        (b'{"protocol":"xml","version":1}\x1e', "The protocol 'xml' is not supported."),
        (
            b'{"protocol":"json","version":9}\x1e',
            "The server does not support version 9 of the 'json' protocol.",
        ),
    ],
)
async def test_a_refused_handshake_says_why_and_closes(request_bytes: bytes, error: str) -> None:
    hub = chat_hub()
    async with running(hub) as (pool, events):
        client = FakeClient(pool, events, "c1", "json")
        await client.open()
        await client.feed(request_bytes)
        assert client.closed() == CloseConnection("c1", error)
        [reply] = pool.of_type(ConnectionData)
        assert json.loads(reply.payload.rstrip(b"\x1e")) == {"error": error}
    assert hub.seen == []  # type: ignore[attr-defined]  # never connected, so never disconnected


async def test_a_protocol_the_hub_does_not_offer_is_refused() -> None:
    hub = chat_hub(protocols=["json"])
    async with running(hub) as (pool, events):
        client = FakeClient(pool, events, "c1", "messagepack")
        await client.open()
        await client.feed(b'{"protocol":"messagepack","version":1}\x1e')
        assert client.closed() == CloseConnection(
            "c1", "The protocol 'messagepack' is not supported."
        )


async def test_send_without_invocation_id_gets_no_completion() -> None:
    hub = chat_hub()
    async with running(hub) as (pool, events):
        client = await connect(pool, events)
        await client.send(Invocation(target="send", arguments=("quiet",), invocation_id=None))
        await client.send(Invocation(target="add", arguments=(1, 1), invocation_id="2"))
        await client.receive(Completion, invocation_id="2")
        assert [m for m in client.received if isinstance(m, Completion)] == []
        assert "send:None:quiet" in hub.seen  # type: ignore[attr-defined]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_errors_reach_the_client_as_completions(
    protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    hub = chat_hub()
    async with running(hub) as (pool, events):
        client = await connect(pool, events, protocol=protocol)
        cases: dict[str, tuple[HubMessage, str]] = {
            "1": (Invocation(target="fail", arguments=(), invocation_id="1"), "nope"),
            "2": (
                Invocation(target="crash", arguments=(), invocation_id="2"),
                "An unexpected error occurred invoking 'crash' on the server.",
            ),
            "3": (
                Invocation(target="shout", arguments=(), invocation_id="3"),
                "Unknown hub method 'shout'",
            ),
            "4": (
                Invocation(target="send", arguments=("a", "b"), invocation_id="4"),
                "Invocation of 'send' provides 2 argument(s) but the method takes 1.",
            ),
            "5": (
                Invocation(target="add", arguments=(), invocation_id="5"),
                "Invocation of 'add' provides 0 argument(s) but the method takes 1 to 2.",
            ),
            "6": (
                Invocation(target="send", arguments=(5,), invocation_id="6"),
                "Argument 1 ('text') of 'send' must be str, not int.",
            ),
            "7": (
                Invocation(target="add", arguments=(True,), invocation_id="7"),
                "Argument 1 ('a') of 'add' must be int, not bool.",
            ),
            "8": (
                Invocation(target="add", arguments=(1, "x"), invocation_id="8"),
                "Argument 2 ('b') of 'add' must be float, not str.",
            ),
            "9": (
                StreamInvocation("9", "send", ("x",)),
                "The client attempted to invoke the non-streaming 'send' method with a streaming invocation.",
            ),
            "10": (
                Invocation(target="send", arguments=("x",), invocation_id="10", stream_ids=("s1",)),
                "Client-to-server streaming is not supported: 'send' was sent 1 stream(s).",
            ),
        }
        with caplog.at_level(logging.ERROR):
            for message, _ in cases.values():
                await client.send(message)
            for invocation_id, (_, error) in cases.items():
                done = await client.receive(Completion, invocation_id=invocation_id)
                assert (done.error, done.result) == (error, None)
        # The unexpected one is logged once, with its traceback; the client never sees it.
        [record] = [r for r in caplog.records if r.exc_info]
        assert "crash" in record.getMessage()
        assert record.exc_info[0] is KeyError  # type: ignore[index]
        assert not any(b"secret-detail" in m.payload for m in pool.of_type(ConnectionData))


async def test_a_result_the_protocol_cannot_hold_is_a_completion_error() -> None:
    hub = Hub("chat")

    @hub.on("odd")
    async def odd(call: HubCall) -> object:
        return object()

    async with running(hub) as (pool, events):
        client = await connect(pool, events)
        await client.send(Invocation(target="odd", arguments=(), invocation_id="1"))
        done = await client.receive(Completion, invocation_id="1")
        assert done.error == "The server's result could not be written in the client's protocol."


async def test_invocations_of_one_client_run_one_at_a_time() -> None:
    hub = Hub("chat")
    order: list[str] = []
    gate = anyio.Event()

    @hub.on("slow")
    async def slow(call: HubCall, name: str) -> str:
        order.append(f"start {name}")
        if name == "first":
            await gate.wait()
        order.append(f"end {name}")
        return name

    async with running(hub) as (pool, events):
        client = await connect(pool, events)
        other = await connect(pool, events, "c2")
        await client.send(Invocation(target="slow", arguments=("first",), invocation_id="1"))
        await client.send(Invocation(target="slow", arguments=("second",), invocation_id="2"))
        await other.send(Invocation(target="slow", arguments=("other",), invocation_id="1"))
        await other.receive(Completion, invocation_id="1")  # another client is not held up
        assert sorted(order) == ["end other", "start first", "start other"]  # first still held
        gate.set()
        await client.receive(Completion, invocation_id="2")
        assert order[3:] == ["end first", "start second", "end second"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_stream_gives_items_then_a_completion(protocol: str) -> None:
    hub = Hub("chat")

    @hub.on("count")
    async def count(call: HubCall, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    @hub.on("broken")
    async def broken(call: HubCall) -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("hidden")  # noqa: EM101

    async with running(hub) as (pool, events):
        client = await connect(pool, events, protocol=protocol)
        await client.send(StreamInvocation("s", "count", (3,)))
        items = [(await client.receive(StreamItem, invocation_id="s")).item for _ in range(3)]
        done = await client.receive(Completion, invocation_id="s")
        assert items == [0, 1, 2]
        assert (done.error, done.has_result) == (None, False)
        await client.send(StreamInvocation("b", "broken", ()))
        done = await client.receive(Completion, invocation_id="b")
        assert done.error == "An error occurred on the server while streaming results."
        await client.send(Invocation(target="count", arguments=(1,), invocation_id="i"))
        done = await client.receive(Completion, invocation_id="i")
        assert done.error == (
            "The client attempted to invoke the streaming 'count' method with a non-streaming invocation."
        )


async def test_cancel_invocation_stops_a_stream() -> None:
    hub = Hub("chat")
    finished = anyio.Event()

    @hub.on("ticks")
    async def ticks(call: HubCall) -> AsyncIterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
                await anyio.sleep(0.01)
        finally:
            finished.set()

    async with running(hub) as (pool, events):
        client = await connect(pool, events)
        await client.send(StreamInvocation("t", "ticks", ()))
        await client.receive(StreamItem, invocation_id="t", item=2)
        await client.send(CancelInvocation("t"))
        done = await client.receive(Completion, invocation_id="t")
        assert done.error is None
        with anyio.fail_after(2):
            await finished.wait()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_client_results(protocol: str) -> None:
    hub = Hub("chat")

    @hub.on("ask")
    async def ask(call: HubCall, question: str) -> Any:
        try:
            return await call.clients.caller.invoke("confirm", question, timeout=0.5)
        except TimeoutError as exc:
            return f"timeout: {exc}"
        except HubMethodError as exc:
            return f"client error: {exc}"

    async with running(hub) as (pool, events):
        client = await connect(pool, events, protocol=protocol)

        async def question(invocation_id: str, text: str) -> ClientInvocation:
            await client.send(
                Invocation(target="ask", arguments=(text,), invocation_id=invocation_id)
            )
            found = await pool.wait_for(
                lambda: [m for m in pool.of_type(ClientInvocation) if text in str(m.payloads)]
            )
            invocation: ClientInvocation = found[0]
            assert invocation.connection_id == "c1"
            assert invocation.caller_server_id == pool.server_id
            assert invocation.invocation_id.startswith(f"c1-{pool.server_id}-")
            [asked] = client.protocol.reader().feed(invocation.payloads[protocol])
            assert asked == Invocation(
                target="confirm", arguments=(text,), invocation_id=invocation.invocation_id
            )
            return invocation

        # the client answers in its connection data
        asked = await question("1", "sure?")
        await client.send(Completion(asked.invocation_id, result=True, has_result=True))
        assert (await client.receive(Completion, invocation_id="1")).result is True
        # the client's handler failed
        asked = await question("2", "fails?")
        await client.send(Completion(asked.invocation_id, error="no handler"))
        assert (
            await client.receive(Completion, invocation_id="2")
        ).result == "client error: no handler"
        # no answer in time
        await question("3", "silent?")
        done = await client.receive(Completion, invocation_id="3")
        assert done.result.startswith(
            "timeout: The client 'c1' did not answer 'confirm' within 0.5 s"
        )
        # answers routed through the service (another server held the client)
        asked = await question("4", "routed?")
        payload = client.protocol.write(
            Completion(asked.invocation_id, result="yes", has_result=True)
        )
        await events.client_message(
            ClientCompletion(asked.invocation_id, "c1", "other", protocol, payload)
        )
        assert (await client.receive(Completion, invocation_id="4")).result == "yes"
        asked = await question("5", "gone?")
        await events.client_message(ErrorCompletion(asked.invocation_id, "c1", "other", "gone"))
        assert (await client.receive(Completion, invocation_id="5")).result == "client error: gone"


async def test_a_completion_for_another_server_goes_back_through_the_service() -> None:
    hub = Hub("chat")
    async with running(hub) as (pool, events):
        client = await connect(pool, events)
        await events.client_message(ClientInvocation("inv-9", "c1", "server-b", {}))
        await client.send(Completion("inv-9", result=42, has_result=True))
        [back] = pool.of_type(ClientCompletion)
        assert (back.invocation_id, back.connection_id, back.caller_server_id, back.protocol) == (
            "inv-9",
            "c1",
            "server-b",
            "json",
        )
        [answer] = client.protocol.reader().feed(back.payload)
        assert answer == Completion("inv-9", result=42, has_result=True)


async def test_sends_to_every_audience() -> None:
    hub = Hub("chat", protocols=["json"])

    @hub.on("fanout")
    async def fanout(call: HubCall) -> None:
        c = call.clients
        await c.others.send("m", 1)
        await c.user("u1").send("m", 2)
        await c.users(["u1", "u2"]).send("m", 3)
        await c.group("g").send("m", 4)
        await c.groups(["g", "h"]).send("m", 5)
        await c.group_except("g", ["c9"]).send("m", 6)
        await c.connection("c9").send("m", 7)
        await c.connections(["c8", "c9"]).send("m", 8)
        await c.caller.send("m", 9)

    async with running(hub) as (pool, events):
        client = await connect(pool, events)
        await client.send(Invocation(target="fanout", arguments=(), invocation_id="1"))
        await client.receive(Invocation, target="m", arguments=(9,))
        await client.receive(Completion, invocation_id="1")
        sent = [(m, via) for m, via in pool.sent if not isinstance(m, ConnectionData)]
        json_ = client.protocol
        p = [
            {"json": json_.write(Invocation(target="m", arguments=(n,), invocation_id=None))}
            for n in range(10)
        ]
        assert sent == [
            (BroadcastData(("c1",), p[1]), "c1"),
            (UserData("u1", p[2]), "c1"),
            (MultiUserData(("u1", "u2"), p[3]), "c1"),
            (GroupBroadcastData("g", (), p[4]), "c1"),
            (MultiGroupBroadcastData(("g", "h"), p[5]), "c1"),
            (GroupBroadcastData("g", ("c9",), p[6]), "c1"),
            (MultiConnectionData(("c9",), p[7]), "c1"),
            (MultiConnectionData(("c8", "c9"), p[8]), "c1"),
            (MultiConnectionData(("c1",), p[9]), "c1"),
        ]


async def test_groups_are_acknowledged() -> None:
    hub = Hub("chat")

    @hub.on("join")
    async def join(call: HubCall, group: str) -> str:
        await call.groups.add(group)
        await call.groups.remove(group)
        return "ok"

    async with running(hub) as (pool, events):
        client = await connect(pool, events)
        await client.send(Invocation(target="join", arguments=("room",), invocation_id="1"))
        assert (await client.receive(Completion, invocation_id="1")).result == "ok"
        assert [
            (m, via) for m, via in pool.sent if isinstance(m, JoinGroupWithAck | LeaveGroupWithAck)
        ] == [
            (JoinGroupWithAck("c1", "room", 1), "c1"),
            (LeaveGroupWithAck("c1", "room", 2), "c1"),
        ]
        pool.ack_status = AckStatus.TIMEOUT
        with pytest.raises(
            ServiceError, match="could not add connection 'c1' to group 'room': it timed out"
        ):
            await hub.groups.add("c1", "room")


async def test_hub_clients_outside_a_call() -> None:
    hub = Hub("chat")
    with pytest.raises(NotReadyError, match="Hub 'chat' is not running"):
        await hub.clients.all.send("news", "x")
    async with running(hub) as (pool, events):
        await connect(pool, events)
        await hub.clients.all.send("news", "x")
        await hub.clients.connection("c1").send("news", "y")
        assert [via for m, via in pool.sent if not isinstance(m, ConnectionData)] == [None, "c1"]
    with pytest.raises(NotReadyError):  # stopped: not running any more
        await hub.clients.all.send("news", "x")


async def test_pings_reach_every_client_after_its_handshake_and_late_handshakes_are_closed() -> (
    None
):
    hub = chat_hub(keep_alive_interval=0.05, handshake_timeout=0.05)
    async with running(hub) as (pool, events):
        a = await connect(pool, events, "a", server_connection="sc-1")
        b = await connect(pool, events, "b", "messagepack", server_connection="sc-2")
        c = await connect(pool, events, "c", server_connection="sc-1")
        silent = FakeClient(pool, events, "silent", "json")
        await silent.open()
        await a.receive(HubPing)
        await b.receive(HubPing)
        pings = pool.of_type(MultiConnectionData)
        by_list = {
            m.connection_list: via for m, via in pool.sent if isinstance(m, MultiConnectionData)
        }
        assert by_list[("a", "c")] in ("a", "c")  # sent on the server connection carrying them
        assert by_list[("b",)] == "b"
        assert pings[0].payloads == {"json": b'{"type":6}\x1e', "messagepack": b"\x02\x91\x06"}
        assert await pool.wait_for(silent.closed) == CloseConnection(
            "silent", "No handshake request in time."
        )
        assert not [p for p in pool.of_type(MultiConnectionData) if "silent" in p.connection_list]
        del c


async def test_on_disconnected_on_close_connection_client_close_and_lost_server_connection() -> (
    None
):
    hub = chat_hub()
    async with running(hub) as (pool, events):
        await connect(pool, events, "a", server_connection="sc-1")
        b = await connect(pool, events, "b", server_connection="sc-1")
        await connect(pool, events, "c", server_connection="sc-2")
        await events.client_closed(CloseConnection("a", "client went away"))
        await b.send(HubClose())
        await events.server_connection_lost("sc-2", "service restarted")
        seen: list[str] = hub.seen  # type: ignore[attr-defined]
        await pool.wait_for(lambda: len([s for s in seen if s.startswith("disconnected")]) == 3)
        assert sorted(s for s in seen if s.startswith("disconnected")) == [
            "disconnected:a:client went away",
            "disconnected:b:None",
            "disconnected:c:The server connection carrying this client was lost: service restarted",
        ]
        assert b.closed() == CloseConnection("b")  # the app ends what the client ended
        assert events.clients == 0


async def test_on_connected_may_refuse_a_client_with_a_reason() -> None:
    hub = Hub("chat")
    disconnected: list[str] = []

    @hub.on_connected
    async def check(call: HubCall) -> None:
        if call.query.get("room") != ("ok",):
            raise HubMethodError("Pick a room.")  # noqa: EM101

    @hub.on_disconnected
    async def gone(call: HubCall) -> None:
        disconnected.append(call.connection_id)

    async with running(hub) as (pool, events):
        client = await connect(pool, events, query="room=no&access_token=T")
        close = await client.receive(HubClose)
        assert close.error == "Pick a room."
        assert client.closed() == CloseConnection("c1", "Pick a room.")
        await events.client_closed(CloseConnection("c1"))  # the service says it is gone
        # As ASP.NET Core: a refused client never connected, so no on_disconnected for it; one
        # that was let in gets its on_disconnected, which shows the handler is listened to.
        await connect(pool, events, "c2", query="room=ok")
        await events.client_closed(CloseConnection("c2"))
        await pool.wait_for(lambda: disconnected)
        assert disconnected == ["c2"]


async def test_call_holds_who_called() -> None:
    hub = Hub("chat")
    calls: list[HubCall] = []

    @hub.on("who")
    async def who(call: HubCall) -> None:
        calls.append(call)

    async with running(hub) as (pool, events):
        client = await connect(
            pool,
            events,
            claims=(
                ("asrs.s.uid", "ann"),
                ("asrs.s.aut", "Bearer"),
                ("role", "a"),
                ("role", "b"),
                ("asrs.u.aud", "x"),
            ),
            query="?room=1&access_token=secret",
            headers={"User-Agent": ("node",)},
        )
        await client.send(Invocation(target="who", arguments=(), invocation_id="1"))
        await client.receive(Completion, invocation_id="1")
    [call] = calls
    assert (call.connection_id, call.user_id, call.mode, call.invocation_id) == (
        "c1",
        "ann",
        "default",
        "1",
    )
    assert dict(call.claims) == {"role": ("a", "b"), "aud": ("x",)}
    assert dict(call.query) == {"room": ("1",)}
    assert dict(call.headers) == {"user-agent": ("node",)}
    assert call.claim("role") == "a"


async def test_a_malformed_message_closes_the_client_with_the_reason() -> None:
    hub = chat_hub()
    async with running(hub) as (pool, events):
        client = await connect(pool, events)
        await client.feed(b"not json\x1e")
        close = await pool.wait_for(client.closed)
        assert close.error_message.startswith("Connection closed with an error.")
        seen: list[str] = hub.seen  # type: ignore[attr-defined]
        await pool.wait_for(
            lambda: any(
                s.startswith("disconnected:c1:Connection closed with an error.") for s in seen
            )
        )


async def test_no_client_token_in_the_hub_layers_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2VjcmV0LXNpZ25hdHVyZS1vZi10aGUtdG9rZW4"
    hub = chat_hub()
    with caplog.at_level(logging.DEBUG):
        async with running(hub) as (pool, events):
            client = await connect(pool, events, query=f"hub=chat&access_token={secret}")
            await client.send(Invocation(target="crash", arguments=(), invocation_id="1"))
            await client.send(Invocation(target="send", arguments=(1, 2), invocation_id="2"))
            await client.send(Invocation(target=secret, arguments=()))
            await client.receive(Completion, invocation_id="2")
            await client.feed(b"\x00not json\x1e")
            await pool.wait_for(client.closed)
            refused = FakeClient(pool, events, "c2", "json")
            await refused.open(query=f"access_token={secret}")
            await refused.feed(b'{"protocol":"' + secret.encode() + b'","version":1}\x1e')
    assert caplog.records
    assert secret not in caplog.text
    assert secret.rsplit(".", 1)[1] not in caplog.text


async def test_on_disconnected_with_no_connection_up_is_logged_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub("chat")

    @hub.on_disconnected
    async def left(call: HubCall) -> None:
        await call.clients.all.send("presence", "left")

    async with running(hub) as (pool, events):
        await connect(pool, events)
        pool.up = 0
        pool.send = pool.refuse  # type: ignore[method-assign]
        with caplog.at_level(logging.INFO):
            await events.server_connection_lost("sc-1", "the app stops")
            await pool.wait_for(lambda: "could not send" in caplog.text)
    assert not [r for r in caplog.records if r.exc_info]


FORGED = "x\n2026-01-01 INFO signalr_asgi_auth.hubs: Hub 'chat' accepted\r\x1b[2J\u2028\u202e"


def _readable(text: str) -> bool:
    """A single line that cannot repaint a terminal: every character printable."""
    return text.isprintable()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_client_written_names_reach_logs_and_replies_escaped_and_short(
    protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A protocol name, a method name, an invocation id or a header key a client wrote is
    logged and echoed back cut short, its newlines and escapes written out: no forged log line."""
    hub = chat_hub()

    @hub.on("blob")
    async def blob(call: HubCall) -> object:
        return object()  # no protocol can write it: logged with the invocation id

    with caplog.at_level(logging.DEBUG, logger="signalr_asgi_auth"):
        async with running(hub) as (pool, events):
            refused = FakeClient(pool, events, "c1", "json")
            await refused.open()
            handshake = {"protocol": FORGED * 10, "version": 1}
            await refused.feed(json.dumps(handshake).encode() + b"\x1e")
            closed = await pool.wait_for(refused.closed)
            client = await connect(pool, events, "c2", protocol)
            await client.send(Invocation(target=FORGED * 10, arguments=()))
            await pool.wait_for(lambda: "Unknown hub method" in caplog.text)
            await client.send(Invocation(target=FORGED, arguments=(), invocation_id="1"))
            unknown = await client.receive(Completion, invocation_id="1")
            await client.send(Invocation(target="blob", arguments=(), invocation_id=FORGED))
            await client.receive(Completion, invocation_id=FORGED)
            if protocol == "json":
                header = {"type": 5, "invocationId": "2", "headers": {FORGED: 1}}
                await client.feed(json.dumps(header).encode() + b"\x1e")
                malformed = await pool.wait_for(client.closed)
                assert _readable(malformed.error_message)
                assert "'x\\n2026-01-01" in malformed.error_message
    messages = [record.getMessage() for record in caplog.records]
    assert [m for m in messages if "refused client c1" in m]
    assert [m for m in messages if "Unknown hub method" in m]
    # One line per message a client sends at will: below INFO, as ASP.NET Core logs it (Debug).
    unknown_levels = {r.levelno for r in caplog.records if "Unknown hub method" in r.getMessage()}
    assert unknown_levels == {logging.DEBUG}
    assert [m for m in messages if "a result for" in m]
    assert all(_readable(m) for m in messages), messages
    assert all(len(m) < 300 for m in messages), messages
    assert _readable(closed.error_message)
    assert closed.error_message.startswith("The protocol 'x\\n2026-01-01 INFO")
    assert len(closed.error_message) < 100
    assert unknown.error is not None
    assert _readable(unknown.error)
    assert unknown.error.startswith("Unknown hub method 'x\\n2026-01-01")


LIMIT = 64 * 1024
DEFAULT_LIMIT = 1024 * 1024


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_partial_parts_over_the_limit_close_that_client_alone(protocol: str) -> None:
    """The service may split a client's message into partial ConnectionData: the limit applies
    to what is held while the parts arrive, not once they are joined (the default limit, 1 MiB)."""
    hub = chat_hub()
    async with running(hub) as (pool, events):
        hostile = await connect(pool, events, "c1", protocol)
        honest = await connect(pool, events, "c2", protocol)
        part = b"x" * (DEFAULT_LIMIT // 4)
        for _ in range(4):
            await hostile.feed(part, partial=True)
            await honest.send(Invocation(target="add", arguments=(1,), invocation_id="1"))
            assert (await honest.receive(Completion, invocation_id="1")).result == 1.5
        assert hostile.closed() is None  # exactly the limit is held: still open
        await hostile.feed(b"x", partial=True)
        closed = await pool.wait_for(hostile.closed)
        assert closed.error_message == (
            "Connection closed with an error. The maximum message size of 1048576B was exceeded."
        )
        assert (await hostile.receive(HubClose)).error == closed.error_message
        await hostile.feed(part, partial=True)  # what follows for a closed client is dropped
        await honest.send(Invocation(target="add", arguments=(2,), invocation_id="2"))
        assert (await honest.receive(Completion, invocation_id="2")).result == 2.5
        assert honest.closed() is None
        seen: list[str] = hub.seen  # type: ignore[attr-defined]
        await pool.wait_for(lambda: f"disconnected:c1:{closed.error_message}" in seen)


async def test_partial_parts_of_a_handshake_over_its_limit_refuse_the_client() -> None:
    hub = chat_hub()
    async with running(hub) as (pool, events):
        client = FakeClient(pool, events, "c1", "json")
        await client.open()
        for _ in range(65):
            await client.feed(b" " * 1024, partial=True)
        closed = await pool.wait_for(client.closed)
        assert closed == CloseConnection("c1", "The handshake request is too large.")
        [reply] = pool.of_type(ConnectionData)
        assert json.loads(reply.payload.rstrip(b"\x1e")) == {"error": closed.error_message}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_message_over_max_receive_message_size_closes_that_client_alone(
    protocol: str,
) -> None:
    hub = chat_hub(max_receive_message_size=LIMIT)
    async with running(hub) as (pool, events):
        hostile = await connect(pool, events, "c1", protocol)
        honest = await connect(pool, events, "c2", protocol)
        fits = Invocation(target="send", arguments=("x" * (LIMIT - 100),), invocation_id="1")
        await hostile.send(fits)
        assert (await hostile.receive(Completion, invocation_id="1")).result == "delivered"
        await hostile.send(Invocation(target="send", arguments=("x" * LIMIT,), invocation_id="2"))
        closed = await pool.wait_for(hostile.closed)
        assert closed.error_message == (
            f"Connection closed with an error. The maximum message size of {LIMIT}B was exceeded."
        )
        assert (await hostile.receive(HubClose)).error == closed.error_message
        await honest.send(Invocation(target="add", arguments=(2,), invocation_id="3"))
        assert (await honest.receive(Completion, invocation_id="3")).result == 2.5


async def test_data_the_service_found_too_large_closes_that_client_alone() -> None:
    """A client's ConnectionData over the service frame limit is let go by unread
    (``ConnectionDataTooLarge``): the hub closes that client with ASP.NET Core's reason."""
    hub = chat_hub()
    async with running(hub) as (pool, events):
        hostile = await connect(pool, events, "c1")
        honest = await connect(pool, events, "c2")
        await events.client_message(ConnectionDataTooLarge("c1", 20 << 20))
        closed = await pool.wait_for(hostile.closed)
        assert closed.error_message == (
            "Connection closed with an error. The maximum message size of 1048576B was exceeded."
        )
        await honest.send(Invocation(target="add", arguments=(2,), invocation_id="1"))
        assert (await honest.receive(Completion, invocation_id="1")).result == 2.5
        waiting = FakeClient(pool, events, "c3", "json")
        await waiting.open()
        await events.client_message(ConnectionDataTooLarge("c3", 20 << 20))
        assert waiting.closed() == CloseConnection("c3", "The handshake request is too large.")
