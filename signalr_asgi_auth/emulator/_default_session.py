"""One client's WebSocket in Default mode: the service reads only the client's handshake request (to
learn its protocol), routes the client to one connection of an app server of its hub, and from then
on passes bytes both ways: the client's as ConnectionData, the server's to the socket.

- No server connection for the hub: the handshake is answered with the error Azure gives, and the
  socket closed (clients see "Server returned handshake error: SignalR Service is now in 'Default'
  service mode…").
- Routed: OpenConnection ``[4, id, claims, headers, query, {3: protocol}]`` (the token's claims as
  pairs, a list claim giving one pair per item; the client's headers but its credentials; its query
  but ``access_token`` and ``id``), then the buffered bytes, handshake request first. The app
  server answers the handshake.
- The service does not ping clients in Default mode: the app server's hub does (clients give up
  after 30 s of silence), so a hub that forgets to is caught here.
- When the client leaves, its server gets CloseConnection, unless the server asked for the close.
- Bounded both ways: a client that lets more than 1 MB wait unread is closed (``SLOW_CLIENT``); a
  client's bytes wait for room toward its server, and a client whose bytes find no room for
  ``server_timeout`` seconds is closed (``STALLED_SERVER``). See ``_outbox.py``.
"""

from __future__ import annotations

import logging
from typing import Final

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from ._client_endpoint import Admission
from ._connections import SLOW_CLIENT, ClientConnection
from ._hub_frames import encode_json_message, read_handshake
from ._outbox import CLOSE_DEADLINE, abandon_when_overflowed
from ._server_messages import invocation_abandoned
from ._server_session import SERVER_OFFLINE
from ._servers import ServerConnection
from ._service_wire import frame, open_connection
from ._state import EmulatorState
from ._upstream_calls import claim_pairs
from ._websockets import accept_headers, client_query, close_quietly, send_frames

__all__ = ["NO_SERVER", "STALLED_SERVER", "run_default_session"]

HANDSHAKE_TIMEOUT: Final = 15.0
NO_SERVER: Final = (
    "SignalR Service is now in 'Default' service mode. Current mode works as a proxy that routes "
    "client traffic to the connected app servers. However app servers are not connected."
)
STALLED_SERVER: Final = (
    "Connection closed by the service: the app server did not take this client's messages in time."
)
# The client's credentials never reach its app server.
_UNFORWARDED_HEADERS = frozenset({"authorization", "cookie", "sec-websocket-key"})
_CLEAN_CLOSES = frozenset({1000, 1001})

logger = logging.getLogger(__name__)


class _Gone(Exception):
    pass


async def run_default_session(
    state: EmulatorState, websocket: WebSocket, admission: Admission, headers: dict[str, str]
) -> None:
    """Accept the upgrade and carry the connection between the client and its app server."""
    await websocket.accept(headers=accept_headers(headers))
    buffer = bytearray()
    try:
        handshake = await _receive_handshake(websocket, buffer)
    except (_Gone, WebSocketDisconnect, OSError):
        return
    if handshake is None:
        await close_quietly(websocket)
        return
    protocol, error = handshake
    server = None if protocol is None else state.servers.pick(admission.hub, admission.claims)
    if protocol is None or server is None:
        await _answer_handshake_error(websocket, error or NO_SERVER)
        return
    client = ClientConnection(
        connection_id=admission.connection_id,
        hub=admission.hub,
        user_id=admission.user_id,
        claims=admission.claims,
        connected_at=state.clock.now(),
        protocol=protocol,
        server=server,
    )
    state.connections.add(client)
    server.clients.add(client.connection_id)
    opened = server.send(
        open_connection(
            client.connection_id,
            claim_pairs(admission.claims),
            _forwarded_headers(websocket),
            client_query(websocket),
            protocol,
        )
    )
    if opened:
        server.send(frame([6, client.connection_id, bytes(buffer), {}]))
    else:  # the server connection closed between the routing and now
        client.closed_by_server = True
        await client.close(SERVER_OFFLINE, allow_reconnect=True)
    error_on_close: str | None = None
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_write, websocket, client, tasks.cancel_scope)
            tasks.start_soon(abandon_when_overflowed, client.wait_overflowed, tasks.cancel_scope)
            error_on_close = await _forward(websocket, client, server, state.server_timeout)
            if error_on_close == STALLED_SERVER:  # the writer ends the session once it is out
                await anyio.sleep(CLOSE_DEADLINE)
            tasks.cancel_scope.cancel()
    except (WebSocketDisconnect, OSError):
        pass
    finally:
        with anyio.CancelScope(shield=True):
            state.connections.remove(client.connection_id)
            server.clients.discard(client.connection_id)
            client.disconnected()
            if client.overflowed:
                error_on_close = SLOW_CLIENT
            if not client.closed_by_server:
                server.send(frame([5, client.connection_id, error_on_close or "", {}, {}]))
            invocation_abandoned(state, client)
            await close_quietly(websocket)


async def _receive_handshake(
    websocket: WebSocket, buffer: bytearray
) -> tuple[str | None, str | None] | None:
    with anyio.move_on_after(HANDSHAKE_TIMEOUT):
        while True:
            data = await _receive(websocket)
            if data is None:
                raise _Gone
            buffer += data
            handshake = read_handshake(bytes(buffer))
            if handshake is not None:
                return handshake
    return None


async def _forward(
    websocket: WebSocket, client: ClientConnection, server: ServerConnection, within: float
) -> str | None:
    """Pass the client's bytes to its server until the client leaves; the error its leaving
    reports to the server, if any. Each message waits up to ``within`` seconds for room."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            code = message.get("code", 1000)
            return None if code in _CLEAN_CLOSES else f"The WebSocket closed with status {code}."
        data = message.get("bytes")
        if data is None:
            data = (message.get("text") or "").encode("utf-8")
        if not data:
            continue
        data_frame = frame([6, client.connection_id, bytes(data), {}])
        if not await server.send_when_room(data_frame, within=within):
            if server.closing:
                continue  # the server connection is going: its clients are closed with it
            await client.close(STALLED_SERVER, allow_reconnect=True)
            return STALLED_SERVER


async def _receive(websocket: WebSocket) -> bytes | None:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        return None
    data = message.get("bytes")
    return bytes(data) if data is not None else (message.get("text") or "").encode("utf-8")


async def _write(websocket: WebSocket, client: ClientConnection, scope: anyio.CancelScope) -> None:
    try:
        await send_frames(websocket, client.outgoing())
        await websocket.close(1000)
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass
    scope.cancel()


async def _answer_handshake_error(websocket: WebSocket, error: str) -> None:
    try:
        await websocket.send_text(encode_json_message({"error": error}))
    except (WebSocketDisconnect, OSError, RuntimeError):
        return
    await close_quietly(websocket)


def _forwarded_headers(websocket: WebSocket) -> dict[str, list[str]]:
    forwarded: dict[str, list[str]] = {}
    for name, value in websocket.headers.items():
        if name.lower() not in _UNFORWARDED_HEADERS:
            forwarded.setdefault(name, []).append(value)
    if websocket.client is not None:
        forwarded.setdefault("X-Forwarded-For", []).append(websocket.client.host)
    return forwarded
