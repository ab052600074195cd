"""(j) Memory per connected idle client in the hub layer, with 10,000 clients opened by the service.

In one process, with ``tracemalloc``: the service's OpenConnection for each client is decoded from
its service-protocol bytes (as the pool hands it over), then the client's handshake arrives as its
ConnectionData; the hub layer answers it and keeps the client's session. What is still allocated
once every client is idle (after a garbage collection, the replies dropped) divided by the number
of clients is the cost of one client: its session, its protocol reader, its dictionary entry, and
what the service said of it (claims, headers and query, which ``call`` reads), kept as the
message's bytes. The baseline, measured in the same run, is the decoded OpenConnection messages
alone: what a server that kept them as objects would hold for that alone.

The headers are what a Node ``@microsoft/signalr`` client sends through the service; a browser
sends more (cookies, ``Accept-Language``...), and those stay with the client as long as it is
connected.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

import anyio

from signalr_asgi_auth.hubs import Hub
from signalr_asgi_auth.protocol import (
    Ack,
    ConnectionData,
    Ext,
    OpenConnection,
    ServiceMessage,
    decode_service_message,
    encode_service_message,
)

from ._common import Goal, Result, Settings

__all__ = ["NAME", "TITLE", "run"]

NAME = "hub_memory"
TITLE = "(j) memory per idle client in the hub layer"

_CLIENTS = 10_000
_HANDSHAKE = b'{"protocol":"json","version":1}\x1e'
_GOAL_BYTES = 2048


class _DiscardingPool:
    """The pool interface; what the hub layer sends is dropped (the replies are not the clients')."""

    hub = "chat"
    server_id = "bench_0123456789abcdef0123456789abcdef"
    up = 1
    resource = "http://bench.service.signalr.net"

    async def send(self, message: ServiceMessage, *, client: str | None = None) -> None:
        return None

    async def send_with_ack(
        self,
        build: Callable[[int], ServiceMessage],
        *,
        client: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - the pool interface
    ) -> Ack:
        return Ack(1, 1)


def _open_connection_bytes(number: int) -> bytes:
    user = f"user-{number:06d}"
    message = OpenConnection(
        connection_id=_connection_id(number),
        claims=(("asrs.s.uid", user), ("nameid", user)),
        headers={
            "Host": ("contoso.service.signalr.net",),
            "User-Agent": ("Microsoft SignalR/10.0 (10.0.11; Linux; NodeJS; 20.20.2)",),
            "X-Requested-With": ("XMLHttpRequest",),
            "X-Forwarded-For": (f"10.1.{number // 256 % 256}.{number % 256}",),
            "Asrs-Instance-Id": ("signalr-bench-0",),
        },
        query_string=f"hub=chat&id=Q{number:021d}",
        ext=Ext(protocol="json"),
    )
    return encode_service_message(message)


def _connection_id(number: int) -> str:
    return f"C{number:021d}"  # 22 characters, as the service's ids


def _decode(data: bytes) -> OpenConnection:
    message = decode_service_message(data)
    assert isinstance(message, OpenConnection)
    return message


def _traced(work: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes still allocated after ``work()`` (kept alive through its return value)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, kept
    finally:
        tracemalloc.stop()


async def _measure(count: int) -> dict[str, float]:
    wire = [_open_connection_bytes(number) for number in range(count)]
    messages_bytes, _ = _traced(lambda: [_decode(data) for data in wire])

    hub = Hub("chat")

    @hub.on("send")
    async def send(call: Any, text: str) -> str:
        return text

    events = hub.attach(_DiscardingPool())
    async with anyio.create_task_group() as task_group:
        await task_group.start(events.run)
        # one client first, so that what every client shares is not counted as the first one's
        await events.client_opened("sc-0", _decode(_open_connection_bytes(count + 1)))
        await events.client_data(ConnectionData(_connection_id(count + 1), _HANDSHAKE))

        async def open_all() -> None:
            for number, data in enumerate(wire):
                await events.client_opened(f"sc-{number % 5}", _decode(data))
                await events.client_data(ConnectionData(_connection_id(number), _HANDSHAKE))

        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            await open_all()
            gc.collect()
            hub_bytes = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        clients = events.clients
        task_group.cancel_scope.cancel()
    if clients != count + 1:
        msg = f"{clients} sessions for {count + 1} clients"
        raise RuntimeError(msg)
    return {
        "per_client": hub_bytes / count,
        "messages_per_client": messages_bytes / count,
    }


def run(settings: Settings) -> list[Result]:
    count = settings.count(_CLIENTS)
    measured = anyio.run(_measure, count)
    per_client = measured["per_client"]
    messages = measured["messages_per_client"]
    details: dict[str, Any] = {
        "clients": count,
        "bytes_per_client": round(per_client),
        "open_connection_bytes_per_client": round(messages),
        "method": "tracemalloc after gc, clients opened and handshaken through ServiceEvents",
    }
    return [
        Result(
            benchmark=NAME,
            measure="bytes per idle client (session, reader, what the service said of it)",
            value=per_client,
            goal=Goal("<=", _GOAL_BYTES, "≤ 2 KiB"),
            shown=f"{per_client:.0f} B (a decoded OpenConnection alone: {messages:.0f} B)",
            details=details,
        ),
        Result(
            benchmark=NAME,
            measure="bytes per idle client / its decoded OpenConnection alone",
            value=per_client / messages,
            goal=Goal("info", text="— (baseline: the message kept as objects)"),
            shown=f"{per_client / messages:.2f}x",
            details=details,
        ),
    ]
