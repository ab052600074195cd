"""A small reference client for the emulator's client endpoint: the service negotiate, the WebSocket
with ``id=`` and the token in the header or the query, and the JSON hub protocol, byte for byte as
clients-e2e.md §1 describes ``@microsoft/signalr``. Runs on asyncio and trio (httpx2 + wsproto)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
from httpx2.websockets import AsyncWebSocketSession

from .helpers import TIMEOUT
from .service_client import decode_all, encode

RS = "\x1e"


class HubSocket:
    """One WebSocket speaking the JSON hub protocol."""

    def __init__(self, session: AsyncWebSocketSession) -> None:
        self.session = session
        self._records: list[dict[str, Any]] = []

    async def handshake(self, protocol: str = "json", version: int = 1) -> dict[str, Any]:
        # The spacing pysignalr uses; the service must parse, not compare bytes.
        await self.session.send_text(json.dumps({"protocol": protocol, "version": version}) + RS)
        return await self.receive(skip_pings=False)

    async def send(self, message: dict[str, Any]) -> None:
        await self.session.send_text(json.dumps(message) + RS)

    async def receive(self, *, skip_pings: bool = True) -> dict[str, Any]:
        """The next message, pings skipped unless asked for."""
        with anyio.fail_after(TIMEOUT):
            while True:
                while not self._records:
                    frame = await self.session.receive_text()
                    assert frame.endswith(RS), (
                        f"a frame must end with the record separator: {frame!r}"
                    )
                    self._records += [json.loads(r) for r in frame.split(RS)[:-1]]
                message = self._records.pop(0)
                if not (skip_pings and message.get("type") == 6):
                    return message


class MessagePackHubSocket:
    """One WebSocket speaking the MessagePack hub protocol (its handshake is JSON still)."""

    def __init__(self, session: AsyncWebSocketSession) -> None:
        self.session = session
        self._buffer = b""
        self._messages: list[list[Any]] = []

    async def handshake(self) -> dict[str, Any]:
        await self.session.send_text(json.dumps({"protocol": "messagepack", "version": 1}) + RS)
        with anyio.fail_after(TIMEOUT):
            while RS.encode() not in self._buffer:
                self._buffer += await self.session.receive_bytes()
        answer, _, self._buffer = self._buffer.partition(RS.encode())
        reply: dict[str, Any] = json.loads(answer)
        return reply

    async def send(self, message: list[Any]) -> None:
        await self.session.send_bytes(encode(message))

    async def receive(self, *, skip_pings: bool = True) -> list[Any]:
        """The next message (an array), pings skipped unless asked for."""
        with anyio.fail_after(TIMEOUT):
            while True:
                while not self._messages:
                    messages, self._buffer = decode_all(
                        self._buffer + await self.session.receive_bytes()
                    )
                    self._messages += messages
                message = self._messages.pop(0)
                if not (skip_pings and message == [6]):
                    return message


async def negotiate(
    client: httpx2.AsyncClient, url: str, token: str | None, hub: str = "chat", **query: str
) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.post(
        f"{url}/client/negotiate",
        params={"hub": hub, "negotiateVersion": "1", **query},
        headers=headers,
    )


@asynccontextmanager
async def hub_socket(
    client: httpx2.AsyncClient,
    url: str,
    token: str | None,
    *,
    hub: str = "chat",
    connection_token: str | None = None,
    token_in_query: bool = False,
    path: str = "/client/",
    **websocket: Any,
) -> AsyncIterator[HubSocket]:
    """A WebSocket to the client endpoint, Node style (token in the header) or browser style
    (``access_token`` in the query). ``websocket``: more options of httpx2's ``websocket()``
    (``queue_size=1``: a client that reads nothing more than the test asks for)."""
    params = {"hub": hub}
    if connection_token is not None:
        params["id"] = connection_token
    headers: dict[str, str] = {}
    if token and token_in_query:
        params["access_token"] = token
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    async with client.websocket(
        f"{url}{path}",
        params=params,
        headers=headers,
        keepalive_ping_interval_seconds=None,
        **websocket,
    ) as session:
        yield HubSocket(session)
