"""``ServerConnectionPool``: one hub's server connections, kept open for the app's lifetime.

``server_connection_count`` fixed connections are opened at startup and reopened whenever they
end, one attempt at a time across the pool (:class:`Prober`) with jittered backoff; the service
may ask for more (the ``target`` ping), which are not reopened. Sends go on the connection that
carries the client, or on any connection up. ``stop()`` ends them gracefully.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from typing import Any, Final

import anyio
import httpx2
from anyio.abc import TaskGroup, TaskStatus

from .._backoff import Backoff
from .._clock import Clock
from .._endpoint import ServiceEndpoint
from .._errors import NotReadyError, ServiceError, SignalRAuthError
from .._keepers import error_health, isoformat
from .._repeated_warnings import RepeatedWarnings
from ..protocol import Ack, CloseConnection, ServiceMessage
from ._acks import AckTable
from ._connection import ConnectionTimings, NotWritable, ServerConnection
from ._prober import Prober
from ._seams import ClientMessage, ServiceEvents
from ._server_identity import ServerAuthorization, server_id

__all__ = ["HUB_STOP_TIMEOUT", "STOP_TIMEOUT", "ServerConnectionPool"]

logger = logging.getLogger("signalr_asgi_auth.server")

STOP_TIMEOUT: Final = 5.0
"""The whole graceful stop, every pool at once, takes at most this long."""
HUB_STOP_TIMEOUT: Final = 1.0
"""Of :data:`STOP_TIMEOUT`, what the hub layers get after the pools stopped: their clients' calls
end and their disconnect events run (``ServiceEvents.run`` is cancelled then)."""
_FINACK_SHARE: Final = 0.6
"""Of the stop's time, how much may go to waiting for the service's ``finack``."""
_MAX_RETRY_AFTER: Final = 60.0


class _NoEvents:
    """Until a hub is attached: clients are not served (nothing should connect to them)."""

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    async def client_opened(self, server_connection_id: str, message: Any) -> None:
        logger.warning("A client connected to a hub with no hub layer attached; it is ignored.")

    async def client_data(self, message: Any) -> None:
        return None

    async def client_closed(self, message: CloseConnection) -> None:
        return None

    async def client_message(self, message: ClientMessage) -> None:
        return None

    async def server_connection_lost(self, server_connection_id: str, reason: str) -> None:
        return None

    @property
    def clients(self) -> int:
        return 0


class ServerConnectionPool:
    """The server connections of one hub on one endpoint (see the module docstring).

    ``hub`` is the name the service knows: lower-cased, with the application prefix. Run it with
    ``await pool.run()`` in a task group; cancel that task to drop everything, or ``await
    pool.stop()`` first to close gracefully.
    """

    def __init__(
        self,
        *,
        endpoint: ServiceEndpoint,
        hub: str,
        authorization: ServerAuthorization,
        http: httpx2.AsyncClient,
        backoff: Backoff,
        clock: Clock,
        count: int = 5,
        timings: ConnectionTimings | None = None,
        max_on_demand: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._hub = hub
        self.authorization = authorization
        self.http = http
        self.count = count
        self.timings = timings or ConnectionTimings()
        self.max_on_demand = count if max_on_demand is None else max_on_demand
        self.events: ServiceEvents = _NoEvents()
        self.acks = AckTable()
        self.first_up = anyio.Event()
        self.reconnects = 0
        self.lost = 0
        self.last_error: SignalRAuthError | None = None
        self.last_error_at: float | None = None
        self.last_lost: str | None = None
        self.last_lost_at: float | None = None
        self._clock = clock
        self._prober = Prober(backoff, clock)
        self._slots: list[ServerConnection | None] = [None] * count
        self._on_demand: dict[str, ServerConnection] = {}
        self._routes: dict[str, ServerConnection] = {}
        self._tasks: TaskGroup | None = None
        self._stopping = False
        self._failing = False
        self._warnings = self._new_warnings()
        self._lost_warnings = RepeatedWarnings(logger, "Server connection lost")

    def __repr__(self) -> str:
        return f"ServerConnectionPool({self._hub!r}, up={self.up}/{self.count})"

    @property
    def hub(self) -> str:
        return self._hub

    @property
    def server_id(self) -> str:
        return server_id()

    @property
    def resource(self) -> str:
        return self.endpoint.endpoint

    def attach(self, events: ServiceEvents) -> None:
        """Where to tell of clients (the hub layer); before :meth:`run`."""
        self.events = events

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Open the fixed connections and keep them open, until cancelled."""
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            for slot in range(self.count):
                tasks.start_soon(
                    self._keep, slot, name=f"signalr_asgi_auth.ServerConnection[{slot}]"
                )

    async def _keep(self, slot: int) -> None:
        connected = await self._open(slot, again=False)
        while not self._stopping:
            if connected:
                connection = self._slots[slot]
                assert connection is not None
                # Down, not ended: after a service error or a stalled write it may read on a
                # while, but its slot is filled again at once.
                await connection.down.wait()
                if self._stopping:
                    return
            connected = await self._prober.attempt(
                lambda: self._open(slot, again=True), retry_after=self._retry_after
            )

    async def _open(self, slot: int, *, again: bool) -> bool:
        if self._stopping or self._tasks is None:
            return False
        connection = self._slots[slot] = ServerConnection(self, reopening=again)
        self._tasks.start_soon(connection.run, name="signalr_asgi_auth.ServerConnection.run")
        await connection.settled.wait()
        if connection.up.is_set():
            self._opened()
            return True
        self._failed(connection.error)
        return False

    def _opened(self) -> None:
        if self._failing:
            logger.info("Server connections to SignalR Service for hub %r are up again.", self.hub)
            self._failing = False
            self._warnings = self._new_warnings()
        self.first_up.set()

    def _failed(self, error: SignalRAuthError | None) -> None:
        if self._stopping:
            return
        error = error or ServiceError(f"A server connection for hub {self.hub!r} failed.")
        self.last_error, self.last_error_at = error, self._clock.now()
        self._failing = True
        self._warnings.warn(str(error))

    def _new_warnings(self) -> RepeatedWarnings:
        return RepeatedWarnings(logger, f"Server connection for hub {self._hub!r} failed")

    def _retry_after(self) -> float | None:
        error = self.last_error
        return error.retry_after if isinstance(error, ServiceError) else None

    def _connections(self) -> Iterator[ServerConnection]:
        for connection in self._slots:
            if connection is not None:
                yield connection
        yield from list(self._on_demand.values())

    @property
    def failed_ever(self) -> bool:
        """Whether a connection has failed or been lost since startup."""
        return self.last_error is not None or self.last_lost is not None

    @property
    def up(self) -> int:
        """How many connections have finished their handshake and are not closing."""
        return sum(1 for connection in self._connections() if connection.status == "up")

    # -- what connections tell the pool ------------------------------------------------------

    def client_opened(self, client: str, connection: ServerConnection) -> None:
        # A second OpenConnection for a client still here keeps the first (the hub layer does too).
        self._routes.setdefault(client, connection)

    def client_closed(self, client: str) -> None:
        self._routes.pop(client, None)

    def _forget(self, client: str) -> None:
        """The app closed ``client`` itself: the service sends no CloseConnection back then."""
        carrying = self._routes.pop(client, None)
        if carrying is not None:
            carrying.clients.pop(client, None)

    async def connection_lost(self, connection: ServerConnection, reason: str) -> None:
        """A connection that was up has ended: its clients and pending acks are gone."""
        for client in connection.clients:
            if self._routes.get(client) is connection:
                del self._routes[client]
        self.acks.connection_lost(connection.id, reason)
        if connection.target is not None and self._on_demand.get(connection.target) is connection:
            del self._on_demand[connection.target]
        if not self._stopping:
            self.lost += 1
            self.last_lost, self.last_lost_at = reason, self._clock.now()
            self._lost_warnings.warn(f"hub {self.hub!r}: {reason}; reconnecting")
        try:
            await self.events.server_connection_lost(connection.id, reason)
        except Exception:
            logger.exception("The hub layer failed on a lost server connection (hub %r)", self.hub)

    async def instance_offline(self, instance: str) -> None:
        """The service instance ``instance`` is going away: its clients are gone."""
        for connection in list(self._connections()):
            for client, where in list(connection.clients.items()):
                if where != instance:
                    continue
                del connection.clients[client]
                self.client_closed(client)
                closed = CloseConnection(
                    client, error_message=f"SignalR Service instance {instance} went offline."
                )
                try:
                    await self.events.client_closed(closed)
                except Exception:
                    logger.exception("The hub layer failed on a closed client (hub %r)", self.hub)

    def open_on_demand(self, target: str) -> None:
        """The service asks for a connection to one of its instances (the ``target`` ping)."""
        if (
            self._stopping
            or self._tasks is None
            or target in self._on_demand
            or len(self._on_demand) >= self.max_on_demand
        ):
            return
        connection = self._on_demand[target] = ServerConnection(self, target=target)
        self._tasks.start_soon(
            self._run_on_demand, connection, name="signalr_asgi_auth.ServerConnection.on_demand"
        )

    async def _run_on_demand(self, connection: ServerConnection) -> None:
        try:
            await connection.run()
        finally:
            if self._on_demand.get(connection.target or "") is connection:
                del self._on_demand[connection.target or ""]
        if not connection.up.is_set():
            logger.info(
                "The connection SignalR Service asked for (hub %r) failed: %s",
                self.hub,
                connection.error,
            )

    def service_error_message(self, connection: ServerConnection, text: str) -> None:
        error = ServiceError(
            f"SignalR Service reported an error on a server connection for hub {self.hub!r}: "
            f"{text[:300]}"
        )
        self.last_error, self.last_error_at = error, self._clock.now()
        self._failing = True  # until its replacement is up: not_ready() says why, health too
        logger.warning("%s (no more messages are sent on it; another one replaces it)", error)

    # -- sending -----------------------------------------------------------------------------

    async def send(self, message: ServiceMessage, *, client: str | None = None) -> None:
        try:
            await self._send(message, client)
        finally:
            if isinstance(message, CloseConnection):
                self._forget(message.connection_id)

    async def _send(self, message: ServiceMessage, client: str | None) -> None:
        tried: set[str] = set()
        while True:
            connection = self._pick(client, tried)
            try:
                await connection.write(message)
            except NotWritable:
                tried.add(connection.id)
                client = None  # its connection is gone, and the client with it
            else:
                return

    async def send_with_ack(
        self,
        build: Callable[[int], ServiceMessage],
        *,
        client: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - the design note's interface; .NET's 10 s ack TTL
    ) -> Ack:
        connection = self._pick(client, set())
        waiter = self.acks.register(connection.id)
        try:
            try:
                await connection.write(build(waiter.ack_id))
            except NotWritable:
                msg = f"The server connection for hub {self.hub!r} closed before the message was sent."
                raise ServiceError(msg) from None
            with anyio.move_on_after(timeout):
                await waiter.done.wait()
        finally:
            self.acks.forget(waiter)
        if waiter.ack is not None:
            return waiter.ack
        if waiter.lost is not None:
            msg = (
                f"The server connection for hub {self.hub!r} closed before SignalR Service "
                f"acknowledged the message: {waiter.lost}"
            )
        else:
            msg = f"SignalR Service did not acknowledge a message for hub {self.hub!r} within {timeout:g} s."
        raise ServiceError(msg)

    def _pick(self, client: str | None, tried: set[str]) -> ServerConnection:
        if client is not None:
            carrying = self._routes.get(client)
            if carrying is not None and carrying.writable and carrying.id not in tried:
                return carrying
        usable = [c for c in self._connections() if c.writable and c.id not in tried]
        if not usable:
            raise self.not_ready()
        return random.choice(usable)  # spreading load: no need for a secure choice

    def not_ready(self) -> NotReadyError:
        """Why nothing can be sent (or negotiated) for this hub now."""
        due = self._prober.next_attempt_at
        now = self._clock.now()
        retry_after = 1.0 if due is None else min(max(due - now, 1.0), _MAX_RETRY_AFTER)
        if self.last_error is not None and self._failing:
            why = f": {self.last_error}"
        elif self.last_lost is not None:
            why = f": the last one ended ({self.last_lost})."
        else:
            why = ": they are being opened."
        return NotReadyError(
            f"No server connection to SignalR Service is up for hub {self.hub!r}{why} "
            "Retrying in the background.",
            retry_after=retry_after,
            cause=self.last_error if self._failing else None,
        )

    # -- stopping ----------------------------------------------------------------------------

    async def stop(self, within: float = STOP_TIMEOUT) -> None:
        """Stop gracefully: each connection up says ``shutdown`` and waits for ``finack``, then
        closes; all ``within`` seconds, after which whatever is left is cancelled."""
        self._stopping = True
        with anyio.move_on_after(within):
            connections = list(self._connections())
            async with anyio.create_task_group() as tasks:
                for connection in connections:
                    tasks.start_soon(connection.stop, within * _FINACK_SHARE)
            for connection in connections:
                if connection.up.is_set():
                    await connection.ended.wait()
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()

    # -- health ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {
            "connections": self.count,
            "up": self.up,
            "on_demand": len(self._on_demand),
            "clients": len(self._routes),
            "reconnects": self.reconnects,
            "lost": self.lost,
            "consecutive_failures": self._prober.failures,
            "next_attempt_at": isoformat(self._prober.next_attempt_at),
            "last_error": error_health(self.last_error, self.last_error_at, current=self._failing),
            "last_lost": None
            if self.last_lost is None
            else {"reason": self.last_lost, "at": isoformat(self.last_lost_at)},
        }
