"""One app server's connection after the upgrade (Default mode): the handshake, pings both ways, the
server's messages, and what the service writes to it.

The handshake request must come within 15 s; the service answers ``[2, "", {}, nil]``, or an error
message (a protocol version other than 1, a resource in Serverless mode, a ``cid`` in use) and
closes. Then the service pings every ``server_ping_interval`` seconds and closes a connection that
sent nothing for ``server_timeout`` seconds. Frames waiting for the server go out together, several
messages in one WebSocket message, as the service's own transport writes them: servers must not
assume one message per frame.

When the connection ends, for whatever reason, the clients it carried are closed with a close
message that allows them to reconnect (``ServerOffline``).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from ._outbox import abandon_when_overflowed
from ._server_auth import ServerAdmission
from ._server_messages import handle_server_message
from ._servers import CONNECTION_TYPES, ServerConnection
from ._service_wire import Fields, FrameReader, WireError, frame
from ._state import EmulatorState
from ._websockets import accept_headers, close_quietly

__all__ = ["SERVERLESS_REFUSAL", "SERVER_OFFLINE", "run_server_session"]

HANDSHAKE_TIMEOUT: Final = 15.0
PROTOCOL_VERSION: Final = 1
SERVERLESS_REFUSAL: Final = (
    "Azure SignalR Service is in Serverless mode, which accepts no app server connections. "
    "Switch the resource to Default mode to host hubs on app servers: "
    "az signalr update --service-mode Default --name <resource> --resource-group <group>."
)
SERVER_OFFLINE: Final = (
    "ServerOffline: the connection of the app server this client was routed to was closed."
)
_PING: Final = frame([3])
_UNSUPPORTED_DATA: Final = 1003
_PROTOCOL_ERROR: Final = 1002

logger = logging.getLogger(__name__)


class _Gone(Exception):
    pass


async def run_server_session(
    state: EmulatorState, websocket: WebSocket, admission: ServerAdmission, headers: dict[str, str]
) -> None:
    """Accept the upgrade and serve the server connection until either side closes it."""
    await websocket.accept(headers=accept_headers(headers))
    reader = FrameReader()
    try:
        first = await _receive_handshake(websocket, reader)
    except (_Gone, WebSocketDisconnect, OSError):
        return
    except WireError as error:
        await close_quietly(websocket, _PROTOCOL_ERROR, f"Invalid service message: {error}.")
        return
    if first is None:
        await close_quietly(websocket, 1008, "No handshake request within 15 seconds.")
        return
    handshake, rest = Fields(first[0]), first[1:]
    server = _accept(state, admission, handshake)
    if isinstance(server, str):
        await _refuse(websocket, server)
        return
    try:
        await websocket.send_bytes(frame([2, "", {}, None]))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_write, websocket, server, tasks.cancel_scope)
            tasks.start_soon(_ping, server, state.server_ping_interval)
            tasks.start_soon(abandon_when_overflowed, server.wait_overflowed, tasks.cancel_scope)
            await _handle_all(state, server, rest)
            await _read(state, websocket, reader, server)
            # The writer sends what is queued, then ends the group; the socket closes below.
            server.close(code=1000)
    except (WebSocketDisconnect, OSError):
        pass
    finally:
        with anyio.CancelScope(shield=True):
            state.servers.remove(server)
            server.disconnected()
            await _close_clients(state, server)
            await close_quietly(websocket, server.close_code, server.close_reason)


def _accept(
    state: EmulatorState, admission: ServerAdmission, handshake: Fields
) -> ServerConnection | str:
    """The connection a handshake request opens, or why it is refused."""
    if handshake.type != 1:
        return "The first message must be a handshake request (type 1)."
    try:
        version = handshake.integer(1)
        kind = handshake.integer(2) if len(handshake) > 2 else 0
        target = handshake.optional_text(3) if len(handshake) > 3 else None
    except WireError as error:
        return f"The handshake request is malformed: {error}."
    if version != PROTOCOL_VERSION:
        return (
            f"Protocol version {version} is not supported: this service speaks version "
            f"{PROTOCOL_VERSION}."
        )
    if state.service_mode.value == "serverless":
        return SERVERLESS_REFUSAL
    server = ServerConnection(
        connection_id=admission.connection_id,
        server_id=admission.server_id,
        hub=admission.hub,
        kind=CONNECTION_TYPES.get(kind, "default"),
        target=target or admission.target,
        principal_oid=admission.principal_oid,
        connected_at=state.clock.now(),
    )
    if not state.servers.add(server):
        return f"A server connection with cid '{admission.connection_id}' is open already."
    return server


async def _receive_handshake(websocket: WebSocket, reader: FrameReader) -> list[list[Any]] | None:
    """The first messages (the handshake request first), or None when none came in time."""
    with anyio.move_on_after(HANDSHAKE_TIMEOUT):
        while True:
            data = await _receive_bytes(websocket)
            if data is None:
                raise _Gone
            messages = reader.feed(data)
            if messages:
                return messages
    return None


async def _read(
    state: EmulatorState, websocket: WebSocket, reader: FrameReader, server: ServerConnection
) -> None:
    while not server.closing:
        data: bytes | None = b""
        with anyio.move_on_after(state.server_timeout):
            try:
                data = await _receive_bytes(websocket)
            except WireError as error:
                server.close(code=_UNSUPPORTED_DATA, reason=f"Invalid service message: {error}.")
                return
        if data == b"" and not server.closing:
            reason = f"Service timeout: the app server sent nothing for {state.server_timeout:g} s."
            server.close(code=1000, reason=reason)
            return
        if data is None:
            return
        try:
            messages = reader.feed(data)
        except WireError as error:
            messages = []
            _broke_protocol(server, error)
        await _handle_all(state, server, messages)


async def _handle_all(
    state: EmulatorState, server: ServerConnection, messages: list[list[Any]]
) -> None:
    for message in messages:
        try:
            await handle_server_message(state, server, Fields(message))
        except WireError as error:
            _broke_protocol(server, error)
            return


def _broke_protocol(server: ServerConnection, error: WireError) -> None:
    logger.warning("App server connection %s sent %s.", server.connection_id, error)
    server.close(code=_PROTOCOL_ERROR, reason=f"Invalid service message: {error}.")


async def _receive_bytes(websocket: WebSocket) -> bytes | None:
    """The next message's bytes; None when the socket closed. A text message breaks the protocol."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        if message.get("bytes") is not None:
            if message["bytes"]:
                return bytes(message["bytes"])
            continue
        msg = "a text message (the service protocol is binary)"
        raise WireError(msg)


async def _write(websocket: WebSocket, server: ServerConnection, scope: anyio.CancelScope) -> None:
    try:
        async for frames in server.outgoing():
            await websocket.send_bytes(b"".join(frames))
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass
    scope.cancel()


async def _ping(server: ServerConnection, interval: float) -> None:
    while True:
        await anyio.sleep(interval)
        server.send(_PING)


async def _close_clients(state: EmulatorState, server: ServerConnection) -> None:
    for connection_id in list(server.clients):
        client = state.connections.get(connection_id)
        if client is not None and client.server is server:
            client.closed_by_server = True  # nobody left to tell
            await client.close(SERVER_OFFLINE, allow_reconnect=True)


async def _refuse(websocket: WebSocket, error: str) -> None:
    try:
        await websocket.send_bytes(frame([2, error, {}, None]))
    except (WebSocketDisconnect, OSError, RuntimeError):
        return
    await close_quietly(websocket, 1000, "")
