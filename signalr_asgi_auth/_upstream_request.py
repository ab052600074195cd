"""What an upstream request from Azure SignalR Service says, read from its headers and body.

The service POSTs one request per client invocation (category ``messages``, event = the hub
method) and per connection event (category ``connections``, event ``connected`` or
``disconnected``), with these headers::

    X-ASRS-Connection-Id   the client connection          X-ASRS-Hub           the hub
    X-ASRS-Category        connections | messages         X-ASRS-Event         the event
    X-ASRS-User-Id         the user, when there is one    X-ASRS-Client-Query  the client's query
    X-ASRS-User-Claims     the connection's claims as .NET lists them: "type: value, type: value"

and a JSON body: ``{"type": 1, "invocationId"?, "target", "arguments"}`` for an invocation,
``{"type": 11, "error"?}`` for ``disconnected``. The invocations of a client on the MessagePack hub
protocol come as ``Content-Type: application/x-msgpack``: the client's invocation array
``[1, headers, invocationId | nil, target, arguments, ...]`` without the size prefix it had on the
WebSocket (``docs/design/serverless-messagepack.md``). Anything malformed is an
:class:`InvalidInputError` (400) naming what is wrong; nothing here raises anything else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import parse_qsl

from starlette.datastructures import Headers

from ._errors import InvalidInputError, ProtocolError, shown
from .protocol._hub_messages import Invocation
from .protocol._msgpack_hub import decode_msgpack_message

__all__ = [
    "AuthMethod",
    "Category",
    "HubProtocolName",
    "RequestBody",
    "RequestHead",
    "UpstreamRequest",
    "read_body",
    "read_head",
]

Category: TypeAlias = Literal["connections", "messages"]
AuthMethod: TypeAlias = Literal["entra", "signature"]
HubProtocolName: TypeAlias = Literal["json", "messagepack"]

_CONNECTION_EVENTS: Final = frozenset({"connected", "disconnected"})
_SYSTEM_PREFIX: Final = "asrs.s."
_USER_ID_CLAIM: Final = "asrs.s.uid"
_INVOCATION: Final = 1
_MESSAGEPACK_MEDIA_TYPES: Final = frozenset({"application/x-msgpack", "application/msgpack"})
_TRAILING: Final = b" \t\r\n\x1e"  # whitespace and the JSON hub protocol's record separator
# The client's own SignalR token rides in the query of browser WebSockets; the app never needs it.
_DROPPED_QUERY: Final = frozenset({"access_token"})


def _empty() -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamRequest:
    """One verified upstream call: a client invoked a hub method, connected or disconnected."""

    hub: str
    category: Category
    event: str
    """The hub method for ``messages``; ``connected`` or ``disconnected`` for ``connections``."""
    connection_id: str
    user_id: str | None = None
    claims: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    """The connection's claims by type; a type given several times (roles) has several values."""
    query: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    """The query string the client connected with, without ``access_token``."""
    arguments: tuple[Any, ...] = ()
    """The invocation's arguments (JSON values); empty for connection events."""
    invocation_id: str | None = None
    """Set when the client awaits a result (``invoke``); ``None`` for ``send`` and for events."""
    error: str | None = None
    """Why the connection closed, for ``disconnected``; ``None`` when it closed cleanly."""
    authenticated_by: AuthMethod
    """``"entra"`` (a valid bearer token) or ``"signature"`` (a valid ``X-ASRS-Signature``)."""
    principal_id: str | None = None
    """The bearer token's ``oid`` (the service's managed identity) when authenticated by Entra."""
    protocol: HubProtocolName = "json"
    """The client's hub protocol, as the body's content type says: ``"messagepack"`` for an
    ``application/x-msgpack`` invocation, whose completion is then answered in MessagePack."""

    def claim(self, claim_type: str) -> str | None:
        """The first value of ``claim_type``, or ``None``."""
        values = self.claims.get(claim_type)
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class RequestHead:
    """What the headers say; read before the credentials are checked."""

    hub: str
    category: Category
    event: str
    connection_id: str
    user_id: str | None
    claims: Mapping[str, tuple[str, ...]]
    query: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class RequestBody:
    """What the body says; read only once the credentials are accepted."""

    arguments: tuple[Any, ...] = ()
    invocation_id: str | None = None
    error: str | None = None
    protocol: HubProtocolName = "json"


def _malformed(problem: str) -> InvalidInputError:
    return InvalidInputError(f"Malformed upstream request: {problem}.")


def _text(raw: str) -> str:
    """A header value as the service meant it: ASGI decodes header bytes as Latin-1, while
    non-ASCII user ids and claims are most likely UTF-8."""
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def _required(headers: Headers, name: str) -> str:
    values = headers.getlist(name)
    if len(values) != 1 or not values[0].strip():
        problem = "is missing or empty" if len(values) < 2 else "is given more than once"
        problem = f"the header {name} {problem}"
        raise _malformed(problem)
    return values[0].strip()


def read_head(headers: Headers) -> RequestHead:
    """The ``X-ASRS-*`` headers, checked: the connection id, hub, category and event are required;
    the category is ``connections`` (events ``connected``/``disconnected``) or ``messages``."""
    connection_id = _required(headers, "X-ASRS-Connection-Id")
    hub = _text(_required(headers, "X-ASRS-Hub"))
    category = _required(headers, "X-ASRS-Category").lower()
    event = _text(_required(headers, "X-ASRS-Event"))
    if category == "connections":
        if event.lower() not in _CONNECTION_EVENTS:
            problem = f"the connections event {shown(event)} is neither connected nor disconnected"
            raise _malformed(problem)
        event = event.lower()
    elif category != "messages":
        problem = f"the category {shown(category)} is neither connections nor messages"
        raise _malformed(problem)
    user_id = _text(headers.get("x-asrs-user-id", "")).strip()
    claims = _read_claims(", ".join(headers.getlist("x-asrs-user-claims")))
    _check_system_claims(claims, user_id)
    return RequestHead(
        hub=hub,
        category="connections" if category == "connections" else "messages",
        event=event,
        connection_id=connection_id,
        user_id=user_id or None,
        claims=claims,
        query=_read_query(", ".join(headers.getlist("x-asrs-client-query"))),
    )


def _check_system_claims(claims: Mapping[str, tuple[str, ...]], user_id: str) -> None:
    """Refuse a claims header that contradicts itself or the service.

    The header cannot be read unambiguously when a value holds ``", "`` and ``": "`` (this
    library refuses to sign such values; other servers may not). The service's own claims
    (``asrs.s.*``) come once each and the user id is the one in ``X-ASRS-User-Id``: anything else
    means a value was read as claims of its own, and the request is refused rather than handing
    the app an identity nobody issued.
    """
    for claim_type, values in claims.items():
        if claim_type.startswith(_SYSTEM_PREFIX) and len(values) > 1:
            problem = f"X-ASRS-User-Claims names {claim_type} more than once"
            raise _malformed(problem)
    uid = claims.get(_USER_ID_CLAIM)
    if uid and user_id and uid[0] != user_id:
        problem = (
            f"X-ASRS-User-Claims gives {_USER_ID_CLAIM} {shown(uid[0])}, "
            f"which is not the user {shown(user_id)} of X-ASRS-User-Id"
        )
        raise _malformed(problem)


def _read_claims(raw: str) -> Mapping[str, tuple[str, ...]]:
    """``type: value`` pairs joined by commas, as the service writes .NET claims (a value holding
    a comma continues the pair before); a JSON object of strings or string lists is read too."""
    text = _text(raw).strip()
    if not text:
        return _empty()
    pairs = _json_claims(text) if text.startswith("{") else _listed_claims(text)
    claims: dict[str, list[str]] = {}
    for claim_type, value in pairs:
        claims.setdefault(claim_type, []).append(value)
    return MappingProxyType({name: tuple(values) for name, values in claims.items()})


def _listed_claims(text: str) -> list[tuple[str, str]]:
    pairs: list[list[str]] = []
    for item in text.split(","):
        claim_type, separator, value = item.partition(": ")
        if separator and claim_type.strip():
            pairs.append([claim_type.strip(), value])
        elif pairs:
            pairs[-1][1] += "," + item
        else:
            problem = "X-ASRS-User-Claims is not a list of 'type: value' pairs"
            raise _malformed(problem)
    return [(claim_type, value.strip()) for claim_type, value in pairs]


def _json_claims(text: str) -> list[tuple[str, str]]:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        problem = "X-ASRS-User-Claims starts like JSON but is not valid JSON"
        raise _malformed(problem) from None
    if not isinstance(document, dict):
        problem = "X-ASRS-User-Claims is JSON but not an object"
        raise _malformed(problem)
    pairs: list[tuple[str, str]] = []
    for claim_type, value in document.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in values):
            problem = f"X-ASRS-User-Claims gives {shown(claim_type)} a value that is not text"
            raise _malformed(problem)
        pairs.extend((claim_type, item) for item in values)
    return pairs


def _read_query(raw: str) -> Mapping[str, tuple[str, ...]]:
    query: dict[str, list[str]] = {}
    for name, value in parse_qsl(_text(raw).strip().removeprefix("?"), keep_blank_values=True):
        if name not in _DROPPED_QUERY:
            query.setdefault(name, []).append(value)
    return MappingProxyType({name: tuple(values) for name, values in query.items()})


def read_body(raw: bytes, headers: Headers, head: RequestHead) -> RequestBody:
    """The body: an invocation for ``messages`` (JSON, or MessagePack when the content type says
    ``application/x-msgpack``), the close error for ``disconnected`` (always JSON, as the service
    sends connection events). A connection event may come with an empty body."""
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type in _MESSAGEPACK_MEDIA_TYPES:
        return _read_messagepack(raw, head)
    text = raw.rstrip(_TRAILING)
    if not text and head.category == "connections":
        return RequestBody()
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        problem = "the body is not JSON"
        raise _malformed(problem) from None
    if not isinstance(document, dict):
        problem = "the body is not a JSON object"
        raise _malformed(problem)
    # The service writes camelCase; its docs and Microsoft's emulator write some names PascalCase.
    fields = {str(name).lower(): value for name, value in document.items()}
    if head.category == "connections":
        error = fields.get("error")
        return RequestBody(error=error if isinstance(error, str) and error else None)
    return _read_invocation(fields, head)


def _read_messagepack(raw: bytes, head: RequestHead) -> RequestBody:
    """A MessagePack client's invocation, read by the package's MessagePack hub-protocol codec."""
    if head.category == "connections":
        if not raw:
            return RequestBody()
        problem = "a connection event's body is MessagePack; the service sends those as JSON"
        raise _malformed(problem)
    if not raw:
        problem = "the body is empty"
        raise _malformed(problem)
    try:
        message = decode_msgpack_message(raw)
    except ProtocolError as error:
        problem = f"the body is not a MessagePack invocation: {error}"
        raise _malformed(problem) from None
    if not isinstance(message, Invocation):
        kind = "unknown" if message is None else message.TYPE
        problem = f"the body is not an invocation message (type {kind})"
        raise _malformed(problem)
    fields = {
        "target": message.target,
        "arguments": list(message.arguments),
        "invocationid": message.invocation_id,
    }
    return _read_invocation(fields, head, protocol="messagepack")


def _read_invocation(
    fields: dict[str, Any], head: RequestHead, *, protocol: HubProtocolName = "json"
) -> RequestBody:
    kind = fields.get("type", _INVOCATION)
    if kind != _INVOCATION or isinstance(kind, bool):
        problem = f"the body is not an invocation message (type {shown(kind)})"
        raise _malformed(problem)
    target = fields.get("target")
    if target is not None and (not isinstance(target, str) or target.lower() != head.event.lower()):
        problem = f"the body's target {shown(target)} is not the event {shown(head.event)}"
        raise _malformed(problem)
    arguments = fields.get("arguments", [])
    if not isinstance(arguments, list):
        problem = "the body's arguments are not a JSON array"
        raise _malformed(problem)
    invocation_id = fields.get("invocationid")
    if invocation_id is not None and not isinstance(invocation_id, str):
        problem = "the body's invocationId is not a string"
        raise _malformed(problem)
    return RequestBody(
        arguments=tuple(arguments), invocation_id=invocation_id or None, protocol=protocol
    )
