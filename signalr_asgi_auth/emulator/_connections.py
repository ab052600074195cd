"""The client connections the emulated service holds: who is connected to which hub, their user id
and groups, and the outbox through which the service writes to each socket.

Tests and REST handlers write to a connection from any thread or event loop; the socket's own task
(in the server's loop) drains the outbox (``_outbox.py``). Everything shared is behind a
``threading.Lock``. As Azure does, a client for which more than :data:`CLIENT_OUTBOX_LIMIT` waits
unread is closed (``SLOW_CLIENT``), alone.
"""

from __future__ import annotations

import codecs
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ._hub_frames import RECORD_SEPARATOR, encode_hub_message, encode_json_message
from ._outbox import Outbox

if TYPE_CHECKING:
    from ._servers import ServerConnection

__all__ = [
    "CLIENT_OUTBOX_LIMIT",
    "RECORD_SEPARATOR",
    "SLOW_CLIENT",
    "ClientConnection",
    "ConnectionRegistry",
    "NegotiatedConnection",
    "NegotiatedConnections",
    "Outbox",
    "encode_message",
]

encode_message = encode_json_message

CLIENT_OUTBOX_LIMIT: Final = 1024 * 1024
"""What may wait for one client before it is closed: Azure SignalR Service "cleans up connections
when cached waiting to write buffer size is greater than 1 MB" (MicrosoftDocs/azure-docs#121827)."""
SLOW_CLIENT: Final = (
    "Connection closed by the service: more than 1 MB of messages waited for this client to read "
    "them."
)


@dataclass(eq=False)
class ClientConnection:
    """One client connected to a hub of the emulated service.

    ``hub`` is the hub as the client token's audience names it (``?hub=…``, with the application
    prefix if any), lower-cased. ``user_id`` comes from the token's ``asrs.s.uid`` claim, else
    ``nameid``. ``groups`` is kept by :class:`ConnectionRegistry`; change it through the registry.
    ``protocol`` is the hub protocol the client chose (``json``, or in Default mode also
    ``messagepack``); ``server`` is the server connection that carries it (Default mode only).
    """

    connection_id: str
    hub: str
    user_id: str | None
    claims: dict[str, Any] = field(default_factory=dict, repr=False)
    groups: set[str] = field(default_factory=set)
    connected_at: float = 0.0
    protocol: str = "json"
    server: ServerConnection | None = field(default=None, repr=False)
    _outbox: Outbox[str | bytes] = field(init=False, repr=False)
    _text: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"),
        init=False,
        repr=False,
    )
    closed_by_server: bool = field(default=False, init=False, repr=False)
    """Whether the app server asked for the close (then the service does not tell it again)."""

    def __post_init__(self) -> None:
        self.hub = self.hub.lower()
        close = {"type": 7, "error": SLOW_CLIENT, "allowReconnect": True}
        self._outbox = Outbox(
            limit=CLIENT_OUTBOX_LIMIT, overflow=encode_hub_message(self.protocol, close)
        )

    async def send(self, message: Mapping[str, Any]) -> None:
        """Queue one hub-protocol message (a JSON object) for the socket, in the client's protocol.

        Safe from any thread or event loop. A connection that is closing or gone drops it.
        """
        self._outbox.put(encode_hub_message(self.protocol, message))

    def send_payload(self, payload: bytes) -> None:
        """Queue bytes an app server wrote in the client's protocol (Default mode): text frames for
        JSON clients (a character split between two payloads is kept for the next), binary for
        MessagePack ones."""
        if self.protocol == "messagepack":
            self._outbox.put(payload)
        elif text := self._text.decode(payload):
            self._outbox.put(text)

    async def close(self, reason: str | None = None, *, allow_reconnect: bool = False) -> None:
        """Close from the service side: a close message (``error`` the reason) after whatever is
        queued, then a normal WebSocket close (1000)."""
        message: dict[str, Any] = {"type": 7}
        if reason is not None:
            message["error"] = reason
        message["allowReconnect"] = allow_reconnect
        self._outbox.put(encode_hub_message(self.protocol, message), last=True)

    def close_socket(self) -> None:
        """Close the WebSocket after whatever is queued, with no close message of the service's."""
        self._outbox.put(None, last=True)

    @property
    def closing(self) -> bool:
        """Whether :meth:`close` was called, or the socket is gone."""
        return self._outbox.closing

    @property
    def overflowed(self) -> bool:
        """Whether it was closed for not reading (:data:`SLOW_CLIENT`)."""
        return self._outbox.overflowed

    async def wait_overflowed(self) -> None:
        """Return once it is closed for not reading."""
        await self._outbox.wait_overflowed()

    @property
    def pending(self) -> list[str | bytes]:
        """Frames queued and not yet written to the socket (for tests without a socket)."""
        return self._outbox.pending()

    def outgoing(self) -> AsyncIterator[list[str | bytes]]:
        """The frames to write, as they come; ends after the close message. For the socket task."""
        return self._outbox.drain()

    def disconnected(self) -> None:
        """The socket is gone: drop what is queued and refuse further messages."""
        self._outbox.finish()


class ConnectionRegistry:
    """The connections of every hub, and group membership of connections and users.

    Hubs are compared lower-cased; group names and user ids exactly. A user added to a group
    brings every current and future connection of theirs (in that hub) into it.
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._lock = threading.Lock()
        self._now = clock or (lambda: 0.0)
        self._connections: dict[str, ClientConnection] = {}
        # (hub, group) -> user id -> when the membership ends (None: never)
        self._user_groups: dict[tuple[str, str], dict[str, float | None]] = {}

    # -- connections --------------------------------------------------------------------------

    def add(self, connection: ClientConnection) -> None:
        with self._lock:
            self._expire()
            if connection.connection_id in self._connections:
                msg = f"A connection with id {connection.connection_id!r} exists already."
                raise ValueError(msg)
            if connection.user_id is not None:
                for (hub, group), users in self._user_groups.items():
                    if hub == connection.hub and connection.user_id in users:
                        connection.groups.add(group)
            self._connections[connection.connection_id] = connection

    def remove(self, connection_id: str) -> None:
        """Forget a connection; forgetting one that is gone already is fine."""
        with self._lock:
            self._connections.pop(connection_id, None)

    def get(self, connection_id: str) -> ClientConnection | None:
        with self._lock:
            return self._connections.get(connection_id)

    def all(self) -> list[ClientConnection]:
        """Every connection, oldest first."""
        with self._lock:
            return list(self._connections.values())

    def in_hub(self, hub: str) -> list[ClientConnection]:
        hub = hub.lower()
        with self._lock:
            return [c for c in self._connections.values() if c.hub == hub]

    def of_user(self, hub: str, user_id: str) -> list[ClientConnection]:
        hub = hub.lower()
        with self._lock:
            return [c for c in self._connections.values() if c.hub == hub and c.user_id == user_id]

    def in_group(self, hub: str, group: str) -> list[ClientConnection]:
        hub = hub.lower()
        with self._lock:
            self._expire()
            return [c for c in self._connections.values() if c.hub == hub and group in c.groups]

    # -- groups -------------------------------------------------------------------------------

    def add_to_group(self, hub: str, group: str, connection_id: str) -> bool:
        """Put a connection in a group; False if the hub has no such connection."""
        with self._lock:
            connection = self._find(hub, connection_id)
            if connection is None:
                return False
            connection.groups.add(group)
            return True

    def remove_from_group(self, hub: str, group: str, connection_id: str) -> bool:
        """Take a connection out of a group; False if the hub has no such connection."""
        with self._lock:
            connection = self._find(hub, connection_id)
            if connection is None:
                return False
            connection.groups.discard(group)
            return True

    def remove_from_all_groups(self, hub: str, connection_id: str) -> bool:
        """Take a connection out of every group; False if the hub has no such connection."""
        with self._lock:
            connection = self._find(hub, connection_id)
            if connection is None:
                return False
            connection.groups.clear()
            return True

    def add_user_to_group(
        self, hub: str, group: str, user_id: str, *, ttl: float | None = None
    ) -> None:
        """Put the user's current connections in the group, and their future ones as they come,
        for ``ttl`` seconds (None: until removed); then the user and their connections leave it."""
        hub = hub.lower()
        with self._lock:
            self._expire()
            ends = None if ttl is None else self._now() + ttl
            self._user_groups.setdefault((hub, group), {})[user_id] = ends
            for connection in self._connections.values():
                if connection.hub == hub and connection.user_id == user_id:
                    connection.groups.add(group)

    def remove_user_from_group(self, hub: str, group: str, user_id: str) -> None:
        """Take the user and all their connections out of the group."""
        hub = hub.lower()
        with self._lock:
            users = self._user_groups.get((hub, group))
            if users is not None:
                users.pop(user_id, None)
                if not users:
                    del self._user_groups[(hub, group)]
            for connection in self._connections.values():
                if connection.hub == hub and connection.user_id == user_id:
                    connection.groups.discard(group)

    def remove_user_from_all_groups(self, hub: str, user_id: str) -> None:
        """Take the user out of every group of the hub: their connections, and the memberships
        that would bring their future connections in."""
        hub = hub.lower()
        with self._lock:
            for (group_hub, group), users in list(self._user_groups.items()):
                if group_hub == hub:
                    users.pop(user_id, None)
                    if not users:
                        del self._user_groups[(group_hub, group)]
            for connection in self._connections.values():
                if connection.hub == hub and connection.user_id == user_id:
                    connection.groups.clear()

    def user_in_group(self, hub: str, group: str, user_id: str) -> bool:
        """Whether the user was added to the group, or has a connection in it."""
        hub = hub.lower()
        with self._lock:
            self._expire()
            if user_id in self._user_groups.get((hub, group), ()):
                return True
            return any(
                c.hub == hub and c.user_id == user_id and group in c.groups
                for c in self._connections.values()
            )

    # -- messages -----------------------------------------------------------------------------

    async def deliver(
        self,
        connections: Iterable[ClientConnection],
        target: str,
        arguments: list[Any],
        excluded: Collection[str] = (),
    ) -> int:
        """Invoke ``target`` with ``arguments`` on each connection whose id is not ``excluded``;
        the number of connections it was queued for."""
        message = {"type": 1, "target": target, "arguments": arguments}
        reached = _open_ones(connections, excluded)
        for connection in reached:
            await connection.send(message)
        return len(reached)

    def _expire(self) -> None:
        """Drop user memberships whose time is up, taking the users' connections out too."""
        now = self._now()
        for (hub, group), users in list(self._user_groups.items()):
            for user_id, ends in list(users.items()):
                if ends is not None and ends <= now:
                    del users[user_id]
                    for connection in self._connections.values():
                        if connection.hub == hub and connection.user_id == user_id:
                            connection.groups.discard(group)
            if not users:
                del self._user_groups[(hub, group)]

    async def close(
        self,
        connections: Iterable[ClientConnection],
        reason: str | None = None,
        excluded: Collection[str] = (),
    ) -> int:
        """Close each connection whose id is not ``excluded`` (see :meth:`ClientConnection.close`);
        the number of connections asked to close."""
        closing = _open_ones(connections, excluded)
        for connection in closing:
            await connection.close(reason)
        return len(closing)

    def _find(self, hub: str, connection_id: str) -> ClientConnection | None:
        connection = self._connections.get(connection_id)
        if connection is None or connection.hub != hub.lower():
            return None
        return connection

    def __len__(self) -> int:
        with self._lock:
            return len(self._connections)

    def __repr__(self) -> str:
        return f"ConnectionRegistry({len(self)} connections)"


def _open_ones(
    connections: Iterable[ClientConnection], excluded: Collection[str]
) -> list[ClientConnection]:
    """The connections not ``excluded`` and not closing already."""
    return [c for c in connections if c.connection_id not in excluded and not c.closing]


@dataclass(frozen=True, slots=True, repr=False)
class NegotiatedConnection:
    """What ``/client/negotiate`` learnt from the token, kept until the WebSocket arrives."""

    connection_id: str
    connection_token: str
    hub: str
    user_id: str | None
    claims: dict[str, Any]
    negotiated_at: float

    def __repr__(self) -> str:
        return (
            f"NegotiatedConnection(connection_id={self.connection_id!r}, "
            f"connection_token='**********', hub={self.hub!r}, user_id={self.user_id!r})"
        )


class NegotiatedConnections:
    """Connection tokens handed out by negotiate, each usable once and only for ``ttl`` seconds
    (Azure SignalR refuses a connect that comes more than 5 s after its negotiate)."""

    def __init__(self, *, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._pending: dict[str, NegotiatedConnection] = {}

    def create(
        self, *, hub: str, user_id: str | None, claims: dict[str, Any], now: float
    ) -> NegotiatedConnection:
        # URL-safe: the JS client puts the token into ?id= without encoding it.
        negotiated = NegotiatedConnection(
            connection_id=secrets.token_urlsafe(16),
            connection_token=secrets.token_urlsafe(16),
            hub=hub.lower(),
            user_id=user_id,
            claims=claims,
            negotiated_at=now,
        )
        with self._lock:
            self._forget_expired(now)
            self._pending[negotiated.connection_token] = negotiated
        return negotiated

    def take(self, connection_token: str, *, now: float) -> NegotiatedConnection | None:
        """The negotiated connection for this token, removed; None if unknown, used or expired."""
        with self._lock:
            self._forget_expired(now)
            return self._pending.pop(connection_token, None)

    def _forget_expired(self, now: float) -> None:
        for token, negotiated in list(self._pending.items()):
            if now - negotiated.negotiated_at > self.ttl:
                del self._pending[token]

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)
