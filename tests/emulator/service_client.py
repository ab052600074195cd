"""A small app-server side of the service protocol for tests of the emulator's Default mode: the
WebSocket to ``/server/?hub=…&cid=…``, messages as MessagePack arrays behind the size prefix, written
here from Azure/azure-signalr's ``BinaryMessageFormatter.cs`` and ``ServiceProtocol.cs`` (not with
the emulator's own reader, so that one bug cannot hide itself)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import msgpack
from httpx2.websockets import AsyncWebSocketSession, WebSocketDisconnect

from .helpers import TIMEOUT

PING = 3


def encode(fields: list[Any]) -> bytes:
    packed: bytes = msgpack.packb(fields, use_bin_type=True)
    size, prefix = len(packed), bytearray()
    while size >= 0x80:
        prefix.append((size & 0x7F) | 0x80)
        size >>= 7
    prefix.append(size)
    return bytes(prefix) + packed


def _map(pairs: list[tuple[Any, Any]]) -> Any:
    """A map as a dict, or as its list of pairs when a key repeats (claims may)."""
    keys = [key for key, _ in pairs]
    return dict(pairs) if len(set(keys)) == len(keys) else pairs


def decode_all(data: bytes) -> tuple[list[list[Any]], bytes]:
    """The whole messages in ``data`` and the bytes left over."""
    messages: list[list[Any]] = []
    while data:
        size = shift = used = 0
        for used, byte in enumerate(data[:5], start=1):  # noqa: B007 - used after the loop
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        else:
            return messages, data
        if len(data) < used + size:
            return messages, data
        message = msgpack.unpackb(
            data[used : used + size], raw=False, strict_map_key=False, object_pairs_hook=_map
        )
        messages.append(message)
        data = data[used + size :]
    return messages, data


class ServerSocket:
    """One server connection, as an app server holds it."""

    def __init__(self, session: AsyncWebSocketSession) -> None:
        self.session = session
        self._buffer = b""
        self._messages: deque[list[Any]] = deque()

    async def handshake(self, version: int = 1, kind: int = 0, target: str = "") -> list[Any]:
        await self.send([1, version, kind, target, 0, {}])
        return await self.receive(skip_pings=False)

    async def send(self, *messages: list[Any]) -> None:
        """Write ``messages`` in one WebSocket message, as the .NET transport does."""
        await self.session.send_bytes(b"".join(encode(message) for message in messages))

    async def receive(self, *, skip_pings: bool = True) -> list[Any]:
        with anyio.fail_after(TIMEOUT):
            while True:
                while not self._messages:
                    data = await self.session.receive_bytes()
                    messages, self._buffer = decode_all(self._buffer + data)
                    self._messages.extend(messages)
                message = self._messages.popleft()
                if not (skip_pings and message == [PING]):
                    return message

    async def closed(self) -> int:
        """Read until the service closes the socket; its close code."""
        with anyio.fail_after(TIMEOUT):
            try:
                while True:
                    await self.receive()
            except WebSocketDisconnect as disconnect:
                return disconnect.code

    async def receive_type(self, kind: int) -> list[Any]:
        """The next message of type ``kind``; keep-alive pings skipped, anything else fails."""
        message = await self.receive()
        assert message[0] == kind, f"expected a message of type {kind}, got {message!r}"
        return message


@asynccontextmanager
async def server_socket(
    client: httpx2.AsyncClient,
    url: str,
    token: str | None,
    *,
    hub: str = "chat",
    cid: str = "cid-1",
    server_id: str | None = "server-1",
    **websocket: Any,
) -> AsyncIterator[ServerSocket]:
    """An app server's connection; ``websocket``: more options of httpx2's ``websocket()``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if server_id is not None:
        headers["X-ASRS-Server-Id"] = server_id
    async with client.websocket(
        f"{url}/server/",
        params={"hub": hub, "cid": cid},
        headers=headers,
        keepalive_ping_interval_seconds=None,
        **websocket,
    ) as session:
        yield ServerSocket(session)
