"""The service side of Default mode, for tests: ``/server/`` connections, clients, routing, acks."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
import jwt
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.events import Ping as WebSocketPing

from . import _wire

_ACK_OK = 1
_ACK_NOT_FOUND = 2
_USER_CLAIM = "asrs.s.uid"
_CLOSE_WITHIN = 2.0
"""Seconds a close or drop waits for its turn to write before cutting the TCP connection anyway."""


@dataclass
class Faults:
    """What the service does wrong; change them at any time (they apply to what happens next)."""

    refuse_status: int | None = None
    """Answer the WebSocket upgrade with this HTTP status (401, 403, 429, 503...) and a JSON body."""
    handshake_error: str | None = None
    """Answer the server's handshake with this error, then close."""
    answer_handshake: bool = True
    """False: accept the WebSocket, then say nothing at all (no handshake answer, no pings)."""
    ping_interval: float | None = 5.0
    """Seconds between the service's keep-alive pings; None: no pings (a silent service)."""
    answer_acks: bool = True
    """False: never answer a ``...WithAck`` message."""
    ack_status: int | None = None
    """Answer every ``...WithAck`` with this status instead of the real one."""


@dataclass
class Attempt:
    """One upgrade request to ``/server/``, refused or not."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 101
    auth: str = "unchecked"
    """How the bearer was checked: "access-key", "entra", "unchecked" (no key configured), or why
    it was refused."""


@dataclass
class Client:
    """A client connection as the service holds it: what it sends to the hub and what it gets."""

    connection_id: str
    hub: str
    protocol: str
    user_id: str | None
    server: ServerConnection
    handshake: dict[str, Any] | None = None
    """The hub's handshake answer (``{}`` or ``{"error": ...}``) once it came."""
    received: list[Any] = field(default_factory=list)
    """Hub messages the client got: dicts (JSON) or arrays (MessagePack), handshake excluded."""
    closed: str | None = None
    """None while open; the error of the CloseConnection (``""`` for a clean close) after."""
    groups: set[str] = field(default_factory=set)
    _pending: bytes = b""
    _frames: _wire.Frames = field(default_factory=_wire.Frames)

    async def send(self, message: Any) -> None:
        """A hub message from the client: a dict (JSON), a list (MessagePack) or raw bytes."""
        data = _wire.hub_bytes(message, self.protocol)
        await self.server.send([6, self.connection_id, data, {}])

    async def invoke(self, target: str, *arguments: Any, invocation_id: str | None = None) -> None:
        if self.protocol == "json":
            message: Any = {"type": 1, "target": target, "arguments": list(arguments)}
            if invocation_id is not None:
                message["invocationId"] = invocation_id
        else:
            message = [1, {}, invocation_id, target, list(arguments), []]
        await self.send(message)

    async def wait_for(self, condition: Callable[[Client], bool], within: float = 5.0) -> None:
        await _poll(
            self.server.service, lambda: condition(self), within, f"client {self.connection_id}"
        )

    def _deliver(self, payload: bytes) -> None:
        if self.handshake is None:
            self._pending += payload
            end = self._pending.find(_wire.RS)
            if end < 0:
                return
            self.handshake = json.loads(self._pending[:end])
            payload, self._pending = self._pending[end + 1 :], b""
        if self.protocol == "json":
            records, self._pending = _wire.json_records(self._pending + payload)
            self.received.extend(records)
        else:
            self.received.extend(_wire.unpack(frame) for frame in self._frames.feed(payload))


@dataclass
class ServerConnection:
    """The service's side of one server connection."""

    attempt: Attempt
    service: IndependentService
    stream: anyio.abc.ByteStream
    ws: WSConnection
    handshake: list[Any] | None = None
    """The HandshakeRequest array the server sent."""
    received: list[list[Any]] = field(default_factory=list)
    """Every service message the server sent, as the plain array it was (in order)."""
    closed: bool = False
    errors: list[str] = field(default_factory=list)
    """What the service could not read from the server (it then closes the connection, as Azure
    would); a test of a well-behaved server asserts this stays empty."""
    _lock: anyio.Lock = field(default_factory=anyio.Lock)
    """Every write takes it: the reader (answers, close replies), the pinger and the test's task all
    write, and two writers at once raise ``BusyResourceError``."""
    _echoes_sent: list[str] = field(default_factory=list)
    """Values of the ``echo`` pings this service sent and the server has not answered yet: an echo
    from the server with one of them is the answer, and answering it again would loop forever."""

    @property
    def hub(self) -> str:
        return self.attempt.query.get("hub", "")

    @property
    def connection_id(self) -> str:
        return self.attempt.query.get("cid", "")

    @property
    def up(self) -> bool:
        return self.handshake is not None and not self.closed

    def of_type(self, kind: int) -> list[list[Any]]:
        return [m for m in self.received if m[0] == kind]

    async def send(self, *arrays: list[Any], pieces: int = 1) -> None:
        """``arrays`` as service messages, all in one WebSocket message, or cut into ``pieces``
        WebSocket messages at arbitrary points (a message may then span several)."""
        for array in arrays:
            if array[:2] == [3, "echo"] and len(array) > 2:
                self._echoes_sent.append(array[2])
        data = b"".join(_wire.pack(a) for a in arrays)
        await self.send_bytes(data, pieces=pieces)

    async def send_bytes(self, data: bytes, *, pieces: int = 1) -> None:
        size = max(1, -(-len(data) // pieces))
        async with self._lock:
            for start in range(0, len(data), size):
                await self.stream.send(self.ws.send(BytesMessage(data=data[start : start + size])))

    async def ping(self, *pairs: str) -> None:
        await self.send([3, *pairs])

    async def answer(self, event: WebSocketPing | CloseConnection) -> None:
        """The WebSocket-level answer to a ping or a close frame, in turn with the other writes."""
        async with self._lock:
            await self.stream.send(self.ws.send(event.response()))

    def is_echo_answer(self, value: str) -> bool:
        """True (and forgotten) if ``value`` answers an echo this service sent."""
        if value in self._echoes_sent:
            self._echoes_sent.remove(value)
            return True
        return False

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """A clean WebSocket close from the service."""
        # Bounded: a writer stuck on a peer that stopped reading must not hold the close (and the
        # test's teardown) forever; the TCP close below ends that writer too.
        with anyio.move_on_after(_CLOSE_WITHIN):
            async with self._lock:
                await self.stream.send(self.ws.send(CloseConnection(code=code, reason=reason)))
        await self.stream.aclose()

    async def drop(self, partial: bytes = b"") -> None:
        """Cut the TCP connection without a close frame, after ``partial`` bytes of a WebSocket
        message (e.g. the first half of a service message)."""
        with anyio.move_on_after(_CLOSE_WITHIN):
            async with self._lock:
                if partial:
                    await self.stream.send(self.ws.send(BytesMessage(data=partial)))
        await self.stream.aclose()

    async def drop_mid_message(self, array: list[Any]) -> None:
        """Send the first half of one service message, then cut the connection."""
        data = _wire.pack(array)
        await self.drop(data[: len(data) // 2])

    async def wait_for(
        self, condition: Callable[[ServerConnection], bool], within: float = 5.0
    ) -> None:
        await _poll(
            self.service, lambda: condition(self), within, f"server connection {self.connection_id}"
        )


async def _poll(
    service: IndependentService, condition: Callable[[], bool], within: float, what: str
) -> None:
    with anyio.move_on_after(within):
        while not condition():
            await service._changed.wait()
        return
    message = f"{what}: the condition did not hold within {within} s"
    raise TimeoutError(message)


class IndependentService:
    """See the package docstring."""

    def __init__(
        self,
        *,
        access_key: str | None = None,
        entra_jwks: dict[str, Any] | None = None,
        entra_audiences: tuple[str, ...] = (
            "https://signalr.azure.com",
            "https://signalr.azure.com/",
        ),
    ) -> None:
        self.access_key = access_key
        self.entra_jwks = entra_jwks
        self.entra_audiences = entra_audiences
        self.faults = Faults()
        self.attempts: list[Attempt] = []
        self.connections: list[ServerConnection] = []
        self.clients: dict[str, Client] = {}
        self.url = ""
        self._ids = itertools.count(1)
        self._next_server = itertools.count()
        self._changed = anyio.Event()

    def _notify(self) -> None:
        """Wake whoever waits for a condition: something changed."""
        self._changed.set()
        self._changed = anyio.Event()

    @classmethod
    @asynccontextmanager
    async def running(cls, **options: Any) -> AsyncIterator[IndependentService]:
        """The service on 127.0.0.1 (a free port) for the block; everything it opened is closed
        when the block ends."""
        service = cls(**options)
        async with anyio.create_task_group() as tasks:
            await tasks.start(service._serve)
            try:
                yield service
            finally:
                tasks.cancel_scope.cancel()

    # -- what tests look at ------------------------------------------------------------------------

    def up(self, hub: str | None = None) -> list[ServerConnection]:
        return [c for c in self.connections if c.up and (hub is None or c.hub == hub)]

    async def wait_for(self, condition: Callable[[], bool], within: float = 5.0) -> None:
        await _poll(self, condition, within, "the independent service")

    async def wait_for_servers(self, hub: str, count: int = 1, within: float = 5.0) -> None:
        await self.wait_for(lambda: len(self.up(hub)) >= count, within)

    async def connect_client(
        self,
        hub: str,
        *,
        protocol: str = "json",
        user_id: str | None = None,
        claims: list[tuple[str, str]] | None = None,
        headers: dict[str, list[str]] | None = None,
        query: str = "",
        server: ServerConnection | None = None,
        then: list[Any] | None = None,
        within: float = 5.0,
    ) -> Client:
        """A client connects to ``hub``: OpenConnection on a server connection that is up (round
        robin, or ``server``), then the client's handshake as its first ConnectionData, with the
        hub messages in ``then`` in the same payload. Returns once the hub answered the handshake."""
        if server is None:
            candidates = self.up(hub)
            if not candidates:
                message = f"no server connection is up for hub {hub!r}"
                raise RuntimeError(message)
            server = candidates[next(self._next_server) % len(candidates)]
        connection_id = f"client-{next(self._ids)}"
        all_claims = list(claims or [])
        if user_id is not None:
            all_claims.insert(0, (_USER_CLAIM, user_id))
        client = Client(connection_id, hub, protocol, user_id, server)
        self.clients[connection_id] = client
        first = _wire.client_handshake(protocol) + b"".join(
            _wire.hub_bytes(m, protocol) for m in then or []
        )
        open_message = _wire.pack_open_connection(
            connection_id, all_claims, headers or {}, query, protocol
        )
        await server.send_bytes(open_message + _wire.pack([6, connection_id, first, {}]))
        await client.wait_for(lambda c: c.handshake is not None or c.closed is not None, within)
        return client

    async def close_client(self, client: Client, error: str = "") -> None:
        """The client goes away: the service tells the hub with CloseConnection."""
        client.closed = error
        self._notify()
        await client.server.send([5, client.connection_id, error, {}, {}])

    # -- serving -----------------------------------------------------------------------------------

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        self.url = f"http://127.0.0.1:{port}"
        async with listener:
            task_status.started()
            await listener.serve(self._handle)

    async def _handle(self, stream: anyio.abc.ByteStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        connection: ServerConnection | None = None
        try:
            request = await self._read_request(stream, ws)
            connection = await self._answer(stream, ws, request)
            if connection is not None:
                await self._converse(connection)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
            pass
        finally:
            if connection is not None:
                connection.closed = True
                for client in self.clients.values():
                    if client.server is connection and client.closed is None:
                        client.closed = "The server connection carrying this client was lost."
            self._notify()
            await stream.aclose()

    async def _read_request(self, stream: anyio.abc.ByteStream, ws: WSConnection) -> Request:
        while True:
            ws.receive_data(await stream.receive())
            for event in ws.events():
                if isinstance(event, Request):
                    return event

    async def _answer(
        self, stream: anyio.abc.ByteStream, ws: WSConnection, request: Request
    ) -> ServerConnection | None:
        parts = urlsplit(request.target)
        headers = {k.decode().lower(): v.decode() for k, v in request.extra_headers}
        headers["host"] = request.host  # wsproto keeps Host apart from the other headers
        attempt = Attempt(
            path=parts.path,
            query={k: v[0] for k, v in parse_qs(parts.query).items()},
            headers=headers,
        )
        self.attempts.append(attempt)
        self._notify()
        status, why = self._check(attempt)
        if status is None and self.faults.refuse_status is not None:
            status, why = self.faults.refuse_status, "refused by the test"
        if status is not None:
            attempt.status = status
            body = json.dumps({"message": why}).encode()
            await stream.send(
                ws.send(
                    RejectConnection(
                        status_code=status,
                        headers=[
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                        has_body=True,
                    )
                )
            )
            await stream.send(ws.send(RejectData(data=body)))
            return None
        await stream.send(ws.send(AcceptConnection()))
        connection = ServerConnection(attempt, self, stream, ws)
        self.connections.append(connection)
        return connection

    def _check(self, attempt: Attempt) -> tuple[int | None, str]:
        """(status, reason) for a request Azure would refuse, else (None, "")."""
        if attempt.path.rstrip("/") != "/server" or not attempt.query.get("hub"):
            return 400, "expected /server/?hub=...&cid=..."
        if not attempt.query.get("cid"):
            return 400, "cid is missing"
        authorization = attempt.headers.get("authorization", "")
        if self.access_key is None and self.entra_jwks is None:
            return None, ""
        if not authorization.startswith("Bearer "):
            attempt.auth = "no bearer"
            return 401, "no bearer token"
        token = authorization[len("Bearer ") :]
        if self.access_key is not None:
            host = attempt.headers.get("host", "").rsplit(":", 1)[0]
            audience = f"http://{host}/server/?hub={attempt.query['hub']}"
            try:
                jwt.decode(
                    token,
                    self.access_key.encode(),
                    algorithms=["HS256", "HS512"],
                    audience=audience,
                    options={"require": ["exp", "aud"]},
                )
            except jwt.PyJWTError as error:
                attempt.auth = f"access-key: {type(error).__name__}"
            else:
                attempt.auth = "access-key"
                return None, ""
        if self.entra_jwks is not None:
            try:
                kid = jwt.get_unverified_header(token).get("kid")
                keys = jwt.PyJWKSet.from_dict(self.entra_jwks)
                key = next(k for k in keys.keys if k.key_id == kid)
                jwt.decode(
                    token,
                    key,
                    algorithms=["RS256"],
                    audience=list(self.entra_audiences),
                    options={"require": ["exp", "aud"]},
                )
            except (jwt.PyJWTError, StopIteration) as error:
                attempt.auth = f"entra: {type(error).__name__}"
            else:
                attempt.auth = "entra"
                return None, ""
        return 401, "the bearer token is not valid for this hub"

    async def _converse(self, connection: ServerConnection) -> None:
        try:
            async with anyio.create_task_group() as tasks:
                await self._read_messages(connection, tasks)
                tasks.cancel_scope.cancel()
        except* (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
            pass  # the server (or a test's drop) ended the connection

    async def _read_messages(
        self, connection: ServerConnection, tasks: anyio.abc.TaskGroup
    ) -> None:
        frames = _wire.Frames()
        message = b""
        while True:
            data = await connection.stream.receive()
            connection.ws.receive_data(data)
            for event in connection.ws.events():
                if isinstance(event, BytesMessage):
                    message += event.data
                    if not event.message_finished:
                        continue
                    try:
                        arrays = [_wire.unpack(frame) for frame in frames.feed(message)]
                    except Exception as error:  # anything msgpack or our framing refuses
                        connection.errors.append(f"{type(error).__name__}: {error}")
                        await connection.close(1008, "malformed service message")
                        return
                    for array in arrays:
                        await self._on_message(connection, array, tasks)
                    message = b""
                    self._notify()
                elif isinstance(event, TextMessage):
                    return  # the service protocol is binary only
                elif isinstance(event, WebSocketPing):
                    await connection.answer(event)
                elif isinstance(event, CloseConnection):
                    await connection.answer(event)
                    return

    async def _pinger(self, connection: ServerConnection) -> None:
        while True:
            interval = self.faults.ping_interval
            await anyio.sleep(interval if interval is not None else 0.05)
            if interval is not None and connection.up:
                await connection.send([3])

    async def _on_message(
        self, connection: ServerConnection, array: list[Any], tasks: anyio.abc.TaskGroup
    ) -> None:
        connection.received.append(array)
        kind = array[0]
        if connection.handshake is None:
            if kind != 1:
                return  # .NET's service expects the handshake first; anything else is ignored
            if not self.faults.answer_handshake:
                return
            if self.faults.handshake_error is not None:
                await connection.send([2, self.faults.handshake_error, {}, None])
                await connection.close()
                return
            connection.handshake = array
            await connection.send([2, "", {}, None])
            tasks.start_soon(self._pinger, connection)
            return
        handler = _HANDLERS.get(kind)
        if handler is not None:
            await handler(self, connection, array)

    # -- what the server asks of the service ------------------------------------------------------

    def _clients_of(self, hub: str) -> list[Client]:
        return [c for c in self.clients.values() if c.hub == hub and c.closed is None]

    def _deliver(self, clients: list[Client], payloads: dict[str, bytes]) -> None:
        by_protocol = {name.lower(): data for name, data in payloads.items()}
        for client in clients:
            payload = by_protocol.get(client.protocol)
            if payload is not None:
                client._deliver(payload)

    async def _ack(self, connection: ServerConnection, ack_id: int, found: bool = True) -> None:
        if not self.faults.answer_acks:
            return
        status = self.faults.ack_status or (_ACK_OK if found else _ACK_NOT_FOUND)
        await connection.send([20, ack_id, status, "", {}])

    async def _ping(self, connection: ServerConnection, a: list[Any]) -> None:
        pairs = dict(zip(a[1::2], a[2::2], strict=False))
        if pairs.get("shutdown", "").startswith("fin"):
            await connection.ping("shutdown", "finack")
        elif "echo" in pairs:
            # The service asks with ["echo", x] and the server answers with the same; an answer
            # is not a question (as with .NET's service), so only an echo the service did not
            # send itself gets one.
            if not connection.is_echo_answer(pairs["echo"]):
                await connection.ping("echo", pairs["echo"])
        elif "status" in pairs:
            await connection.ping("status", "1" if self._clients_of(connection.hub) else "0")

    async def _close(self, connection: ServerConnection, a: list[Any]) -> None:
        client = self.clients.get(a[1])
        if client is not None and client.closed is None:
            client.closed = a[2] or ""

    async def _data(self, connection: ServerConnection, a: list[Any]) -> None:
        client = self.clients.get(a[1])
        if client is not None and client.closed is None:
            client._deliver(a[2])

    async def _client_invocation(self, connection: ServerConnection, a: list[Any]) -> None:
        # [34, invocationId, connectionId, callerServerId, payloads, ext]: the service hands the
        # invocation to its client; the client's Completion comes back as ConnectionData.
        client = self.clients.get(a[2])
        if client is not None and client.closed is None:
            self._deliver([client], a[4])

    async def _multi_connection(self, connection: ServerConnection, a: list[Any]) -> None:
        ids = set(a[1])
        self._deliver([c for c in self._clients_of(connection.hub) if c.connection_id in ids], a[2])

    async def _user(self, connection: ServerConnection, a: list[Any]) -> None:
        users = {a[1]} if a[0] == 8 else set(a[1])
        self._deliver([c for c in self._clients_of(connection.hub) if c.user_id in users], a[2])

    async def _broadcast(self, connection: ServerConnection, a: list[Any]) -> None:
        excluded = set(a[1] or [])
        clients = self._clients_of(connection.hub)
        self._deliver([c for c in clients if c.connection_id not in excluded], a[2])

    async def _group_broadcast(self, connection: ServerConnection, a: list[Any]) -> None:
        excluded = set(a[2] or [])
        excluded_users = set(a[5] or []) if len(a) > 5 else set()
        self._deliver(
            [
                c
                for c in self._clients_of(connection.hub)
                if a[1] in c.groups
                and c.connection_id not in excluded
                and c.user_id not in excluded_users
            ],
            a[3],
        )

    async def _multi_group(self, connection: ServerConnection, a: list[Any]) -> None:
        groups = set(a[1])
        self._deliver([c for c in self._clients_of(connection.hub) if c.groups & groups], a[2])

    async def _membership(self, connection: ServerConnection, a: list[Any]) -> None:
        kind = a[0]
        join = kind in (11, 16, 18, 26)
        by_user = kind in (16, 17, 26, 27)
        if by_user:
            targets = [c for c in self._clients_of(connection.hub) if c.user_id == a[1]]
        else:
            client = self.clients.get(a[1])
            targets = [client] if client is not None and client.closed is None else []
        for client in targets:
            if join:
                client.groups.add(a[2])
            elif a[2] is None:
                client.groups.clear()
            else:
                client.groups.discard(a[2])
        if kind in (18, 19, 26, 27):
            await self._ack(connection, a[3], found=bool(targets) or by_user)

    async def _existence(self, connection: ServerConnection, a: list[Any]) -> None:
        clients = self._clients_of(connection.hub)
        kind = a[0]
        if kind == 21:
            found = any(c.user_id == a[1] and a[2] in c.groups for c in clients)
        elif kind == 23:
            found = any(a[1] in c.groups for c in clients)
        elif kind == 24:
            found = any(c.connection_id == a[1] for c in clients)
        else:
            found = any(c.user_id == a[1] for c in clients)
        await self._ack(connection, a[3] if kind == 21 else a[2], found)

    async def _close_many(self, connection: ServerConnection, a: list[Any]) -> None:
        excluded = set(a[4] or [])
        if a[0] == 32:
            chosen = [c for c in self._clients_of(connection.hub) if c.user_id == a[1]]
        else:
            chosen = [c for c in self._clients_of(connection.hub) if a[1] in c.groups]
        for client in chosen:
            if client.connection_id not in excluded:
                client.closed = a[2] or ""
                await client.server.send([5, client.connection_id, a[2] or "", {}, {}])
        await self._ack(connection, a[3])


_Handler = Callable[[IndependentService, ServerConnection, list[Any]], Any]
_HANDLERS: dict[int, _Handler] = {
    3: IndependentService._ping,
    5: IndependentService._close,
    6: IndependentService._data,
    7: IndependentService._multi_connection,
    8: IndependentService._user,
    9: IndependentService._user,
    10: IndependentService._broadcast,
    11: IndependentService._membership,
    12: IndependentService._membership,
    13: IndependentService._group_broadcast,
    14: IndependentService._multi_group,
    16: IndependentService._membership,
    17: IndependentService._membership,
    18: IndependentService._membership,
    19: IndependentService._membership,
    21: IndependentService._existence,
    23: IndependentService._existence,
    24: IndependentService._existence,
    25: IndependentService._existence,
    26: IndependentService._membership,
    27: IndependentService._membership,
    32: IndependentService._close_many,
    33: IndependentService._close_many,
    34: IndependentService._client_invocation,
}
