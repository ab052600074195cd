"""SignalR Service's data-plane REST API (``2022-06-01`` and later): messages to clients, group
membership, existence checks, closing connections.

Each operation declares the data action Azure's RBAC checks for it. Azure publishes the actions
with a one-line description each, not per operation; the operations that have no obvious action
take the one whose description covers them: closing connections, however many, is
``clientConnection/write`` ("Close client connection"), a connection leaving every group is
``group/write`` ("Join / Leave group"), and a user leaving every group is ``user/write`` ("Modify a
user", as leaving one group is).

Every call is authenticated in one of the two ways the service accepts: an Entra bearer token whose
principal holds a role granting the operation's data action (checked as the access-key route does),
or a JWT signed with an access key of the resource (or a temporary key still valid) whose ``aud`` is
the request URL. Messages reach clients through the connection registry.

All of it is one route, ``/api/hubs/{path}``, dispatched here on the raw path: Starlette routes on
the decoded path, where a user id or group holding ``%2F`` would split into two segments.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._errors import SignalRAuthError
from .._names import check_application_name, prefixed_hub
from ._client_auth import ClientTokenError, is_key_signed, verify_client_token
from ._connections import ClientConnection
from ._data_plane import _authorize as _authorize_entra
from ._data_plane import _bearer_token, _unauthorized
from ._paths import wire_path
from ._roles import Action
from ._state import EmulatorState

__all__ = ["OPERATIONS", "Operation", "dispatch"]

MAX_BODY = 1024 * 1024


def _error(status: int, code: str, message: str) -> Response:
    """An ``ErrorDetail``-shaped answer, with the code in ``x-ms-error-code`` as the service sends it."""
    return JSONResponse(
        {"code": code, "message": message}, status_code=status, headers={"x-ms-error-code": code}
    )


def _bad_request(message: str) -> Response:
    return _error(400, "Error.BadRequest", message)


@dataclass(frozen=True, slots=True)
class _Call:
    """An authenticated request: the hub (prefixed, lower-case) and the decoded path parameters."""

    hub: str
    request: Request
    params: dict[str, str]

    def param(self, name: str) -> str:
        return self.params[name]


def _request_audiences(request: Request, presented: object) -> list[str]:
    """The audiences a key-signed token may carry for this request: the URL without its query, with
    or without the port (as the docs and the C# SDK build it), its path as sent or decoded. A
    presented audience that also names
    the query (the SDK puts api-version and application there) passes when that query is the
    request's."""
    url = request.url
    raw = wire_path(request)
    bases = [f"{url.scheme}://{url.netloc}", f"{url.scheme}://{url.hostname}"]
    forms = (f"{base}{path}".lower() for base in bases for path in (raw, unquote(raw)))
    accepted = list(dict.fromkeys(forms))
    if isinstance(presented, str) and "?" in presented:
        bare, _, query = presented.partition("?")
        asked = parse_qsl(query, keep_blank_values=True)
        sent = set(request.query_params.multi_items())
        if bare.lower() in accepted and asked and all(pair in sent for pair in asked):
            accepted.append(presented.lower())
    # Unlike a client token's, the REST API's audience is matched without regard to case.
    if isinstance(presented, str) and presented.lower() in accepted:
        accepted.append(presented)
    return accepted


def _authenticate(state: EmulatorState, request: Request, action: str, hub: str) -> Response | None:
    """None when the caller may perform ``action``; otherwise the 401/403 that refuses it."""
    token = _bearer_token(request)
    if token is None or not is_key_signed(token):
        refused = _authorize_entra(state, request, action)
        return refused if isinstance(refused, Response) else None
    try:
        presented = jwt.decode(token, options={"verify_signature": False}).get("aud")
    except jwt.DecodeError:
        presented = None
    try:
        verify_client_token(
            token,
            hub=hub,
            audiences=_request_audiences(request, presented),
            keys=state.access_keys,
            resource_keys=state.resource_keys,
            now=state.clock.now(),
        )
    except ClientTokenError as error:
        return _unauthorized(error.description, token_presented=True)
    return None


def _hub_of(request: Request, hub: str) -> str | Response:
    application = request.query_params.get("application")
    try:
        app = check_application_name(application) if application else None
    except SignalRAuthError:
        return _bad_request(
            f"Invalid application {application!r}: it must start with a letter and hold only "
            "letters, digits and underscores."
        )
    try:
        return prefixed_hub(hub, app)
    except SignalRAuthError as error:
        return _bad_request(str(error))


Body = Callable[[EmulatorState, _Call], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Operation:
    """One REST operation: ``pattern`` is the path after ``/api/hubs/{hub}``, where ``{name}``
    segments are parameters."""

    method: str
    pattern: tuple[str, ...]
    action: str
    body: Body

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.pattern):
            return None
        params: dict[str, str] = {}
        for expected, segment in zip(self.pattern, segments, strict=True):
            if expected.startswith("{"):
                params[expected.strip("{}")] = segment
            elif expected != segment:
                return None
        return params


OPERATIONS: list[Operation] = []
"""Every operation, in the order they are declared below."""


def _operation(method: str, pattern: str, action: str) -> Callable[[Body], Body]:
    def register(body: Body) -> Body:
        OPERATIONS.append(Operation(method, tuple(pattern.strip("/").split("/")), action, body))
        return body

    return register


async def dispatch(state: EmulatorState, request: Request) -> Response:
    """``/api/hubs/{hub}/…``: find the operation, authenticate, check ``api-version`` and the hub,
    then run it. 404 for a path no operation has, 405 for a method it does not take."""
    hub_segment, _, rest = wire_path(request).removeprefix("/api/hubs/").partition("/")
    segments = [unquote(segment) for segment in rest.split("/")]
    matches = [(op, op.match(segments)) for op in OPERATIONS]
    found = [(op, params) for op, params in matches if params is not None]
    chosen = next(((op, p) for op, p in found if op.method == request.method), None)
    if chosen is None:
        if found:
            allowed = ", ".join(sorted({op.method for op, _ in found}))
            response = _error(405, "Error.MethodNotAllowed", f"This path takes {allowed}.")
            response.headers["Allow"] = allowed
            return response
        return _error(404, "Error.NotFound", f"No REST API at {wire_path(request)}.")
    operation, params = chosen
    hub = _hub_of(request, unquote(hub_segment))
    refused = _authenticate(state, request, operation.action, hub if isinstance(hub, str) else "")
    if refused is not None:
        return refused
    if isinstance(hub, Response):
        return hub
    if not request.query_params.get("api-version"):
        return _bad_request("The api-version query parameter is required, e.g. 2022-06-01.")
    return await operation.body(state, _Call(hub, request, params))


async def _payload(request: Request) -> tuple[str, list[Any]] | Response:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return _error(413, "Error.PayloadTooLarge", f"The body exceeds {MAX_BODY} bytes.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _bad_request("The body is not valid JSON.")
    if not isinstance(body, dict):
        return _bad_request('The body must be a JSON object: {"target": ..., "arguments": [...]}.')
    target, arguments = body.get("target"), body.get("arguments")
    if not isinstance(target, str) or not target:
        return _bad_request("The body's target must be a non-empty string.")
    if arguments is None:
        arguments = []
    if not isinstance(arguments, list):
        return _bad_request("The body's arguments must be a JSON array.")
    return target, arguments


async def _send(
    state: EmulatorState,
    call: _Call,
    connections: list[ClientConnection],
    *,
    excluded: bool = False,
) -> Response:
    payload = await _payload(call.request)
    if isinstance(payload, Response):
        return payload
    target, arguments = payload
    skipped = _excluded(call) if excluded else set()
    await state.connections.deliver(connections, target, arguments, excluded=skipped)
    return Response(status_code=202)


def _excluded(call: _Call) -> set[str]:
    return set(call.request.query_params.getlist("excluded"))


async def _close(
    state: EmulatorState, call: _Call, connections: list[ClientConnection]
) -> Response:
    """Close ``connections`` but the ``excluded``, each with the ``reason`` if one is given → 204."""
    reason = call.request.query_params.get("reason")
    await state.connections.close(connections, reason, excluded=_excluded(call))
    return Response(status_code=204)


def _connection(state: EmulatorState, call: _Call) -> ClientConnection | None:
    connection = state.connections.get(call.param("connection"))
    return connection if connection is not None and connection.hub == call.hub else None


def _found(found: bool) -> Response:
    return Response(status_code=200 if found else 404)


def _connection_not_found(call: _Call) -> Response:
    return _error(
        404,
        "Warning.Connection.NotExisted",
        f"Connection {call.param('connection')!r} is not connected to hub {call.hub!r}.",
    )


# -- messages ------------------------------------------------------------------------------------


@_operation("POST", "/:send", Action.HUB_SEND)
async def send_to_hub(state: EmulatorState, call: _Call) -> Response:
    """``POST /api/hubs/{hub}/:send``: every connection of the hub but the ``excluded`` → 202."""
    return await _send(state, call, state.connections.in_hub(call.hub), excluded=True)


@_operation("POST", "/users/{user}/:send", Action.USER_SEND)
async def send_to_user(state: EmulatorState, call: _Call) -> Response:
    """``POST /api/hubs/{hub}/users/{user}/:send``: every connection of the user → 202."""
    return await _send(state, call, state.connections.of_user(call.hub, call.param("user")))


@_operation("POST", "/groups/{group}/:send", Action.GROUP_SEND)
async def send_to_group(state: EmulatorState, call: _Call) -> Response:
    """``POST /api/hubs/{hub}/groups/{group}/:send``: the group but the ``excluded`` → 202."""
    members = state.connections.in_group(call.hub, call.param("group"))
    return await _send(state, call, members, excluded=True)


@_operation("POST", "/connections/{connection}/:send", Action.CONNECTION_SEND)
async def send_to_connection(state: EmulatorState, call: _Call) -> Response:
    """``POST /api/hubs/{hub}/connections/{connection}/:send`` → 202, even if it is gone."""
    connection = _connection(state, call)
    return await _send(state, call, [connection] if connection is not None else [])


# -- group membership ----------------------------------------------------------------------------


@_operation("PUT", "/groups/{group}/connections/{connection}", Action.GROUP_WRITE)
async def add_connection_to_group(state: EmulatorState, call: _Call) -> Response:
    """``PUT /api/hubs/{hub}/groups/{group}/connections/{connection}`` → 200, or 404."""
    added = state.connections.add_to_group(call.hub, call.param("group"), call.param("connection"))
    return Response(status_code=200) if added else _connection_not_found(call)


@_operation("DELETE", "/groups/{group}/connections/{connection}", Action.GROUP_WRITE)
async def remove_connection_from_group(state: EmulatorState, call: _Call) -> Response:
    """``DELETE /api/hubs/{hub}/groups/{group}/connections/{connection}`` → 200, or 404."""
    group, connection = call.param("group"), call.param("connection")
    removed = state.connections.remove_from_group(call.hub, group, connection)
    return Response(status_code=200) if removed else _connection_not_found(call)


@_operation("PUT", "/users/{user}/groups/{group}", Action.USER_WRITE)
async def add_user_to_group(state: EmulatorState, call: _Call) -> Response:
    """``PUT /api/hubs/{hub}/users/{user}/groups/{group}[?ttl=seconds]`` → 200.

    ``ttl=0`` adds only the user's current connections; another ttl is accepted but not enforced
    (the membership lasts as long as the emulator).
    """
    ttl = call.request.query_params.get("ttl")
    if ttl is not None and not (ttl.isascii() and ttl.isdigit()):
        return _bad_request(f"ttl must be a whole number of seconds, zero or more, not {ttl!r}.")
    group, user = call.param("group"), call.param("user")
    if ttl is not None and int(ttl) == 0:
        for connection in state.connections.of_user(call.hub, user):
            state.connections.add_to_group(call.hub, group, connection.connection_id)
    else:
        state.connections.add_user_to_group(call.hub, group, user)
    return Response(status_code=200)


@_operation("DELETE", "/users/{user}/groups/{group}", Action.USER_WRITE)
async def remove_user_from_group(state: EmulatorState, call: _Call) -> Response:
    """``DELETE /api/hubs/{hub}/users/{user}/groups/{group}`` → 204."""
    state.connections.remove_user_from_group(call.hub, call.param("group"), call.param("user"))
    return Response(status_code=204)


@_operation("DELETE", "/connections/{connection}/groups", Action.GROUP_WRITE)
async def remove_connection_from_all_groups(state: EmulatorState, call: _Call) -> Response:
    """``DELETE /api/hubs/{hub}/connections/{connection}/groups`` → 200, even if it is gone (the
    specification lists no 404 here: a connection that is gone is in no group)."""
    state.connections.remove_from_all_groups(call.hub, call.param("connection"))
    return Response(status_code=200)


@_operation("DELETE", "/users/{user}/groups", Action.USER_WRITE)
async def remove_user_from_all_groups(state: EmulatorState, call: _Call) -> Response:
    """``DELETE /api/hubs/{hub}/users/{user}/groups`` → 204: the user's connections leave every
    group, and their future connections join none of them."""
    state.connections.remove_user_from_all_groups(call.hub, call.param("user"))
    return Response(status_code=204)


# -- existence -----------------------------------------------------------------------------------


@_operation("HEAD", "/connections/{connection}", Action.CONNECTION_READ)
async def check_connection(state: EmulatorState, call: _Call) -> Response:
    """``HEAD /api/hubs/{hub}/connections/{connection}`` → 200 or 404."""
    return _found(_connection(state, call) is not None)


@_operation("HEAD", "/users/{user}", Action.USER_READ)
async def check_user(state: EmulatorState, call: _Call) -> Response:
    """``HEAD /api/hubs/{hub}/users/{user}`` → 200 if the user has a connection, else 404."""
    return _found(bool(state.connections.of_user(call.hub, call.param("user"))))


@_operation("HEAD", "/groups/{group}", Action.GROUP_READ)
async def check_group(state: EmulatorState, call: _Call) -> Response:
    """``HEAD /api/hubs/{hub}/groups/{group}`` → 200 if the group has a connection, else 404."""
    return _found(bool(state.connections.in_group(call.hub, call.param("group"))))


@_operation("HEAD", "/users/{user}/groups/{group}", Action.GROUP_READ)
async def check_user_in_group(state: EmulatorState, call: _Call) -> Response:
    """``HEAD /api/hubs/{hub}/users/{user}/groups/{group}`` → 200 or 404."""
    group, user = call.param("group"), call.param("user")
    return _found(state.connections.user_in_group(call.hub, group, user))


# -- connections ---------------------------------------------------------------------------------


@_operation("DELETE", "/connections/{connection}", Action.CONNECTION_WRITE)
async def close_connection(state: EmulatorState, call: _Call) -> Response:
    """``DELETE /api/hubs/{hub}/connections/{connection}[?reason=…]`` → 200, even if it is gone."""
    connection = _connection(state, call)
    if connection is not None:
        await connection.close(call.request.query_params.get("reason"))
    return Response(status_code=200)


@_operation("POST", "/:closeConnections", Action.CONNECTION_WRITE)
async def close_all_connections(state: EmulatorState, call: _Call) -> Response:
    """``POST /api/hubs/{hub}/:closeConnections[?excluded=…&reason=…]`` → 204."""
    return await _close(state, call, state.connections.in_hub(call.hub))


@_operation("POST", "/groups/{group}/:closeConnections", Action.CONNECTION_WRITE)
async def close_group_connections(state: EmulatorState, call: _Call) -> Response:
    """``POST /api/hubs/{hub}/groups/{group}/:closeConnections[?excluded=…&reason=…]`` → 204."""
    return await _close(state, call, state.connections.in_group(call.hub, call.param("group")))


@_operation("POST", "/users/{user}/:closeConnections", Action.CONNECTION_WRITE)
async def close_user_connections(state: EmulatorState, call: _Call) -> Response:
    """``POST /api/hubs/{hub}/users/{user}/:closeConnections[?excluded=…&reason=…]`` → 204."""
    return await _close(state, call, state.connections.of_user(call.hub, call.param("user")))
