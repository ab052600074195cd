"""An in-memory server-connection pool: the note's pool interface (``up``, ``server_id``,
``send``, ``send_with_ack``) recording what the hub layer sends, plus a client that speaks the
hub protocol through the hub layer's ``ServiceEvents``, as the service would hand it over. It is
our own seam between ``hubs/`` and ``server/``, not a stand-in for Azure."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

from signalr_asgi_auth import NotReadyError
from signalr_asgi_auth.hubs import Hub
from signalr_asgi_auth.hubs._sessions import HubConnections
from signalr_asgi_auth.protocol import (
    HUB_PROTOCOLS,
    Ack,
    AckStatus,
    CloseConnection,
    ConnectionData,
    Ext,
    HubMessage,
    MultiConnectionData,
    OpenConnection,
    ServiceMessage,
)

TIMEOUT = 5.0


class MemoryPool:
    """Records every message; acks with ``ack_status``."""

    server_id = "test-host_0123456789abcdef"
    hub = "chat"
    resource = "http://memory.service.signalr.net"

    def __init__(self) -> None:
        self.up = 1
        self.sent: list[tuple[ServiceMessage, str | None]] = []
        self.ack_status = AckStatus.OK
        self._ack_ids = itertools.count(1)

    async def send(self, message: ServiceMessage, *, client: str | None = None) -> None:
        self.sent.append((message, client))

    async def send_with_ack(
        self,
        build: Callable[[int], ServiceMessage],
        *,
        client: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - the pool interface
    ) -> Ack:
        message = build(next(self._ack_ids))
        self.sent.append((message, client))
        ack_id: int = message.ack_id  # type: ignore[union-attr]
        return Ack(ack_id, self.ack_status)

    async def refuse(self, message: ServiceMessage, *, client: str | None = None) -> None:
        """``send`` while no server connection is up."""
        msg = "No server connection to SignalR Service is up for hub 'chat'."
        raise NotReadyError(msg, retry_after=1.0)

    def of_type(self, kind: type[Any]) -> list[Any]:
        return [m for m, _ in self.sent if isinstance(m, kind)]

    async def wait_for(self, predicate: Callable[[], Any]) -> Any:
        with anyio.fail_after(TIMEOUT):
            while not (found := predicate()):  # noqa: ASYNC110 - polling what was sent
                await anyio.sleep(0.005)
        return found


class FakeClient:
    """One client connection as the service hands it to the app: its bytes go in as
    ConnectionData; what the app sends it (ConnectionData, and MultiConnectionData naming it) is
    read back with its protocol's reader."""

    def __init__(
        self, pool: MemoryPool, events: HubConnections, connection_id: str, protocol: str
    ) -> None:
        self.pool = pool
        self.events = events
        self.connection_id = connection_id
        self.protocol = HUB_PROTOCOLS[protocol]
        self._reader = self.protocol.reader()
        self._seen = 0
        self.handshake_reply: bytes | None = None
        self.received: list[HubMessage] = []

    async def open(
        self,
        *,
        claims: tuple[tuple[str, str], ...] = (),
        query: str = "",
        headers: dict[str, tuple[str, ...]] | None = None,
        server_connection: str = "sc-1",
    ) -> None:
        message = OpenConnection(
            self.connection_id, claims, headers or {}, query, Ext(protocol=self.protocol.name)
        )
        await self.events.client_opened(server_connection, message)

    async def handshake(self) -> dict[str, Any]:
        text = json.dumps({"protocol": self.protocol.name, "version": 1}) + "\x1e"
        await self.feed(text.encode())

        def reply_now() -> bytes | None:
            self._collect()
            return self.handshake_reply

        reply = await self.pool.wait_for(reply_now)
        return dict(json.loads(reply.rstrip(b"\x1e")))

    async def feed(self, data: bytes, *, partial: bool | None = None) -> None:
        await self.events.client_data(
            ConnectionData(self.connection_id, data, Ext(is_partial=partial))
        )

    async def send(self, message: HubMessage) -> None:
        await self.feed(self.protocol.write(message))

    def _collect(self) -> None:
        for message, _ in self.pool.sent[self._seen :]:
            if isinstance(message, ConnectionData) and message.connection_id == self.connection_id:
                if self.handshake_reply is None:
                    self.handshake_reply = message.payload
                else:
                    self.received += self._reader.feed(message.payload)
            elif (
                isinstance(message, MultiConnectionData)
                and self.connection_id in message.connection_list
            ):
                self.received += self.protocol.reader().feed(message.payloads[self.protocol.name])
        self._seen = len(self.pool.sent)

    async def receive(self, kind: type[Any], **fields: Any) -> Any:
        """The first message of ``kind`` (with these field values) not yet taken."""

        def find() -> Any:
            self._collect()
            for index, message in enumerate(self.received):
                if isinstance(message, kind) and all(
                    getattr(message, k) == v for k, v in fields.items()
                ):
                    return self.received.pop(index)
            return None

        return await self.pool.wait_for(find)

    def closed(self) -> CloseConnection | None:
        for message, _ in self.pool.sent:
            if isinstance(message, CloseConnection) and message.connection_id == self.connection_id:
                return message
        return None


@asynccontextmanager
async def running(
    hub: Hub, pool: MemoryPool | None = None
) -> AsyncIterator[tuple[MemoryPool, HubConnections]]:
    """The hub attached to a memory pool, its task group running."""
    pool = pool or MemoryPool()
    events = hub.attach(pool)
    async with anyio.create_task_group() as task_group:
        await task_group.start(events.run)
        yield pool, events
        task_group.cancel_scope.cancel()


async def connect(
    pool: MemoryPool,
    events: HubConnections,
    connection_id: str = "c1",
    protocol: str = "json",
    **open: Any,
) -> FakeClient:
    client = FakeClient(pool, events, connection_id, protocol)
    await client.open(**open)
    assert await client.handshake() == {}
    return client
