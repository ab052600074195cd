"""Admitting an app server's connection at ``/server/?hub=…&cid=…`` (Default mode), before the
WebSocket upgrade.

Azure takes two kinds of ``Authorization: Bearer`` token here:

- a Microsoft Entra token (RS256, audience ``https://signalr.azure.com``) of an identity holding a
  role with the data action ``Microsoft.SignalRService/SignalR/serverConnection/write`` (SignalR
  App Server or SignalR Service Owner) at the resource or above: 401 for a bad token, 403 naming
  the roles for an identity without one;
- a token signed with an access key (HS256/HS512; a key of the resource or a temporary key still
  valid) whose ``aud`` is ``{scheme}://{host}/server/?hub={hub}``: the host without its port, as
  the .NET SDK builds it, all in lower case, the hub with its application prefix: 401 otherwise.

Refusals are HTTP responses with a JSON body ``{"code", "message"}`` saying why.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from ._client_auth import ClientTokenError, hub_audience, is_key_signed, verify_client_token
from ._client_endpoint import served_urls
from ._data_plane import _authorize, _bearer_token, _unauthorized
from ._roles import Action
from ._state import EmulatorState

__all__ = ["ServerAdmission", "admit_server", "server_audiences"]

_MAX_ID = 256


@dataclass(frozen=True, slots=True)
class ServerAdmission:
    """A server connection let through: its hub, ``cid``, server id and who authenticated it."""

    hub: str
    connection_id: str
    server_id: str
    target: str | None
    principal_oid: str | None


def server_audiences(base_urls: list[str], hub: str) -> list[str]:
    """The audiences a key-signed server token for ``hub`` may carry: one per host the service is
    reached at (the SDK's ``AudienceBaseUrl``: no port), in lower case."""
    return list(dict.fromkeys(hub_audience(url, "server", hub) for url in base_urls))


def admit_server(state: EmulatorState, connection: HTTPConnection) -> ServerAdmission | Response:
    """The admission of a server connection, or the response that refuses it."""
    query = connection.query_params
    hubs = query.getlist("hub")
    if len(hubs) != 1 or not hubs[0].strip():
        return _bad_request("The 'hub' query parameter is required, once.")
    hub = hubs[0].strip().lower()
    connection_id = query.get("cid") or secrets.token_hex(16)
    server_id = connection.headers.get("x-asrs-server-id") or connection_id
    if len(connection_id) > _MAX_ID or len(server_id) > _MAX_ID:
        return _bad_request(f"'cid' and X-ASRS-Server-Id must be at most {_MAX_ID} characters.")
    token = _bearer_token(connection)
    admission = ServerAdmission(hub, connection_id, server_id, query.get("target"), None)
    if token is None:
        message = "The server connection has no 'Authorization: Bearer <token>' header."
        return _unauthorized(message, token_presented=False)
    if is_key_signed(token):
        try:
            verify_client_token(
                token,
                hub=hub,
                audiences=server_audiences(served_urls(state, connection), hub),
                keys=state.access_keys,
                resource_keys=state.resource_keys,
                now=state.clock.now(),
            )
        except ClientTokenError as error:
            return _unauthorized(error.description, token_presented=True)
        return admission
    claims = _authorize(state, connection, Action.SERVER_CONNECTION_WRITE)
    if isinstance(claims, Response):
        return claims
    return ServerAdmission(hub, connection_id, server_id, admission.target, claims["oid"])


def _bad_request(message: str) -> Response:
    return JSONResponse({"code": "BadRequest", "message": message}, status_code=400)
