"""One client's WebSocket after the upgrade: the hub protocol's handshake, pings, the client's
messages, and the frames the service queues for it.

The handshake is JSON for both protocols. JSON clients then send JSON objects each followed by the
record separator ``\\x1e``; a frame may hold several, and clients differ in spacing, so records are
parsed, never compared as bytes. MessagePack clients send arrays behind a size prefix, read with the
emulator's own reading of that framing (``_service_wire``). Protocol version 1 only, no stateful
reconnect.

Client invocations, and the connection's ``connected`` and ``disconnected`` events, go to the
upstream (``_upstream_calls``): ``connected`` once the handshake is answered, ``disconnected`` once
the socket is closed. A JSON client's invocation goes as its record; a MessagePack client's as its
array without the size prefix (``application/x-msgpack``), as Azure's upstream sends them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from ._client_endpoint import Admission
from ._connections import RECORD_SEPARATOR, SLOW_CLIENT, ClientConnection, encode_message
from ._hub_frames import HANDSHAKE_LIMIT, HUB_PROTOCOLS
from ._outbox import abandon_when_overflowed
from ._service_wire import MAX_MESSAGE_SIZE, FrameReader, WireError, decode_array
from ._state import EmulatorState
from ._upstream_calls import UpstreamCalls
from ._websockets import accept_headers, client_query, close_quietly, send_frames

__all__ = ["HANDSHAKE_TIMEOUT", "run_hub_session"]

HANDSHAKE_TIMEOUT = 15.0
"""Seconds a client has to send its handshake after the upgrade (ASP.NET Core's default)."""

_CLEAN_CLOSES = frozenset({1000, 1001})
_SEPARATOR: Final = RECORD_SEPARATOR.encode()
_INVOCATION, _STREAM_INVOCATION, _CLOSE = 1, 4, 7

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _ClientMessage:
    """One message of the client: its fields as the JSON protocol names them (``None``: not a hub
    message), and its bytes as the upstream gets them."""

    fields: Mapping[str, Any] | None
    body: bytes = b""


def _bytes_of(message: Mapping[str, Any]) -> bytes:
    text = message.get("text")
    return text.encode() if text is not None else (message.get("bytes") or b"")


class _JsonMessages:
    """Records received so far, split at the record separator and parsed. A record that grows
    past :data:`MAX_MESSAGE_SIZE` without its separator is not a hub message (as the MessagePack
    reader's limit), and the stream is read no further."""

    def __init__(self, start: bytes = b"") -> None:
        self._buffer = bytearray()
        self._broken = False
        self._pending = self.feed(start)

    def take_pending(self) -> list[_ClientMessage]:
        pending, self._pending = self._pending, []
        return pending

    def feed(self, data: bytes) -> list[_ClientMessage]:
        if self._broken:
            return []
        records: list[bytes] = []
        if _SEPARATOR in data:  # only the new bytes are searched: fragments cost what they hold
            *records, rest = (bytes(self._buffer) + data).split(_SEPARATOR)
            self._buffer = bytearray(rest)
        else:
            self._buffer += data
        messages = [_json_message(record) for record in records]
        if len(self._buffer) > MAX_MESSAGE_SIZE:
            self._broken, self._buffer = True, bytearray()
            messages.append(_ClientMessage(None))
        return messages


def _json_message(record: bytes) -> _ClientMessage:
    try:
        fields = json.loads(record)
    except ValueError:  # UnicodeDecodeError is a ValueError
        fields = None
    if not isinstance(fields, dict) or not isinstance(fields.get("type"), int):
        return _ClientMessage(None)
    return _ClientMessage(fields, record.strip() + _SEPARATOR)


class _MessagePackMessages:
    """Size-prefixed MessagePack arrays received so far, read as far as the service reads them."""

    def __init__(self, start: bytes = b"") -> None:
        self._frames = FrameReader()
        self._broken = False
        self._pending = self.feed(start)

    def take_pending(self) -> list[_ClientMessage]:
        pending, self._pending = self._pending, []
        return pending

    def feed(self, data: bytes) -> list[_ClientMessage]:
        if self._broken:
            return []
        try:
            payloads = self._frames.feed_payloads(data)
        except WireError:  # a bad size prefix: the stream cannot be read further
            self._broken = True
            return [_ClientMessage(None)]
        return [_msgpack_message(payload) for payload in payloads]


def _msgpack_message(payload: bytes) -> _ClientMessage:
    try:
        array = decode_array(payload)
    except WireError:
        return _ClientMessage(None)
    kind = array[0]
    fields: dict[str, Any] = {"type": kind}
    if kind in (_INVOCATION, _STREAM_INVOCATION) and len(array) >= 5:
        fields |= {"invocationId": array[2], "target": array[3]}
    elif kind == _CLOSE and len(array) >= 2:
        fields["error"] = array[1]
    return _ClientMessage(fields, payload)


_Messages = _JsonMessages | _MessagePackMessages


class _ClientGone(Exception):
    pass


class _Ending:
    """How the client left: the error its close message or close code gave, if any."""

    def __init__(self) -> None:
        self.error: str | None = None


async def run_hub_session(
    state: EmulatorState, websocket: WebSocket, admission: Admission, headers: dict[str, str]
) -> None:
    """Accept the upgrade and serve the connection until either side closes it."""
    await websocket.accept(headers=accept_headers(headers))
    try:
        handshake = await _receive_handshake(websocket)
    except _ClientGone:
        return
    if handshake is None:  # no handshake in time
        await close_quietly(websocket)
        return
    protocol, rest = handshake
    if protocol not in HUB_PROTOCOLS:
        await websocket.send_text(encode_message({"error": protocol}))
        await close_quietly(websocket)
        return
    messages: _Messages = (
        _MessagePackMessages(rest) if protocol == "messagepack" else _JsonMessages(rest)
    )
    connection = ClientConnection(
        connection_id=admission.connection_id,
        hub=admission.hub,
        user_id=admission.user_id,
        claims=admission.claims,
        connected_at=state.clock.now(),
        protocol=protocol,
    )
    # Registered before the handshake answer, so that a client which has its answer is listed; a
    # message queued meanwhile waits in the outbox until the writer starts, after the answer.
    state.connections.add(connection)
    ending = _Ending()
    async with UpstreamCalls(state, connection, client_query(websocket)) as upstream:
        try:
            answer = encode_message({})
            # A binary protocol's client reads binary frames: its handshake answer comes as one.
            if protocol == "messagepack":
                await websocket.send_bytes(answer.encode())
            else:
                await websocket.send_text(answer)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_write, websocket, connection, tasks.cancel_scope)
                tasks.start_soon(_ping, connection, state.ping_interval)
                tasks.start_soon(upstream.run)
                tasks.start_soon(
                    abandon_when_overflowed, connection.wait_overflowed, tasks.cancel_scope
                )
                await upstream.connected()
                for message in messages.take_pending():
                    if not await _handle(message, connection, upstream, ending):
                        break
                else:
                    await _read(websocket, messages, connection, upstream, ending)
                tasks.cancel_scope.cancel()
        except (WebSocketDisconnect, OSError):
            pass  # the client went away while the handshake answer was on its way
        finally:
            state.connections.remove(connection.connection_id)
            connection.disconnected()
            with anyio.CancelScope(shield=True):
                await close_quietly(websocket)
                await upstream.disconnected(SLOW_CLIENT if connection.overflowed else ending.error)


async def _receive_handshake(websocket: WebSocket) -> tuple[str, bytes] | None:
    """The protocol the handshake names (else why it is refused) and the bytes that came after it;
    None when no handshake came in time."""
    buffer = b""
    with anyio.move_on_after(HANDSHAKE_TIMEOUT):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise _ClientGone
            buffer += _bytes_of(message)
            record, found, rest = buffer.partition(_SEPARATOR)
            if found:
                return _handshake_protocol(record), rest
            if len(buffer) > HANDSHAKE_LIMIT:
                return f"The handshake request is longer than {HANDSHAKE_LIMIT} bytes.", b""
    return None


def _handshake_protocol(record: bytes) -> str:
    """The protocol the handshake request names, or (not a protocol name) why it is refused."""
    try:
        request = json.loads(record)
    except ValueError:
        return "The handshake request is not valid JSON."
    if not isinstance(request, dict):
        return "The handshake request must be a JSON object."
    protocol, version = request.get("protocol"), request.get("version")
    if protocol not in HUB_PROTOCOLS:
        return f"The protocol {protocol!r} is not supported."
    if version != 1:
        return f"The server does not support version {version!r} of the {protocol!r} protocol."
    return str(protocol)


async def _read(
    websocket: WebSocket,
    messages: _Messages,
    connection: ClientConnection,
    upstream: UpstreamCalls,
    ending: _Ending,
) -> None:
    """Handle the client's messages until it closes (a close message, or the socket)."""
    while True:
        received = await websocket.receive()
        if received["type"] == "websocket.disconnect":
            code = received.get("code", 1000)
            if code not in _CLEAN_CLOSES:
                ending.error = f"The WebSocket closed with status code {code}."
            return
        for message in messages.feed(_bytes_of(received)):
            if not await _handle(message, connection, upstream, ending):
                return


async def _handle(
    message: _ClientMessage, connection: ClientConnection, upstream: UpstreamCalls, ending: _Ending
) -> bool:
    """Act on one message from the client; False when the client is done."""
    fields = message.fields
    if fields is None:
        await connection.close("Connection closed with an error: a message was not a hub message.")
        ending.error = "The client sent a message that was not a hub message."
        return True
    kind = fields["type"]
    if kind == _CLOSE:  # the client stops
        error = fields.get("error")
        ending.error = error if isinstance(error, str) and error else None
        return False
    if kind in (_INVOCATION, _STREAM_INVOCATION):
        # invoke() waits for a completion, send() (no invocationId) for none: the upstream decides.
        await upstream.invocation(fields, message.body)
    return True  # pings (6), completions (3), stream items (2) and cancels (5) need no answer


async def _write(
    websocket: WebSocket, connection: ClientConnection, scope: anyio.CancelScope
) -> None:
    try:
        await send_frames(websocket, connection.outgoing())
        await websocket.close(1000)
    except (WebSocketDisconnect, OSError):
        scope.cancel()


async def _ping(connection: ClientConnection, interval: float) -> None:
    # Clients give up after 30 s of silence; ASP.NET Core pings every 15 s.
    while True:
        await anyio.sleep(interval)
        await connection.send({"type": 6})
