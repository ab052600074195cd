"""A small fake of SignalR Service's ``/server/`` endpoint for the pool's tests.

A WebSocket server written on wsproto and anyio, so that it runs in the test's own event loop on
asyncio and trio, and every byte it sends is the test's choice: several service messages in one
WebSocket message, one message split over several, a connection dropped in the middle of one.
It speaks the service protocol through ``signalr_asgi_auth.protocol`` (the codec has tests of its
own against .NET's golden vectors).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.events import (
    Ping as WsPing,
)
from wsproto.events import (
    Pong as WsPong,
)

from signalr_asgi_auth.protocol import (
    HandshakeRequest,
    HandshakeResponse,
    Ping,
    ServiceMessage,
    ServiceMessageReader,
    frame_service_message,
)

Behaviour = Literal["accept", "refuse", "handshake_error", "silent", "close"]


@dataclass
class Attempt:
    """One upgrade request as the fake saw it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeServerConnection:
    """The service's side of one server connection."""

    attempt: Attempt
    stream: anyio.abc.ByteStream
    ws: WSConnection
    received: list[ServiceMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    """The bytes of each WebSocket message received."""
    closed: anyio.Event = field(default_factory=anyio.Event)
    changed: anyio.Event = field(default_factory=anyio.Event)
    # The test's task and the reader (answering pings, handshakes, closes) both write; a second
    # writer while one is in ``send`` raises ``BusyResourceError`` on trio, so writes take turns.
    write_lock: anyio.Lock = field(default_factory=anyio.Lock)
    deaf: bool = False
    """Set: the service stops reading this connection (what the app writes piles up)."""

    @property
    def connection_id(self) -> str:
        return self.attempt.query["cid"]

    async def send(self, *messages: ServiceMessage) -> None:
        """All of ``messages`` in one WebSocket message."""
        await self.send_raw(b"".join(frame_service_message(m) for m in messages))

    async def send_raw(self, data: bytes) -> None:
        await self.write(BytesMessage(data=data))

    async def write(self, event: BytesMessage | CloseConnection | WsPong) -> None:
        """Encode and send one WebSocket event, one writer at a time."""
        async with self.write_lock:
            await self.stream.send(self.ws.send(event))

    async def send_split(self, message: ServiceMessage, parts: int) -> None:
        """One service message over ``parts`` WebSocket messages."""
        data = frame_service_message(message)
        size = -(-len(data) // parts)
        for start in range(0, len(data), size):
            await self.send_raw(data[start : start + size])

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.write(CloseConnection(code=code, reason=reason))
        await self.stream.aclose()

    async def drop(self, partial: bytes = b"") -> None:
        """Write ``partial`` raw bytes (e.g. half a frame), then cut the TCP connection."""
        async with self.write_lock:
            if partial:
                await self.stream.send(partial)
            await self.stream.aclose()

    async def wait_for(
        self, condition: Callable[[list[ServiceMessage]], bool], within: float = 5.0
    ) -> None:
        with anyio.fail_after(within):
            while not condition(self.received):
                self.changed = anyio.Event()
                await self.changed.wait()


class FakeService:
    """The ``/server/`` endpoint. ``behaviour`` decides what the next upgrade gets."""

    def __init__(self) -> None:
        self.behaviour: Behaviour = "accept"
        self.refuse_status = 401
        self.refuse_message = "Unauthorized"
        self.refuse_headers: list[tuple[bytes, bytes]] = []
        self.handshake_error = "Hub is not allowed"
        self.answer_finack = True
        self.attempts: list[Attempt] = []
        self.connections: list[FakeServerConnection] = []
        self.open_now = 0
        self.most_open_attempts = 0
        self._upgrading = 0
        self.changed = anyio.Event()
        self.url = ""

    async def serve(self, *, task_status: anyio.abc.TaskStatus[str]) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        self.url = f"http://127.0.0.1:{port}"
        async with listener:
            task_status.started(self.url)
            await listener.serve(self._handle)

    def live(self) -> list[FakeServerConnection]:
        return [c for c in self.connections if not c.closed.is_set()]

    async def wait_until(self, condition: Callable[[], bool], within: float = 5.0) -> None:
        with anyio.fail_after(within):
            while not condition():
                self.changed = anyio.Event()
                await self.changed.wait()

    def _notify(self) -> None:
        self.changed.set()

    async def _handle(self, stream: anyio.abc.ByteStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        connection: FakeServerConnection | None = None
        try:
            connection = await self._upgrade(stream, ws)
            if connection is not None:
                await self._converse(connection)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
            pass
        finally:
            if connection is not None:
                connection.closed.set()
                connection.changed.set()
                self.open_now -= 1
            self._notify()
            await stream.aclose()

    async def _upgrade(
        self, stream: anyio.abc.ByteStream, ws: WSConnection
    ) -> FakeServerConnection | None:
        self._upgrading += 1
        self.most_open_attempts = max(self.most_open_attempts, self._upgrading)
        try:
            while True:
                ws.receive_data(await stream.receive())
                for event in ws.events():
                    if isinstance(event, Request):
                        return await self._answer(stream, ws, event)
        finally:
            self._upgrading -= 1

    async def _answer(
        self, stream: anyio.abc.ByteStream, ws: WSConnection, request: Request
    ) -> FakeServerConnection | None:
        parts = urlsplit(request.target)
        attempt = Attempt(
            path=parts.path,
            query={k: v[0] for k, v in parse_qs(parts.query).items()},
            headers={k.decode().lower(): v.decode() for k, v in request.extra_headers},
        )
        self.attempts.append(attempt)
        self._notify()
        if self.behaviour == "refuse":
            body = json.dumps({"message": self.refuse_message}).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *self.refuse_headers,
            ]
            await stream.send(
                ws.send(
                    RejectConnection(status_code=self.refuse_status, headers=headers, has_body=True)
                )
            )
            await stream.send(ws.send(RejectData(data=body)))
            return None
        await stream.send(ws.send(AcceptConnection()))
        connection = FakeServerConnection(attempt, stream, ws)
        self.connections.append(connection)
        self.open_now += 1
        if self.behaviour == "close":
            await connection.close(1011, "going away")
            return None
        return connection

    async def _converse(self, connection: FakeServerConnection) -> None:
        reader = ServiceMessageReader()
        behaviour = self.behaviour
        while True:
            if connection.deaf:
                await anyio.sleep_forever()
            data = await connection.stream.receive()
            connection.ws.receive_data(data)
            for event in connection.ws.events():
                if isinstance(event, WsPing):
                    await connection.write(event.response())
                elif isinstance(event, CloseConnection):
                    await connection.write(event.response())
                    return
                elif isinstance(event, BytesMessage | TextMessage):
                    payload = event.data.encode() if isinstance(event.data, str) else event.data
                    connection.raw.append(bytes(payload))
                    for message in reader.feed(payload):
                        connection.received.append(message)
                        await self._react(connection, message, behaviour)
                    connection.changed.set()
                    self._notify()

    async def _react(
        self, connection: FakeServerConnection, message: ServiceMessage, behaviour: Behaviour
    ) -> None:
        if isinstance(message, HandshakeRequest):
            if behaviour == "accept":
                await connection.send(HandshakeResponse())
            elif behaviour == "handshake_error":
                await connection.send(HandshakeResponse(error_message=self.handshake_error))
        elif (
            isinstance(message, Ping)
            and message.messages[:2] == ("shutdown", "fin:0")
            and self.answer_finack
        ):
            await connection.send(Ping(("shutdown", "finack")))
