"""The app servers' connections to the emulated service (Default mode): which are open for which hub,
which clients each carries, and the client invocations waiting for their completions.

Like the client registry, it is read and changed from the server's event loop and from tests'
threads, so everything shared is behind a ``threading.Lock``; each connection's socket task drains
its :class:`Outbox`. A client's bytes wait for room in it (:data:`SERVER_OUTBOX_ROOM`), so that a
server that reads slowly slows the clients that send to it; what the service itself writes there
does not wait, and a server that lets :data:`SERVER_OUTBOX_LIMIT` pile up is closed.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ._outbox import Outbox

__all__ = [
    "CONNECTION_TYPES",
    "SERVER_OUTBOX_LIMIT",
    "SERVER_OUTBOX_ROOM",
    "SERVICE_MODES",
    "PendingInvocation",
    "ServerConnection",
    "ServerConnections",
    "ServiceModeSetting",
]

CONNECTION_TYPES = {0: "default", 1: "on-demand", 2: "weak"}
"""The HandshakeRequest's connection types; a weak connection carries no clients."""

_STICKY = frozenset({"Preferred", "Required"})

SERVICE_MODES = ("default", "serverless")

SERVER_OUTBOX_ROOM: Final = 1024 * 1024
"""Clients' bytes for a server wait while this much waits for it."""
SERVER_OUTBOX_LIMIT: Final = 64 * 1024 * 1024
"""A server connection for which this much waits unread is closed."""
_UNREAD: Final = "The app server did not read: more than 64 MiB waited for this connection."
_POLICY_VIOLATION: Final = 1008


class ServiceModeSetting:
    """The resource's service mode; it may change while the emulator runs, as ``az signalr update
    --service-mode`` changes Azure's (connections already open stay)."""

    def __init__(self, mode: str) -> None:
        self.value = mode

    @property
    def value(self) -> str:
        return self._value

    @value.setter
    def value(self, mode: str) -> None:
        if mode not in SERVICE_MODES:
            msg = f"service_mode must be 'default' or 'serverless', got {mode!r}."
            raise ValueError(msg)
        self._value = mode


@dataclass(eq=False)
class ServerConnection:
    """One WebSocket an app server opened at ``/server/?hub=…&cid=…``.

    ``connection_id`` is the ``cid`` the server chose; ``server_id`` its ``X-ASRS-Server-Id`` (all
    connections of one app server process share it), else the ``cid``. ``kind`` is the handshake's
    connection type (``default``, ``on-demand``, ``weak``). ``accepting`` turns false when the
    server announces its shutdown: no new client is routed to it then.
    """

    connection_id: str
    server_id: str
    hub: str
    kind: str = "default"
    target: str | None = None
    principal_oid: str | None = None
    connected_at: float = 0.0
    accepting: bool = True
    clients: set[str] = field(default_factory=set, repr=False)
    close_code: int = field(default=1000, repr=False)
    close_reason: str = field(default="", repr=False)
    _outbox: Outbox[bytes] = field(
        default_factory=lambda: Outbox(limit=SERVER_OUTBOX_LIMIT, room=SERVER_OUTBOX_ROOM),
        init=False,
        repr=False,
    )

    def send(self, frame: bytes) -> bool:
        """Queue service-protocol bytes for the server; False when the connection is closing."""
        return self._sent(self._outbox.put(frame))

    async def send_when_room(self, frame: bytes, *, within: float) -> bool:
        """Queue a client's bytes once there is room; False when the connection is closing or
        no room came within ``within`` seconds."""
        return self._sent(await self._outbox.put_when_room(frame, within=within))

    def _sent(self, sent: bool) -> bool:
        if not sent and self._outbox.overflowed and not self.close_reason:
            self.close_code, self.close_reason = _POLICY_VIOLATION, _UNREAD
        return sent

    async def wait_overflowed(self) -> None:
        """Return once the connection is closed for not reading."""
        await self._outbox.wait_overflowed()

    def close(self, *, code: int = 1000, reason: str = "") -> None:
        """Close the socket after whatever is queued (from any thread)."""
        if not self._outbox.closing:
            self.close_code, self.close_reason = code, reason
        self._outbox.put(None, last=True)

    @property
    def closing(self) -> bool:
        return self._outbox.closing

    @property
    def queued(self) -> int:
        """The bytes waiting to be written to the server."""
        return self._outbox.size

    def outgoing(self) -> AsyncIterator[list[bytes]]:
        return self._outbox.drain()

    def disconnected(self) -> None:
        self._outbox.finish()


@dataclass(frozen=True, slots=True)
class PendingInvocation:
    """A client invocation (ClientInvocation, type 34) waiting for the client's completion."""

    invocation_id: str
    hub: str
    connection_id: str
    caller_server_id: str


class ServerConnections:
    """The server connections of every hub, and the client invocations under way."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: dict[tuple[str, str], ServerConnection] = {}  # (hub, cid)
        self._turn = itertools.count()
        self._invocations: dict[str, PendingInvocation] = {}

    def add(self, server: ServerConnection) -> bool:
        """Register ``server``; False when its hub has an open connection with that ``cid``."""
        with self._lock:
            key = (server.hub, server.connection_id)
            if key in self._connections:
                return False
            self._connections[key] = server
            return True

    def remove(self, server: ServerConnection) -> None:
        with self._lock:
            if self._connections.get((server.hub, server.connection_id)) is server:
                del self._connections[(server.hub, server.connection_id)]

    def all(self) -> list[ServerConnection]:
        with self._lock:
            return list(self._connections.values())

    def of_hub(self, hub: str) -> list[ServerConnection]:
        hub = hub.lower()
        with self._lock:
            return [s for s in self._connections.values() if s.hub == hub]

    def of_server(self, hub: str, server_id: str) -> ServerConnection | None:
        """An open connection of the app server ``server_id`` to ``hub`` (for routing replies)."""
        return next(
            (s for s in self.of_hub(hub) if s.server_id == server_id and not s.closing), None
        )

    def pick(self, hub: str, claims: Mapping[str, Any]) -> ServerConnection | None:
        """The connection a new client of ``hub`` is routed to: the next in turn of those that
        accept clients, among the named server's when the token asks for server stickiness
        (``asrs.s.sn`` with ``asrs.s.ssticky`` Preferred or Required)."""
        candidates = [
            s for s in self.of_hub(hub) if s.accepting and not s.closing and s.kind != "weak"
        ]
        sticky, named = claims.get("asrs.s.ssticky"), claims.get("asrs.s.sn")
        if sticky in _STICKY and isinstance(named, str):
            matching = [s for s in candidates if s.server_id == named]
            if matching or sticky == "Required":
                candidates = matching
        if not candidates:
            return None
        return candidates[next(self._turn) % len(candidates)]

    # -- client invocations ---------------------------------------------------------------------

    def invocation_started(self, invocation: PendingInvocation) -> None:
        with self._lock:
            self._invocations[invocation.invocation_id] = invocation

    def invocation_ended(self, invocation_id: str) -> PendingInvocation | None:
        with self._lock:
            return self._invocations.pop(invocation_id, None)

    def pending_invocations(self) -> int:
        with self._lock:
            return len(self._invocations)

    def invocations_of(self, connection_id: str) -> list[PendingInvocation]:
        """The invocations waiting on this client, forgotten (it is gone)."""
        with self._lock:
            ended = [i for i in self._invocations.values() if i.connection_id == connection_id]
            for invocation in ended:
                del self._invocations[invocation.invocation_id]
            return ended

    def __len__(self) -> int:
        with self._lock:
            return len(self._connections)

    def __repr__(self) -> str:
        return f"ServerConnections({len(self)} connections)"
