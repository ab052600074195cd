"""Default mode: the hub's client connections, as the service hands them over one pool of server
connections.

Per client a small session: the handshake (buffered until complete), then its hub protocol's
reader. What arrives is handled on the server connection's read loop, in order, without waiting
for the service: user code runs in this layer's own tasks (``_client_tasks.py``), one invocation at
a time per client (as ASP.NET Core's default), streams beside them. One timer pings every client.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import anyio
from anyio.abc import TaskStatus

from .._errors import InvalidInputError, NotReadyError, ServiceError, SignalRAuthError
from .._upstream import HubMethodError
from ..protocol import (
    EMPTY_EXT,
    Ack,
    AckStatus,
    BroadcastData,
    CancelInvocation,
    ClientCompletion,
    ClientInvocation,
    CloseConnection,
    Completion,
    ConnectionData,
    ConnectionDataTooLarge,
    ConnectionReconnect,
    DataMessageType,
    ErrorCompletion,
    Ext,
    GroupBroadcastData,
    HubClose,
    HubMessage,
    HubMessageReader,
    HubPing,
    HubProtocol,
    Invocation,
    JoinGroupWithAck,
    LeaveGroupWithAck,
    MessageTooLargeError,
    MultiConnectionData,
    MultiGroupBroadcastData,
    MultiUserData,
    OpenConnection,
    ProtocolError,
    ServiceMapping,
    ServiceMessage,
    StreamInvocation,
    StreamItem,
    UserData,
    decode_service_message,
    encode_service_message,
    handshake_response,
    parse_handshake_request,
)
from ..server import ServerConnections
from ._call import Details, HubCall, claims_of, headers_of, query_of
from ._client_results import ClientResults
from ._client_tasks import ClientTasks, Job
from ._clients import Audience
from ._everywhere import send_everywhere
from ._methods import HubMethod, refusal, short
from ._running import call_method, owned_cancellation, run_handler

if TYPE_CHECKING:
    from ._hub import Hub

__all__ = ["HubConnections"]

logger = logging.getLogger("signalr_asgi_auth.hubs")

STREAM_ERROR: Final = "An error occurred on the server while streaming results."
_NOT_WRITABLE: Final = "The server's result could not be written in the client's protocol."
_MAX_HANDSHAKE: Final = 64 * 1024
_PINGS_PER_MESSAGE: Final = 1000
_VERSIONS: Final = range(1, 3)  # the JSON hub protocol's 2 only adds stateful reconnect's acks
_DELIVERY_ERRORS: Final = (SignalRAuthError, anyio.BrokenResourceError, anyio.ClosedResourceError)
_STOPPING: Final = "The app server is stopping."


class _Session:
    """One client connection. Kept small: an idle client costs this object and its entry."""

    __slots__ = (
        "busy",
        "connected",
        "connection_id",
        "ended",
        "handshake",
        "idle",
        "jobs",
        "opened",
        "opened_at",
        "partial",
        "protocol",
        "reader",
        "server_connection_id",
        "streams",
        "user_id",
    )

    def __init__(self, server_connection_id: str, message: OpenConnection, now: float) -> None:
        self.connection_id = message.connection_id
        self.server_connection_id = server_connection_id
        # Kept as the service's bytes: one object instead of a few dozen (claims, headers...).
        self.opened = encode_service_message(message)
        self.user_id, _ = claims_of(message.claims)
        self.opened_at = now
        self.handshake = b""
        self.protocol: HubProtocol | None = None
        self.reader: HubMessageReader | None = None
        self.partial: bytearray | None = None
        self.jobs: deque[Job] | None = None
        self.busy = False
        self.idle: anyio.Event | None = None  # set when busy ends, for on_disconnected to wait
        self.connected = False
        self.ended = False
        self.streams: dict[str, anyio.CancelScope] | None = None


class HubConnections:
    """The hub's clients on one pool: the pool's ``ServiceEvents`` and the hub's way to send."""

    def __init__(self, hub: Hub, pool: ServerConnections) -> None:
        self._hub = hub
        self._pool = pool
        self._sessions: dict[str, _Session] = {}
        self._results = ClientResults(pool, hub.protocol, self._deliver_to)
        self._tasks = ClientTasks(hub.name)
        self._pings = {p.name: p.write(HubPing()) for p in hub.protocols}

    def __repr__(self) -> str:
        return f"HubConnections({self._hub.name!r}, clients={len(self._sessions)})"

    @property
    def clients(self) -> int:
        """Client connections on this pool."""
        return len(self._sessions)

    @property
    def endpoint(self) -> str:
        """The SignalR resource this pool connects to (names it in errors)."""
        return self._pool.resource

    @property
    def hub_name(self) -> str:
        return self._hub.name

    @property
    def up(self) -> bool:
        """Whether a server connection of this pool is up (else its clients are gone)."""
        return self._pool.up > 0

    def everywhere(self) -> list[HubConnections]:
        """The hub's pools at every endpoint, this one included."""
        running = self._hub.running()
        return running if self in running else [self, *running]

    # -- the task group ---------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run handlers and the ping timer until cancelled (``SignalRAuth`` starts this in its
        task group before the pool opens its connections, and cancels it after the pool
        stopped); then end every client, their ``on_disconnected`` included, within
        ``HUB_STOP_TIMEOUT`` (see :class:`ClientTasks`)."""
        try:
            await self._tasks.run(self._keep_alive, self._end_every_client, task_status=task_status)
        finally:
            self._hub.detach(self)

    def _end_every_client(self) -> None:
        for session in list(self._sessions.values()):
            del self._sessions[session.connection_id]
            self._ended(session, _STOPPING)

    def _enqueue(self, session: _Session, job: Job) -> bool:
        return self._tasks.enqueue(session, job)

    # -- ServiceEvents: what the pool calls, on a read loop -----------------------------------

    async def client_opened(self, server_connection_id: str, message: OpenConnection) -> None:
        if message.connection_id in self._sessions:
            # As .NET's client connection manager: the connection already here stays.
            logger.warning(
                "Hub %r: SignalR Service opened client %s again while it is connected; the "
                "second OpenConnection is ignored",
                self._hub.name,
                short(message.connection_id),
            )
            return
        self._sessions[message.connection_id] = _Session(
            server_connection_id, message, anyio.current_time()
        )

    async def client_data(self, message: ConnectionData) -> None:
        session = self._sessions.get(message.connection_id)
        if session is None:
            return
        data = message.payload
        if session.partial is not None or message.ext.is_partial:
            # The service splits a big client message into parts; they are held until the last,
            # so the limit applies to what is held, part by part, not once they are joined.
            held = len(session.partial or b"") + len(data)
            if held > self._held_limit(session):
                await self._too_large(session)
                return
            if session.partial is None:
                session.partial = bytearray()
            session.partial += data
            if message.ext.is_partial:
                return
            data, session.partial = bytes(session.partial), None
        if message.ext.data_message_type == DataMessageType.CLOSE:
            return  # the client's Close kept for stateful reconnect; CloseConnection follows
        if session.reader is None:
            await self._handshake(session, data)
        else:
            await self._receive(session, data)

    def _held_limit(self, session: _Session) -> int:
        """The most bytes one of the client's messages may take: its handshake's limit until the
        handshake is done, then the hub's ``max_receive_message_size``."""
        return _MAX_HANDSHAKE if session.reader is None else self._hub.max_receive_message_size

    async def _too_large(self, session: _Session) -> None:
        """Close a client that sent more than it may (as ASP.NET Core words it), alone."""
        session.partial = None
        if session.reader is None:
            await self._refuse(session, "The handshake request is too large.")
            return
        limit = self._hub.max_receive_message_size
        error = (
            f"Connection closed with an error. The maximum message size of {limit}B was exceeded."
        )
        await self.close(session.connection_id, error)

    async def client_closed(self, message: CloseConnection) -> None:
        session = self._sessions.pop(message.connection_id, None)
        if session is not None:
            self._ended(session, message.error_message or None)

    async def client_message(self, message: object) -> None:
        if isinstance(message, ClientCompletion):
            self._results.answered(message)
        elif isinstance(message, ErrorCompletion):
            self._results.failed(message)
        elif isinstance(message, ClientInvocation):
            self._results.route(message)
        elif isinstance(message, ConnectionDataTooLarge):
            if (session := self._sessions.get(message.connection_id)) is not None:
                await self._too_large(session)
        elif isinstance(message, ConnectionReconnect):
            if (session := self._sessions.get(message.connection_id)) is not None:
                session.partial = None
        elif not isinstance(message, ServiceMapping):
            logger.debug("Hub %r ignored a %s", self._hub.name, type(message).__name__)

    async def server_connection_lost(self, server_connection_id: str, reason: str) -> None:
        lost = [
            s for s in self._sessions.values() if s.server_connection_id == server_connection_id
        ]
        error = f"The server connection carrying this client was lost: {reason}"
        for session in lost:
            del self._sessions[session.connection_id]
            self._ended(session, error)

    # -- the handshake ------------------------------------------------------------------------

    async def _handshake(self, session: _Session, data: bytes) -> None:
        buffer = session.handshake + data
        try:
            parsed = parse_handshake_request(buffer)
        except ProtocolError as exc:
            await self._refuse(session, f"The handshake request is not valid: {exc}")
            return
        if parsed is None:
            if len(buffer) > _MAX_HANDSHAKE:
                await self._refuse(session, "The handshake request is too large.")
            else:
                session.handshake = buffer
            return
        name, version, rest = parsed
        protocol = self._hub.protocol(name)
        name = short(name, 32)  # what a client wrote, echoed back and logged
        if protocol is None:
            await self._refuse(session, f"The protocol '{name}' is not supported.")
            return
        if version not in _VERSIONS:
            error = f"The server does not support version {version} of the '{name}' protocol."
            await self._refuse(session, error)
            return
        session.handshake = b""
        session.protocol = protocol
        session.reader = protocol.reader(max_message_size=self._hub.max_receive_message_size)
        await self._write(session, handshake_response(), kind=DataMessageType.HANDSHAKE)
        session.connected = True
        if self._hub.connected_handler is not None:
            self._enqueue(session, partial(self._on_connected, session))
        if rest:
            await self._receive(session, rest)

    async def _refuse(self, session: _Session, error: str) -> None:
        logger.info("Hub %r refused client %s: %s", self._hub.name, session.connection_id, error)
        self._sessions.pop(session.connection_id, None)
        await self._deliver(
            ConnectionData(
                session.connection_id,
                handshake_response(error),
                Ext(data_message_type=DataMessageType.HANDSHAKE),
            ),
            client=session.connection_id,
        )
        await self._deliver(
            CloseConnection(session.connection_id, error), client=session.connection_id
        )

    # -- what a client sends ------------------------------------------------------------------

    async def _receive(self, session: _Session, data: bytes) -> None:
        assert session.reader is not None  # only called after the handshake
        try:
            messages = session.reader.feed(data)
        except MessageTooLargeError:
            await self._too_large(session)
            return
        except ProtocolError as exc:
            await self.close(session.connection_id, f"Connection closed with an error. {exc}")
            return
        for message in messages:
            await self._dispatch(session, message)
            if session.connection_id not in self._sessions:
                return

    async def _dispatch(self, session: _Session, message: HubMessage) -> None:
        if isinstance(message, Invocation | StreamInvocation):
            await self._invocation(session, message)
        elif isinstance(message, Completion):
            await self._results.completed(session.connection_id, session.protocol, message)
        elif isinstance(message, CancelInvocation):
            if session.streams and (scope := session.streams.get(message.invocation_id)):
                scope.cancel()
        elif isinstance(message, HubClose):
            del self._sessions[session.connection_id]
            await self._deliver(
                CloseConnection(session.connection_id), client=session.connection_id
            )
            self._ended(session, message.error or None)
        # Pings only keep the connection alive; stream items (uploads) were refused.

    async def _invocation(self, session: _Session, message: Invocation | StreamInvocation) -> None:
        streaming = isinstance(message, StreamInvocation)
        method = self._hub.method(message.target)
        error = refusal(
            method,
            message.target,
            message.arguments,
            streaming=streaming,
            streams=len(message.stream_ids),
        )
        if error is None and method is not None:
            job = self._start_stream if streaming else self._run_method
            if self._enqueue(session, partial(job, session, message, method)):
                return
            error = "The server is busy with this client's earlier invocations."
        if message.invocation_id is not None:
            await self._complete(session, message.invocation_id, error=error)
        else:
            logger.debug("Hub %r: %s", self._hub.name, error)  # per message: no flood at INFO

    # -- running user code (tasks of the task group) -------------------------------------------

    def _call(self, session: _Session, invocation_id: str | None = None) -> HubCall:
        return HubCall(
            hub=self._hub.name,
            connection_id=session.connection_id,
            user_id=session.user_id,
            details=partial(_details, session.opened),
            transport=_CallTransport(self, session.connection_id),
            mode="default",
            invocation_id=invocation_id,
        )

    async def _run_method(
        self, session: _Session, message: Invocation | StreamInvocation, method: HubMethod
    ) -> None:
        call = self._call(session, message.invocation_id)
        result, error = await call_method(
            method,
            self._hub.name,
            message.target,
            call,
            message.arguments,
            limiter=self._hub.thread_limiter(),
        )
        if message.invocation_id is not None and not session.ended:
            await self._complete(session, message.invocation_id, result=result, error=error)

    async def _start_stream(
        self, session: _Session, message: Invocation | StreamInvocation, method: HubMethod
    ) -> None:
        invocation_id = message.invocation_id or ""
        if session.ended:
            return
        if session.streams is None:
            session.streams = {}
        if invocation_id in session.streams:
            # As ASP.NET Core: a second stream under one id could never be cancelled.
            logger.debug(
                "Hub %r: a client reused stream id %s", self._hub.name, short(invocation_id)
            )
            error = f"Invocation ID '{short(invocation_id)}' is already in use."
            await self._complete(session, invocation_id, error=error)
            return
        scope = session.streams[invocation_id] = anyio.CancelScope()
        self._tasks.spawn(self._stream, session, message, method, scope)

    async def _stream(
        self,
        session: _Session,
        message: Invocation | StreamInvocation,
        method: HubMethod,
        scope: anyio.CancelScope,
    ) -> None:
        invocation_id = message.invocation_id or ""
        protocol = session.protocol
        assert protocol is not None  # streams start after the handshake
        error: str | None = None
        with scope:
            items = method.function(self._call(session, invocation_id), *message.arguments)
            try:
                with owned_cancellation():
                    async for item in items:
                        await self._write(session, protocol.write(StreamItem(invocation_id, item)))
            except HubMethodError as exc:
                error = str(exc)
            except Exception:
                logger.exception(
                    "Streaming hub method %r of hub %r failed", method.name, self._hub.name
                )
                error = STREAM_ERROR
            finally:
                with anyio.move_on_after(1.0, shield=True):
                    await items.aclose()
        if session.streams is not None:
            session.streams.pop(invocation_id, None)
        if not session.ended:
            # Cancelled by the client: a completion without error, as ASP.NET Core sends.
            await self._complete(session, invocation_id, error=error)

    async def _on_connected(self, session: _Session) -> None:
        handler = self._hub.connected_handler
        if handler is None or session.ended:
            return
        try:
            await run_handler(handler, self._call(session), limiter=self._hub.thread_limiter())
        except Exception as exc:
            # As ASP.NET Core: a client refused in on_connected never connected, so no
            # on_disconnected follows.
            session.connected = False
            if isinstance(exc, HubMethodError):
                await self.close(session.connection_id, str(exc))
                return
            logger.exception("on_connected of hub %r failed", self._hub.name)
            await self.close(session.connection_id, "Connection closed with an error.")

    async def _on_disconnected(self, session: _Session, error: str | None) -> None:
        handler = self._hub.disconnected_handler
        if handler is None:
            return
        function, takes_error = handler
        args = (self._call(session), error) if takes_error else (self._call(session),)
        try:
            await run_handler(function, *args, limiter=self._hub.thread_limiter())
        except NotReadyError as exc:
            # Clients leave in a crowd when the service connection drops or the app stops; a
            # send from here then has nowhere to go, which is no bug of the handler's.
            logger.info("on_disconnected of hub %r could not send: %s", self._hub.name, exc)
        except Exception:
            logger.exception("on_disconnected of hub %r failed", self._hub.name)

    def _ended(self, session: _Session, error: str | None) -> None:
        """The client is gone: stop its streams, fail what waits for it, tell the hub."""
        session.ended = True
        for scope in (session.streams or {}).values():
            scope.cancel()
        self._results.client_gone(session.connection_id)
        session.jobs = None  # what it asked for no longer matters
        if session.connected and self._hub.disconnected_handler is not None:
            self._tasks.farewell(session, partial(self._on_disconnected, session, error))

    # -- writing to clients ---------------------------------------------------------------------

    async def _complete(
        self, session: _Session, invocation_id: str, *, result: Any = None, error: str | None = None
    ) -> None:
        protocol = session.protocol
        assert protocol is not None  # completions follow the handshake
        message = Completion(
            invocation_id,
            result=result,
            error=error,
            has_result=error is None and result is not None,
        )
        try:
            payload = protocol.write(message)
        except (TypeError, ValueError, OverflowError):
            logger.warning(
                "Hub %r: a result for %s could not be written as %s",
                self._hub.name,
                short(invocation_id),
                protocol.name,
            )
            payload = protocol.write(Completion(invocation_id, error=_NOT_WRITABLE))
        await self._write(session, payload)

    async def _write(self, session: _Session, payload: bytes, *, kind: int | None = None) -> None:
        if session.ended:
            return  # nothing of a client's goes out after it is gone
        ext = EMPTY_EXT if kind is None else Ext(data_message_type=kind)
        await self._deliver(
            ConnectionData(session.connection_id, payload, ext), client=session.connection_id
        )

    async def _deliver(self, message: ServiceMessage, *, client: str | None) -> None:
        """Send what the hub layer owes a client; a lost connection is the pool's to report."""
        try:
            await self._pool.send(message, client=client)
        except _DELIVERY_ERRORS as exc:
            logger.debug(
                "Hub %r could not send a %s: %s", self._hub.name, type(message).__name__, exc
            )

    async def close(self, connection_id: str, error: str | None = None) -> None:
        """Close a client connection with a Close message saying ``error`` (if any)."""
        session = self._sessions.pop(connection_id, None)
        if session is None:
            return
        if session.protocol is not None:
            await self._write(session, session.protocol.write(HubClose(error=error)))
        await self._deliver(CloseConnection(connection_id, error or ""), client=connection_id)
        self._ended(session, error)

    async def _keep_alive(self) -> None:
        """Every ``keep_alive_interval``, one ping to every client (clients give up after 30 s of
        silence) and a close for clients that never finished their handshake."""
        interval = self._hub.keep_alive_interval
        while True:
            await anyio.sleep(interval)
            now = anyio.current_time()
            by_connection: dict[str, list[str]] = {}
            late: list[str] = []
            for session in self._sessions.values():
                if session.reader is not None:
                    by_connection.setdefault(session.server_connection_id, []).append(
                        session.connection_id
                    )
                elif now - session.opened_at >= self._hub.handshake_timeout:
                    late.append(session.connection_id)
            for connection_id in late:
                await self.close(connection_id, "No handshake request in time.")
            for clients in by_connection.values():
                # One message per server connection, sent on it: after each handshake reply.
                for start in range(0, len(clients), _PINGS_PER_MESSAGE):
                    chunk = tuple(clients[start : start + _PINGS_PER_MESSAGE])
                    await self._deliver(MultiConnectionData(chunk, self._pings), client=chunk[0])

    # -- client results -------------------------------------------------------------------------

    async def invoke(
        self, connection_id: str, target: str, arguments: tuple[Any, ...], seconds: float
    ) -> Any:
        session = self._sessions.get(connection_id)
        protocols = [session.protocol] if session and session.protocol else self._hub.protocols

        def payloads(invocation_id: str) -> dict[str, bytes]:
            invocation = Invocation(target=target, arguments=arguments, invocation_id=invocation_id)
            return _payloads(protocols, invocation, target)

        return await self._results.invoke(connection_id, target, payloads, seconds)

    async def _deliver_to(self, message: ServiceMessage, client: str) -> None:
        await self._deliver(message, client=client)

    # -- sends to many clients, and groups ------------------------------------------------------

    async def send(
        self, audience: Audience, target: str, arguments: tuple[Any, ...], via: str | None = None
    ) -> None:
        payloads = _payloads(
            self._hub.protocols, Invocation(target=target, arguments=arguments), target
        )
        names, excluded = audience.names, audience.excluded
        message: ServiceMessage
        if audience.kind == "all":
            message = BroadcastData(excluded, payloads)
        elif audience.kind == "connections":
            message = MultiConnectionData(names, payloads)
            via = via or (names[0] if len(names) == 1 else None)
        elif audience.kind == "user":
            message = UserData(names[0], payloads)
        elif audience.kind == "users":
            message = MultiUserData(names, payloads)
        elif audience.kind == "group":
            message = GroupBroadcastData(names[0], excluded, payloads)
        else:
            message = MultiGroupBroadcastData(names, payloads)
        await self._pool.send(message, client=via if via in self._sessions else None)

    async def join(self, connection_id: str, group: str) -> None:
        ack = await self._pool.send_with_ack(
            partial(JoinGroupWithAck, connection_id, group), client=connection_id
        )
        _check_ack(ack, f"add connection {connection_id!r} to group {group!r}")

    async def leave(self, connection_id: str, group: str) -> None:
        ack = await self._pool.send_with_ack(
            partial(LeaveGroupWithAck, connection_id, group), client=connection_id
        )
        _check_ack(ack, f"remove connection {connection_id!r} from group {group!r}")

    def holds(self, connection_id: str) -> bool:
        """Whether this client connection is on this pool."""
        return connection_id in self._sessions


class _CallTransport:
    """A call's way out: sends go on the server connection of the caller, in order with its
    completion (as .NET scopes a hub call's writes to the caller's connection)."""

    __slots__ = ("_caller", "_connections")

    def __init__(self, connections: HubConnections, caller: str) -> None:
        self._connections = connections
        self._caller = caller

    async def send(self, audience: Audience, target: str, arguments: tuple[Any, ...]) -> None:
        # Other endpoints carry clients too (several endpoints): they get it as well.
        await send_everywhere(
            self._connections.everywhere(),
            audience,
            target,
            arguments,
            caller=self._connections,
            via=self._caller,
        )

    async def invoke(
        self, connection_id: str, target: str, arguments: tuple[Any, ...], seconds: float
    ) -> Any:
        return await self._connections.invoke(connection_id, target, arguments, seconds)

    async def join(self, connection_id: str, group: str) -> None:
        await self._connections.join(connection_id, group)

    async def leave(self, connection_id: str, group: str) -> None:
        await self._connections.leave(connection_id, group)


def _payloads(
    protocols: Iterable[HubProtocol], message: Invocation, target: str
) -> dict[str, bytes]:
    payloads: dict[str, bytes] = {}
    for protocol in protocols:
        try:
            payloads[protocol.name] = protocol.write(message)
        except (TypeError, ValueError, OverflowError) as exc:
            msg = f"The arguments for {target!r} cannot be written as {protocol.name}: {exc}."
            raise InvalidInputError(msg) from None
    return payloads


def _details(opened: bytes) -> Details:
    message = decode_service_message(opened)
    if not isinstance(message, OpenConnection):  # our own bytes: cannot happen
        msg = "a session's OpenConnection could not be read back"
        raise RuntimeError(msg)
    _, claims = claims_of(message.claims)
    return claims, query_of(message.query_string or ""), headers_of(message.headers)


def _check_ack(ack: Ack, doing: str) -> None:
    # As .NET: NotFound (the connection is gone) is no error for group membership.
    if ack.status in (AckStatus.OK, AckStatus.NOT_FOUND):
        return
    reasons = {
        AckStatus.TIMEOUT: "timed out",
        AckStatus.INTERNAL_SERVER_ERROR: "failed",
        AckStatus.FORBIDDEN: "refused it",
    }
    detail = f": {ack.message}" if ack.message else ""
    msg = f"SignalR Service could not {doing}: it {reasons.get(ack.status, f'answered {ack.status}')}{detail}."
    raise ServiceError(msg)
