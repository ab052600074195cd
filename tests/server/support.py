"""A small echo hub and a pool on the fake service, for the server connections' tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from anyio.abc import TaskStatus

from signalr_asgi_auth._backoff import Backoff
from signalr_asgi_auth._client_tokens import SigningKey
from signalr_asgi_auth._clock import Clock, SystemClock
from signalr_asgi_auth._endpoint import ServiceEndpoint
from signalr_asgi_auth._secrets import Secret
from signalr_asgi_auth.protocol import CloseConnection, ConnectionData, OpenConnection
from signalr_asgi_auth.server import (
    ClientMessage,
    ConnectionTimings,
    ServerAuthorization,
    ServerConnectionPool,
    ServerConnections,
)

ACCESS_KEY = "fake-access-key-0123456789abcdefghijklmnopqrstu"
FAST_BACKOFF = Backoff(0.02, 0.1)


@dataclass
class EchoHub:
    """Echoes every client's bytes back to it, and remembers what the pool told it."""

    name: str = "chat"
    pool: ServerConnections | None = None
    opened: list[tuple[str, OpenConnection]] = field(default_factory=list)
    data: list[ConnectionData] = field(default_factory=list)
    closed: list[CloseConnection] = field(default_factory=list)
    other: list[ClientMessage] = field(default_factory=list)
    lost: list[tuple[str, str]] = field(default_factory=list)
    running: bool = False
    changed: anyio.Event = field(default_factory=anyio.Event)

    def attach(self, pool: ServerConnections) -> EchoHub:
        self.pool = pool
        return self

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self.running = True
        task_status.started()
        try:
            await anyio.sleep_forever()
        finally:
            self.running = False

    @property
    def clients(self) -> int:
        return len(self.opened) - len(self.closed)

    def _note(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def client_opened(self, server_connection_id: str, message: OpenConnection) -> None:
        self.opened.append((server_connection_id, message))
        self._note()

    async def client_data(self, message: ConnectionData) -> None:
        self.data.append(message)
        self._note()
        assert self.pool is not None
        await self.pool.send(
            ConnectionData(message.connection_id, b"echo:" + message.payload),
            client=message.connection_id,
        )

    async def client_closed(self, message: CloseConnection) -> None:
        self.closed.append(message)
        self._note()

    async def client_message(self, message: ClientMessage) -> None:
        self.other.append(message)
        self._note()

    async def server_connection_lost(self, server_connection_id: str, reason: str) -> None:
        self.lost.append((server_connection_id, reason))
        self._note()

    async def wait_until(self, condition: Any, within: float = 5.0) -> None:
        with anyio.fail_after(within):
            while not condition():
                await self.changed.wait()


def make_pool(
    url: str,
    http: httpx2.AsyncClient,
    *,
    hub: str = "chat",
    count: int = 2,
    timings: ConnectionTimings | None = None,
    clock: Clock | None = None,
    backoff: Backoff = FAST_BACKOFF,
) -> ServerConnectionPool:
    clock = clock or SystemClock()
    key = SigningKey(key_id="key-1", secret=Secret(ACCESS_KEY))
    return ServerConnectionPool(
        endpoint=ServiceEndpoint.create(url),
        hub=hub,
        authorization=ServerAuthorization(entra=None, key=key, clock=clock),
        http=http,
        backoff=backoff,
        clock=clock,
        count=count,
        timings=timings,
    )


@asynccontextmanager
async def running(
    pool: ServerConnectionPool, hub: EchoHub | None = None, *, wait_up: bool = True
) -> AsyncIterator[EchoHub]:
    """``pool`` running with ``hub`` attached, as SignalRAuth runs it; stopped gracefully after."""
    hub = hub or EchoHub()
    pool.attach(hub.attach(pool))
    async with anyio.create_task_group() as tasks:
        await tasks.start(hub.run)
        tasks.start_soon(pool.run)
        if wait_up:
            await wait_for(lambda: pool.up == pool.count)
        try:
            yield hub
        finally:
            with anyio.CancelScope(shield=True):
                await pool.stop()
            tasks.cancel_scope.cancel()


async def wait_for(condition: Any, within: float = 5.0) -> None:
    """Poll ``condition()`` (for state that has no event to wait on)."""
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - polling a snapshot on purpose
            await anyio.sleep(0.01)
