"""One client's WebSocket after the upgrade: the JSON hub protocol's handshake, pings, the client's
messages, and the frames the service queues for it.

Messages are JSON objects each followed by the record separator ``\\x1e``; a frame may hold several,
and clients differ in spacing, so records are parsed, never compared as bytes. Only the ``json``
protocol, version 1, is spoken (no MessagePack, no stateful reconnect).

Client invocations, and the connection's ``connected`` and ``disconnected`` events, go to the
upstream (``_upstream_calls``): ``connected`` once the handshake is answered, ``disconnected`` once
the socket is closed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from ._client_endpoint import Admission
from ._connections import RECORD_SEPARATOR, ClientConnection, encode_message
from ._state import EmulatorState
from ._upstream_calls import UpstreamCalls
from ._websockets import accept_headers, client_query, close_quietly, send_frames

__all__ = ["HANDSHAKE_TIMEOUT", "run_hub_session"]

HANDSHAKE_TIMEOUT = 15.0
"""Seconds a client has to send its handshake after the upgrade (ASP.NET Core's default)."""

_CLEAN_CLOSES = frozenset({1000, 1001})

logger = logging.getLogger(__name__)


class _Records:
    """Text received so far, split into complete records."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, message: Mapping[str, Any]) -> Iterator[str]:
        text = message.get("text")
        if text is None:
            text = (message.get("bytes") or b"").decode("utf-8", "replace")
        self._buffer += text
        *records, self._buffer = self._buffer.split(RECORD_SEPARATOR)
        yield from records


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
    records = _Records()
    try:
        handshake = await _receive_handshake(websocket, records)
    except _ClientGone:
        return
    if handshake is None:  # no handshake in time
        await close_quietly(websocket)
        return
    error, pending = handshake
    if error is not None:
        await websocket.send_text(encode_message({"error": error}))
        await close_quietly(websocket)
        return
    connection = ClientConnection(
        connection_id=admission.connection_id,
        hub=admission.hub,
        user_id=admission.user_id,
        claims=admission.claims,
        connected_at=state.clock.now(),
    )
    # Registered before the handshake answer, so that a client which has its answer is listed; a
    # message queued meanwhile waits in the outbox until the writer starts, after the answer.
    state.connections.add(connection)
    ending = _Ending()
    async with UpstreamCalls(state, connection, client_query(websocket)) as upstream:
        try:
            await websocket.send_text(encode_message({}))
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_write, websocket, connection, tasks.cancel_scope)
                tasks.start_soon(_ping, connection, state.ping_interval)
                tasks.start_soon(upstream.run)
                await upstream.connected()
                for record in pending:
                    await _handle(record, connection, upstream, ending)
                await _read(websocket, records, connection, upstream, ending)
                tasks.cancel_scope.cancel()
        except (WebSocketDisconnect, OSError):
            pass  # the client went away while the handshake answer was on its way
        finally:
            state.connections.remove(connection.connection_id)
            connection.disconnected()
            with anyio.CancelScope(shield=True):
                await close_quietly(websocket)
                await upstream.disconnected(ending.error)


async def _receive_handshake(
    websocket: WebSocket, records: _Records
) -> tuple[str | None, list[str]] | None:
    """Why the handshake is refused (None: accepted) and the records that came after it; None when
    no handshake came in time."""
    with anyio.move_on_after(HANDSHAKE_TIMEOUT):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise _ClientGone
            received = list(records.feed(message))
            if received:
                return _handshake_error(received[0]), received[1:]
    return None


def _handshake_error(record: str) -> str | None:
    try:
        request = json.loads(record)
    except ValueError:
        return "The handshake request is not valid JSON."
    if not isinstance(request, dict):
        return "The handshake request must be a JSON object."
    protocol, version = request.get("protocol"), request.get("version")
    if protocol != "json":
        return f"The protocol {protocol!r} is not supported."
    if version != 1:
        return f"The server does not support version {version!r} of the 'json' protocol."
    return None


async def _read(
    websocket: WebSocket,
    records: _Records,
    connection: ClientConnection,
    upstream: UpstreamCalls,
    ending: _Ending,
) -> None:
    """Handle the client's messages until it closes (a close message, or the socket)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            code = message.get("code", 1000)
            if code not in _CLEAN_CLOSES:
                ending.error = f"The WebSocket closed with status code {code}."
            return
        for record in records.feed(message):
            if not await _handle(record, connection, upstream, ending):
                return


async def _handle(
    record: str, connection: ClientConnection, upstream: UpstreamCalls, ending: _Ending
) -> bool:
    """Act on one message from the client; False when the client is done."""
    try:
        message = json.loads(record)
    except ValueError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("type"), int):
        await connection.close("Connection closed with an error: a message was not a hub message.")
        ending.error = "The client sent a message that was not a hub message."
        return True
    kind = message["type"]
    if kind == 7:  # the client stops
        error = message.get("error")
        ending.error = error if isinstance(error, str) and error else None
        return False
    if kind in (1, 4):
        # invoke() waits for a completion, send() (no invocationId) for none: the upstream decides.
        await upstream.invocation(message, record)
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
