"""One server connection: the WebSocket, the handshake, pings, the read loop, a graceful stop.

Behaviour follows .NET's ``ServiceConnectionBase`` (Azure/azure-signalr snapshot 31686ed7): the
handshake response must be the first message and come within 15 s; a ping goes out whenever
nothing was sent for 5 s; 30 s without a message from the service ends the connection; after a
``ServiceErrorMessage`` the connection is down at once (.NET sets its status to Disconnected):
nothing more is written, the pool opens another in its place, and reading goes on, for at most the
receive timeout, so that what the service still sends on it arrives.

Where .NET has nothing to say, a write the service does not take within 10 s (``write_timeout``:
its TCP window stayed full that long) ends the connection too: a service that stops reading would
otherwise stall every send for ever while the connection counts as up. The send that timed out
raises :class:`NotWritable`, and the pool tries it on another connection.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

import anyio
import anyio.abc
import httpx2

from .. import _telemetry as telemetry
from .._errors import ProtocolError, ServiceError, SignalRAuthError
from .._rbac import DataAction
from .._service_errors import service_error, transport_error
from ..protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Ack,
    ClientCompletion,
    ClientInvocation,
    CloseConnection,
    ConnectionData,
    ConnectionDataTooLarge,
    ConnectionReconnect,
    ErrorCompletion,
    HandshakeRequest,
    HandshakeResponse,
    OpenConnection,
    Ping,
    ServiceErrorMessage,
    ServiceEvent,
    ServiceMapping,
    ServiceMessage,
    ServiceMessageReader,
    frame_service_message,
)
from ._server_identity import server_id, user_agent
from ._websocket import UpgradeRefused, WebSocket, WebSocketClosed, open_websocket

if TYPE_CHECKING:
    from ._pool import ServerConnectionPool

__all__ = ["ConnectionTimings", "NotWritable", "ServerConnection"]

logger = logging.getLogger("signalr_asgi_auth.server")

_INSTANCE_HEADER = "asrs-instance-id"
_ON_DEMAND = 1  # HandshakeRequest.connection_type for a connection the service asked for
_LOST_NOTICE_TIMEOUT = 1.0

Status = Literal["connecting", "up", "closing", "closed"]


@dataclass(frozen=True, slots=True)
class ConnectionTimings:
    """The protocol's timings (.NET's defaults); tests shorten them."""

    handshake_timeout: float = 15.0
    receive_timeout: float = 30.0
    keepalive_interval: float = 5.0
    write_timeout: float = 10.0
    """Not .NET's: see the module docstring."""
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE


class NotWritable(Exception):
    """This connection takes no more messages (closing, closed, or told so by the service)."""


class ServerConnection:
    """One WebSocket to ``/server/?hub=...`` and everything that runs on it.

    :meth:`run` never raises (except cancellation): before the handshake succeeds, ``error`` says
    why it failed; afterwards ``reason`` says why it ended. ``up``, ``down`` and ``ended`` are
    events.
    """

    def __init__(
        self, pool: ServerConnectionPool, *, target: str | None = None, reopening: bool = False
    ) -> None:
        self.pool = pool
        self._reopening = reopening
        self.id = str(uuid.uuid4())
        self.target = target
        self.status: Status = "connecting"
        self.writable = False
        self.error: SignalRAuthError | None = None
        self.reason = ""
        self.up = anyio.Event()
        self.ended = anyio.Event()
        self.down = anyio.Event()
        """Set when it takes no more messages for good: it ended, the service reported an error
        on it, or a write stalled (its slot may be filled again then)."""
        self.settled = anyio.Event()
        """Set when the connection is up or has failed, whichever comes first."""
        self.clients: dict[str, str | None] = {}
        """The clients it carries, with the service instance each is on."""
        self._socket: WebSocket | None = None
        self._scope: anyio.CancelScope | None = None
        self._tasks: anyio.abc.TaskGroup | None = None
        self._finack = anyio.Event()
        self._bearer: str | None = None
        self._on_unauthorized: Callable[[], None] | None = None
        self._last_sent = self._last_received = anyio.current_time()

    def __repr__(self) -> str:
        kind = f", target={self.target!r}" if self.target else ""
        return f"ServerConnection({self.pool.hub!r}, id={self.id!r}, {self.status}{kind})"

    # -- lifetime ----------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._connect_and_serve()
        except UpgradeRefused as exc:
            self.error = self._refused(exc)
        except httpx2.HTTPError as exc:
            self.error = transport_error(exc, endpoint=self.pool.endpoint, doing=self._doing)
        except WebSocketClosed as exc:
            self._fail(f"{exc} before the handshake completed")
        except ProtocolError as exc:
            self._fail(f"sent a message that cannot be read ({exc})")
        except SignalRAuthError as exc:  # the Entra token could not be had; the keeper says more
            self.error = exc
        except Exception as exc:  # a bug, or a broken session: log it, reconnect
            if self.up.is_set():
                logger.exception("Server connection %s to hub %r failed", self.id, self.pool.hub)
                self.reason = f"unexpected error ({type(exc).__name__})"
            else:
                logger.debug("Opening a server connection failed", exc_info=True)
                self._fail(f"failed unexpectedly ({type(exc).__name__})")
        finally:
            was_up = self.up.is_set()
            self.status, self.writable, self._socket = "closed", False, None
            if not was_up and self.error is None:
                self._fail("ended before the handshake completed")
            if was_up and not self.reason:
                self.reason = "closed"
            if was_up:
                telemetry.server_connection_down(self.pool.endpoint.endpoint, self.pool.hub)
            self.down.set()
            self.ended.set()
            self.settled.set()
            if was_up:
                with anyio.CancelScope(shield=True), anyio.move_on_after(_LOST_NOTICE_TIMEOUT):
                    await self.pool.connection_lost(self, self.reason)

    @property
    def _doing(self) -> str:
        return f"open a server connection for hub {self.pool.hub!r}"

    @property
    def _span_attributes(self) -> dict[str, str]:
        return {telemetry.ENDPOINT: self.pool.endpoint.endpoint, telemetry.HUB: self.pool.hub}

    def _fail(self, what: str) -> None:
        self.error = ServiceError(
            f"SignalR Service at {self.pool.endpoint.server_endpoint} {what} while trying to "
            f"{self._doing}."
        )

    def _refused(self, refused: UpgradeRefused) -> ServiceError:
        if refused.response.status_code == 401 and self._on_unauthorized is not None:
            self._on_unauthorized()  # an Entra token the service refuses: the next attempt asks anew
        return service_error(
            refused.response,
            endpoint=self.pool.endpoint,
            doing=self._doing,
            action=DataAction.SERVER_CONNECTION_WRITE,
            token=self._bearer,
            access_key=self.pool.authorization.access_key,
        )

    async def _connect_and_serve(self) -> None:
        pool, timings = self.pool, self.pool.timings
        url = pool.endpoint.server_connection_url(pool.hub, self.id)
        if self.target is not None:
            url += "&target=" + _query_value(self.target)
        opening = "reconnect" if self._reopening else "connect"
        async with AsyncExitStack() as stack:
            # The span covers the bearer and the upgrade; the handshake has its own.
            with telemetry.span(f"signalr.server_connection.{opening}", self._span_attributes):
                self._bearer, self._on_unauthorized = await pool.authorization.bearer(
                    pool.endpoint.server_audience(pool.hub)
                )
                headers = {
                    "Authorization": f"Bearer {self._bearer}",
                    "X-ASRS-Server-Id": server_id(),
                    "Asrs-User-Agent": user_agent(),
                    "X-Requested-With": "XMLHttpRequest",
                }
                socket = await stack.enter_async_context(
                    open_websocket(
                        pool.http,
                        url,
                        headers=headers,
                        upgrade_timeout=timings.handshake_timeout,
                    )
                )
            self._socket = socket
            # Everything inside is caught here: the session's task group would wrap it in a group.
            try:
                await self._serve(socket)
            except (WebSocketClosed, ProtocolError, ServiceError) as exc:
                caught: Exception = exc
            else:
                return
        raise caught

    async def _serve(self, socket: WebSocket) -> None:
        timings = self.pool.timings
        reader = ServiceMessageReader(max_message_size=timings.max_message_size)
        handshake = HandshakeRequest(
            connection_type=_ON_DEMAND if self.target else 0, target=self.target or ""
        )
        with telemetry.span("signalr.server_connection.handshake", self._span_attributes):
            waiting: list[ServiceMessage] | None = None
            with anyio.move_on_after(timings.handshake_timeout):
                await socket.send(frame_service_message(handshake))
                self._last_sent = anyio.current_time()
                waiting = await self._handshake(socket, reader)
            if waiting is None:
                self._fail(f"sent no handshake response within {timings.handshake_timeout:g} s")
                assert self.error is not None
                raise self.error
        telemetry.server_connection_up(self.pool.endpoint.endpoint, self.pool.hub)
        self.status, self.writable = "up", True
        self.pool.reconnects += self._reopening  # counted with `up`, so health never lags
        self.up.set()
        self.settled.set()
        async with anyio.create_task_group() as tasks:
            self._scope, self._tasks = tasks.cancel_scope, tasks
            tasks.start_soon(self._keep_alive)
            tasks.start_soon(self._watch_receive)
            # Caught inside the task group, which would otherwise wrap it in an exception group.
            try:
                for message in waiting:
                    await self._dispatch(message)
                await self._read(socket, reader)
            except WebSocketClosed as exc:
                self.reason = self.reason or str(exc)
            except ProtocolError as exc:
                self.reason = (
                    self.reason or f"SignalR Service sent a message that cannot be read ({exc})"
                )
            tasks.cancel_scope.cancel()

    async def _handshake(
        self, socket: WebSocket, reader: ServiceMessageReader
    ) -> list[ServiceMessage] | None:
        """The messages after the handshake response; raises if the response is an error."""
        while True:
            messages = reader.feed(await socket.receive())
            if not messages:
                continue
            first, rest = messages[0], messages[1:]
            if not isinstance(first, HandshakeResponse):
                self._fail(f"sent {type(first).__name__} before its handshake response")
            elif first.error_message:
                self._fail(f"refused the handshake ({first.error_message[:300]})")
            else:
                return rest
            assert self.error is not None
            raise self.error

    async def stop(self, finack_timeout: float) -> None:
        """The graceful stop: ``["shutdown", "fin:0"]``, the service's ``finack`` (at most
        ``finack_timeout``), then the WebSocket's close."""
        scope = self._scope
        if self.status == "up" and self._socket is not None:
            self.status = "closing"
            with telemetry.span("signalr.server_connection.stop", self._span_attributes) as span:
                with anyio.move_on_after(finack_timeout):
                    try:
                        await self._write(Ping(("shutdown", "fin:0")))
                    except NotWritable:
                        pass
                    else:
                        await self._finack.wait()
                span.set_attribute("signalr.finack", self._finack.is_set())
            self.writable = False
            self.reason = "the app is shutting down"
        if scope is not None:
            scope.cancel()

    def close(self, reason: str) -> None:
        """End the connection now (no graceful stop)."""
        if self._scope is not None and not self._scope.cancel_called:
            self.reason = self.reason or reason
            self._scope.cancel()

    # -- writing -----------------------------------------------------------------------------

    async def write(self, message: ServiceMessage) -> None:
        """Write one message; :class:`NotWritable` if this connection takes no more."""
        if not self.writable:
            raise NotWritable(self.id)
        await self._write(message)

    async def _write(self, message: ServiceMessage) -> None:
        socket = self._socket
        if socket is None:
            raise NotWritable(self.id)
        timeout = self.pool.timings.write_timeout
        with anyio.move_on_after(timeout) as waited:
            try:
                await socket.send(frame_service_message(message))
            except WebSocketClosed as exc:
                self._take_down()
                self.close(str(exc))
                raise NotWritable(self.id) from None
        if waited.cancelled_caught:
            # Part of a frame may have gone out: the WebSocket cannot carry another one.
            self._take_down()
            self.close(f"SignalR Service took no message for {timeout:g} s")
            raise NotWritable(self.id)
        self._last_sent = anyio.current_time()

    def _take_down(self) -> None:
        """No more messages go out on it; the pool may fill its slot again."""
        self.writable = False
        if self.status == "up":
            self.status = "closing"
        self.down.set()

    def _service_error(self, text: str) -> None:
        """As .NET: down at once, nothing more written; read on for the receive timeout."""
        if not text:
            return  # .NET acts only on a message with text
        self._take_down()
        self.pool.service_error_message(self, text)
        if self._tasks is not None:
            self._tasks.start_soon(self._close_after_error, name="ServerConnection.retire")

    async def _close_after_error(self) -> None:
        timeout = self.pool.timings.receive_timeout
        await anyio.sleep(timeout)
        self.close(f"closed {timeout:g} s after SignalR Service reported an error on it")

    async def _keep_alive(self) -> None:
        interval = self.pool.timings.keepalive_interval
        while True:
            wait = self._last_sent + interval - anyio.current_time()
            if wait > 0:
                await anyio.sleep(wait)
                continue
            try:
                await self._write(Ping())
            except NotWritable:
                return

    # -- reading -----------------------------------------------------------------------------

    async def _watch_receive(self) -> None:
        timeout = self.pool.timings.receive_timeout
        while True:
            idle = anyio.current_time() - self._last_received
            if idle >= timeout:
                self.close(f"no message from SignalR Service for {timeout:g} s")
                return
            await anyio.sleep(timeout - idle)

    async def _read(self, socket: WebSocket, reader: ServiceMessageReader) -> None:
        while True:
            data = await socket.receive()
            self._last_received = anyio.current_time()
            for message in reader.feed(data):
                await self._dispatch(message)

    async def _dispatch(self, message: ServiceMessage) -> None:
        pool = self.pool
        events = pool.events
        try:
            if isinstance(message, ConnectionData):
                await events.client_data(message)
            elif isinstance(message, Ping):
                await self._on_ping(message.messages)
            elif isinstance(message, OpenConnection):
                instance = _header(message, _INSTANCE_HEADER)
                self.clients[message.connection_id] = instance
                pool.client_opened(message.connection_id, self)
                await events.client_opened(self.id, message)
            elif isinstance(message, CloseConnection):
                self.clients.pop(message.connection_id, None)
                pool.client_closed(message.connection_id)
                await events.client_closed(message)
            elif isinstance(message, Ack):
                pool.acks.resolve(message)
            elif isinstance(
                message,
                ClientCompletion
                | ErrorCompletion
                | ClientInvocation
                | ServiceMapping
                | ConnectionReconnect
                | ConnectionDataTooLarge,
            ):
                await events.client_message(message)
            elif isinstance(message, ServiceErrorMessage):
                self._service_error(message.error_message)
            elif isinstance(message, ServiceEvent):
                logger.info(
                    "SignalR Service event on hub %r: object type %d, id %r, kind %d: %s",
                    pool.hub,
                    message.object_type,
                    message.id,
                    message.kind,
                    message.message,
                )
            else:
                logger.debug("Ignoring %s on hub %r", type(message).__name__, pool.hub)
        except Exception:
            logger.exception(
                "Handling %s from SignalR Service on hub %r failed",
                type(message).__name__,
                pool.hub,
            )

    async def _on_ping(self, messages: tuple[str, ...]) -> None:
        for index in range(0, len(messages) - 1, 2):
            key, value = messages[index], messages[index + 1]
            if key == "echo":
                try:
                    await self.write(Ping(("echo", value)))
                except NotWritable:
                    return
            elif key == "offline":
                await self.pool.instance_offline(value)
            elif key == "target":
                self.pool.open_on_demand(value)
            elif value == "finack":
                self._finack.set()


def _header(message: OpenConnection, name: str) -> str | None:
    for key, values in message.headers.items():
        if key.lower() == name and values:
            return values[0]
    return None


def _query_value(value: str) -> str:
    return quote(value, safe="")
