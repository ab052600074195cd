"""The seams between the server connections and the hub layer, as Protocols.

``server`` never imports ``hubs``: a hub object given to ``SignalRAuth(hubs=[...])`` is a
:class:`ServerHub`; attached to its pool, it returns the :class:`ServiceEvents` the pool calls, and it
sends through the :class:`ServerConnections` it was given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeAlias

import anyio
from anyio.abc import TaskStatus

from ..protocol import (
    Ack,
    ClientCompletion,
    ClientInvocation,
    CloseConnection,
    ConnectionData,
    ConnectionDataTooLarge,
    ConnectionReconnect,
    ErrorCompletion,
    OpenConnection,
    ServiceMapping,
    ServiceMessage,
)

__all__ = ["ClientMessage", "ServerConnections", "ServerHub", "ServiceEvents"]

ClientMessage: TypeAlias = (
    ClientCompletion
    | ErrorCompletion
    | ClientInvocation
    | ServiceMapping
    | ConnectionReconnect
    | ConnectionDataTooLarge
)
"""The messages about one client that are neither its opening, its data nor its closing (and the
reader's word that its data was too large to read)."""


class ServiceEvents(Protocol):
    """What the service tells the hub layer, called on a server connection's read loop in the
    order the service sent it.

    Each call must return promptly and never wait for a reply from the service: an ack arrives on
    the same read loop, so waiting for it there waits forever. Run user code in tasks of your own.
    An exception is logged and the connection carries on.
    """

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The hub layer's own task group (user handlers, streams, pings to clients): started
        with ``task_group.start`` after ``attach`` and before the pool opens its connections,
        cancelled after the pool stopped; it may then take up to ``HUB_STOP_TIMEOUT`` to end its
        clients (their disconnect events)."""

    async def client_opened(self, server_connection_id: str, message: OpenConnection) -> None:
        """A client connected, carried by the server connection ``server_connection_id``."""

    async def client_data(self, message: ConnectionData) -> None:
        """Bytes from a client, in its hub protocol (a record may span several of these)."""

    async def client_closed(self, message: CloseConnection) -> None:
        """A client is gone: the service closed it, or its service instance went offline."""

    async def client_message(self, message: ClientMessage) -> None:
        """Client results, service mappings, stateful reconnects, and data over the frame limit
        (close that client)."""

    async def server_connection_lost(self, server_connection_id: str, reason: str) -> None:
        """The server connection ended: every client it carried is gone (the service closes them)."""

    @property
    def clients(self) -> int:
        """How many client connections the hub layer holds on this pool now (a removed
        endpoint's drain ends when none is left)."""


class ServerConnections(Protocol):
    """What the hub layer calls: one hub's server connections (a ``ServerConnectionPool``)."""

    @property
    def hub(self) -> str:
        """The hub as the service knows it: lower-cased, with the application prefix."""

    @property
    def server_id(self) -> str:
        """This process's ``X-ASRS-Server-Id`` (a ``ClientInvocation``'s ``caller_server_id``)."""

    @property
    def up(self) -> int:
        """How many connections have finished their handshake and are not closing."""

    @property
    def resource(self) -> str:
        """The SignalR resource's endpoint URL (with several endpoints, names it in errors)."""

    async def send(self, message: ServiceMessage, *, client: str | None = None) -> None:
        """Write ``message`` on the connection that carries ``client`` (so one client's messages
        keep their order), else on any connection up; ``NotReadyError`` when none is up."""

    async def send_with_ack(
        self,
        build: Callable[[int], ServiceMessage],
        *,
        client: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for the ack, as .NET's AckHandler
    ) -> Ack:
        """Write ``build(ack_id)`` with a fresh ack id and wait for the service's ``Ack``.

        ``ServiceError`` when none arrives within ``timeout`` or the connection closes first.
        Never call it from a :class:`ServiceEvents` method (see there).
        """


class ServerHub(Protocol):
    """What ``SignalRAuth(hubs=[...])`` needs of a hub object (``Hub`` is one)."""

    @property
    def name(self) -> str:
        """The hub's name as the app writes it (checked like every hub name)."""

    def attach(self, pool: ServerConnections) -> ServiceEvents:
        """Called once per pool at startup; returns what the pool tells of clients."""
