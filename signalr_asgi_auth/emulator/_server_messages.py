"""What the emulated service does with each message an app server sends on its connection (Default
mode), after the handshake. Field positions are those Azure/azure-signalr ``ServiceProtocol.cs``
writes (snapshot 31686ed7); unknown message types are ignored, as the service's reader ignores
them.

- Data for clients (6-10, 13, 14) reaches every client of the server connection's hub that the
  message selects, in that client's protocol: multicasts carry one payload per protocol name,
  compared without regard to case; a client whose protocol has no payload gets nothing.
- Group membership (11, 12, 16-19, 26, 27), existence checks (21, 23-25) and closes (5, 30-33) act
  on the shared registry, which the REST API uses too. Acks (20) carry status 1 (Ok) or 2
  (NotFound).
- Client invocations (34) go to the client; its completion comes back through the server that
  carries the client, which passes it on as ClientCompletion/ErrorCompletion (35/36); those reach
  the server that asked (``callerServerId``). When that is another server, the client's server
  gets the invocation too, to know where to send the completion, and the caller a ServiceMapping
  (37), as ``ClientInvocation.md`` in Azure/azure-signalr describes. A pending invocation is
  forgotten on any completion for it (the caller that took the client's Completion itself sends
  one with an empty payload, as the .NET SDK does) or when its client leaves.
- Pings (3): ``echo`` is echoed, ``status`` answered with whether the hub has clients,
  ``servers`` with the app servers connected, ``shutdown``/``offline`` ``fin:N`` with ``finack``
  (the connection takes no new clients; with ``fin:0`` and ``fin:1`` its clients are closed and
  may reconnect, as the emulator migrates no one; with ``fin:2`` they stay until they leave).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Final

from ._connections import ClientConnection
from ._servers import PendingInvocation, ServerConnection
from ._service_wire import Fields, frame
from ._state import EmulatorState

__all__ = ["SHUTDOWN_CLOSE", "handle_server_message", "invocation_abandoned"]

ACK_OK: Final = 1
ACK_NOT_FOUND: Final = 2
SHUTDOWN_CLOSE: Final = "The app server this client was routed to is shutting down."
_INSTANCE_ID: Final = "emulator"
_DOTNET_EPOCH_TICKS: Final = 621_355_968_000_000_000  # DateTime ticks at 1970-01-01

Handler = Callable[[EmulatorState, ServerConnection, Fields], Awaitable[None]]
_HANDLERS: dict[int, Handler] = {}


def _handles(*types: int) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for kind in types:
            _HANDLERS[kind] = handler
        return handler

    return register


async def handle_server_message(
    state: EmulatorState, server: ServerConnection, fields: Fields
) -> None:
    """Carry out one message; :class:`WireError` when a field it needs is malformed."""
    handler = _HANDLERS.get(fields.type)
    if handler is not None:
        await handler(state, server, fields)


# -- helpers -------------------------------------------------------------------------------------


def _client(
    state: EmulatorState, server: ServerConnection, connection_id: str
) -> ClientConnection | None:
    client = state.connections.get(connection_id)
    return client if client is not None and client.hub == server.hub else None


def _deliver(
    clients: Iterable[ClientConnection],
    payloads: dict[str, bytes],
    *,
    excluded: Collection[str] = (),
    excluded_users: Collection[str] = (),
) -> None:
    for client in clients:
        if client.closing or client.connection_id in excluded:
            continue
        if client.user_id is not None and client.user_id in excluded_users:
            continue
        payload = payloads.get(client.protocol)
        if payload is not None:
            client.send_payload(payload)


def _ack(server: ServerConnection, ack_id: int, found: bool) -> None:
    server.send(frame([20, ack_id, ACK_OK if found else ACK_NOT_FOUND, "", {}]))


# -- pings ---------------------------------------------------------------------------------------


@_handles(3)
async def _ping(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    values = fields.message[1:]
    if len(values) < 2 or not all(isinstance(value, str) for value in values[:2]):
        return  # a keep-alive
    key, value = values[0], values[1]
    if key == "echo":
        server.send(frame([3, "echo", value]))
    elif key == "status":
        server.send(frame([3, "status", "1" if state.connections.in_hub(server.hub) else "0"]))
    elif key == "servers":
        ticks = int(state.clock.now() * 10_000_000) + _DOTNET_EPOCH_TICKS
        names = sorted({s.server_id for s in state.servers.of_hub(server.hub)})
        server.send(frame([3, "servers", f"{ticks}:{';'.join(names)}"]))
    elif key in ("shutdown", "offline") and value.startswith("fin:"):
        server.accepting = False
        if value != "fin:2":
            for connection_id in list(server.clients):
                client = _client(state, server, connection_id)
                if client is not None:
                    client.closed_by_server = True
                    await client.close(SHUTDOWN_CLOSE, allow_reconnect=True)
        server.send(frame([3, key, "finack"]))


# -- data for clients ----------------------------------------------------------------------------


@_handles(5)
async def _close_connection(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    # The app server wrote the client's close message itself (its hub's Close, with the reason):
    # the service only closes the socket, and does not tell the server again.
    client = _client(state, server, fields.text(1))
    if client is not None:
        client.closed_by_server = True
        client.close_socket()


@_handles(6)
async def _connection_data(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    client = _client(state, server, fields.text(1))
    payload = fields.binary(2)
    if client is not None and not client.closing:
        client.send_payload(payload)


@_handles(7)
async def _multi_connection_data(
    state: EmulatorState, server: ServerConnection, fields: Fields
) -> None:
    ids = set(fields.texts(1))
    clients = [c for c in state.connections.in_hub(server.hub) if c.connection_id in ids]
    _deliver(clients, fields.payloads(2))


@_handles(8)
async def _user_data(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    _deliver(state.connections.of_user(server.hub, fields.text(1)), fields.payloads(2))


@_handles(9)
async def _multi_user_data(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    users = set(fields.texts(1))
    clients = [c for c in state.connections.in_hub(server.hub) if c.user_id in users]
    _deliver(clients, fields.payloads(2))


@_handles(10)
async def _broadcast(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    excluded = set(fields.texts(1))
    _deliver(state.connections.in_hub(server.hub), fields.payloads(2), excluded=excluded)


@_handles(13)
async def _group_broadcast(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    members = state.connections.in_group(server.hub, fields.text(1))
    _deliver(
        members,
        fields.payloads(3),
        excluded=set(fields.texts(2)),
        excluded_users=set(fields.texts(5)),
    )


@_handles(14)
async def _multi_group_broadcast(
    state: EmulatorState, server: ServerConnection, fields: Fields
) -> None:
    groups = set(fields.texts(1))
    clients = [c for c in state.connections.in_hub(server.hub) if c.groups & groups]
    _deliver(clients, fields.payloads(2))


# -- groups --------------------------------------------------------------------------------------


@_handles(11, 12, 18, 19)
async def _connection_group(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    connection_id, group = fields.text(1), fields.text(2)
    if fields.type in (11, 18):
        found = state.connections.add_to_group(server.hub, group, connection_id)
    else:
        found = state.connections.remove_from_group(server.hub, group, connection_id)
    if fields.type in (18, 19):
        _ack(server, fields.integer(3), found)


@_handles(16, 26)
async def _user_join_group(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    user_id, group = fields.text(1), fields.text(2)
    with_ack = fields.type == 26
    ttl = fields.ext(4 if with_ack else 3).get(2)
    if isinstance(ttl, int) and ttl == 0:
        # Only the connections the user has now, as the REST API's ttl=0.
        for client in state.connections.of_user(server.hub, user_id):
            state.connections.add_to_group(server.hub, group, client.connection_id)
    else:
        lifetime = float(ttl) if isinstance(ttl, int) and ttl > 0 else None
        state.connections.add_user_to_group(server.hub, group, user_id, ttl=lifetime)
    if with_ack:
        _ack(server, fields.integer(3), True)


@_handles(17, 27)
async def _user_leave_group(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    user_id, group = fields.text(1), fields.optional_text(2)
    if group is None:
        state.connections.remove_user_from_all_groups(server.hub, user_id)
    else:
        state.connections.remove_user_from_group(server.hub, group, user_id)
    if fields.type == 27:
        _ack(server, fields.integer(3), True)


# -- existence checks ----------------------------------------------------------------------------


@_handles(21)
async def _user_in_group(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    found = state.connections.user_in_group(server.hub, fields.text(2), fields.text(1))
    _ack(server, fields.integer(3), found)


@_handles(23)
async def _group_exists(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    found = bool(state.connections.in_group(server.hub, fields.text(1)))
    _ack(server, fields.integer(2), found)


@_handles(24)
async def _connection_exists(
    state: EmulatorState, server: ServerConnection, fields: Fields
) -> None:
    found = _client(state, server, fields.text(1)) is not None
    _ack(server, fields.integer(2), found)


@_handles(25)
async def _user_exists(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    found = bool(state.connections.of_user(server.hub, fields.text(1)))
    _ack(server, fields.integer(2), found)


# -- closing clients -----------------------------------------------------------------------------


@_handles(30)
async def _close_with_ack(state: EmulatorState, server: ServerConnection, fields: Fields) -> None:
    client = _client(state, server, fields.text(1))
    if client is not None:
        await state.connections.close([client], fields.optional_text(2) or None)
    _ack(server, fields.integer(3), client is not None)


@_handles(31, 32, 33)
async def _close_many_with_ack(
    state: EmulatorState, server: ServerConnection, fields: Fields
) -> None:
    # [31, reason, ack, excluded], [32, user, reason, ack, excluded], [33, group, …]
    if fields.type == 31:
        clients, at = state.connections.in_hub(server.hub), 1
    elif fields.type == 32:
        clients, at = state.connections.of_user(server.hub, fields.text(1)), 2
    else:
        clients, at = state.connections.in_group(server.hub, fields.text(1)), 2
    reason, excluded = fields.optional_text(at) or None, set(fields.texts(at + 2))
    await state.connections.close(clients, reason, excluded)
    _ack(server, fields.integer(at + 1), True)


# -- client invocations --------------------------------------------------------------------------


@_handles(34)
async def _client_invocation(
    state: EmulatorState, server: ServerConnection, fields: Fields
) -> None:
    invocation_id, connection_id = fields.text(1), fields.text(2)
    caller = fields.text(3)
    client = _client(state, server, connection_id)
    payload = None if client is None else fields.payloads(4).get(client.protocol)
    if client is None or client.closing or payload is None:
        reason = (
            f"Connection '{connection_id}' is not connected to hub '{server.hub}'."
            if client is None or client.closing
            else f"The invocation has no payload for the client's protocol '{client.protocol}'."
        )
        server.send(frame([36, invocation_id, connection_id, caller, reason, {}]))
        return
    state.servers.invocation_started(
        PendingInvocation(invocation_id, server.hub, connection_id, caller)
    )
    client.send_payload(payload)
    router = client.server
    if router is not None and router.server_id != caller:
        router.send(frame(fields.message))
        server.send(frame([37, invocation_id, connection_id, _INSTANCE_ID, {}]))


@_handles(35, 36)
async def _client_completion(
    state: EmulatorState, server: ServerConnection, fields: Fields
) -> None:
    invocation_id, caller = fields.text(1), fields.text(3)
    state.servers.invocation_ended(invocation_id)
    if caller != server.server_id:
        target = state.servers.of_server(server.hub, caller)
        if target is not None:
            target.send(frame(fields.message))


def invocation_abandoned(state: EmulatorState, client: ClientConnection) -> None:
    """The client left: the servers waiting on its completions, other than the one carrying it
    (which learns of the close itself), get an ErrorCompletion."""
    for pending in state.servers.invocations_of(client.connection_id):
        if client.server is not None and pending.caller_server_id == client.server.server_id:
            continue
        caller = state.servers.of_server(pending.hub, pending.caller_server_id)
        if caller is not None:
            error = f"Connection '{client.connection_id}' disconnected."
            caller.send(
                frame(
                    [
                        36,
                        pending.invocation_id,
                        client.connection_id,
                        pending.caller_server_id,
                        error,
                        {},
                    ]
                )
            )
