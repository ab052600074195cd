"""One client connection's calls to the upstream: ``connected``, its invocations, ``disconnected``.

Each call is a POST with the ``X-ASRS-*`` headers Azure SignalR Service sends: the connection id,
hub, category, event, user id, claims (``type: value, type: value``, as .NET prints claims), the
client's query (without ``access_token`` and ``id``, which are credentials) and
``X-ASRS-Signature``: ``sha256=<HEX>`` of HMAC-SHA256(access key, connection id) for each of the
resource's two keys. A template with managed-identity auth adds an RS256 Entra token of the
resource's system-assigned identity, issued by the emulator's tenant under the emulator's own URL,
so that its ``iss`` leads to the tenant's OpenID metadata.

Bodies: ``{"type":10}`` for connected, ``{"type":11[,"error"]}`` for disconnected (JSON whatever
the client's protocol), and the client's invocation as it came: a JSON client's record with its
record separator (``application/json``), a MessagePack client's array without its size prefix
(``application/x-msgpack``), as Azure's upstream and the Functions extension's parsers have it. For
an invocation the client awaits, a 200 answer's body is relayed to the client as hub-protocol
messages in its protocol (the app answers with a completion: JSON records, or size-prefixed
MessagePack arrays); 204 or an empty 200 gives a completion without a result; any other status, an
answer that is not hub messages of the client's protocol, no answer within the timeout, or an
unreachable upstream gives a completion with an error.

Calls of one connection go out one at a time, in the order the client's messages came, so the app
sees ``connected`` first. Every call is in the request log as ``upstream.call``, with the full URL
as its path and status 0 when no answer came; bearer tokens are redacted there as everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import anyio
import httpx2
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._connections import RECORD_SEPARATOR, ClientConnection
from ._service_wire import FrameReader, WireError, decode_array, size_prefix
from ._state import EmulatorState
from ._upstream import UPSTREAM_ROUTE, UpstreamSettings, UpstreamTemplate

__all__ = ["NO_ANSWER", "UpstreamCalls", "claim_pairs", "claims_header", "signature_header"]

NO_ANSWER: Final = 0
"""The status logged for an upstream call that got no HTTP answer (timeout, connection refused)."""

_MAX_ANSWER: Final = 16 * 1024 * 1024  # what Microsoft's emulator relays at most
_QUEUED: Final = 64  # client messages waiting for the upstream before the reader waits too
_CONNECTED: Final = b'{"type":10}'
_COMPLETION: Final = 3
_TRAILING: Final = " \t\r\n" + RECORD_SEPARATOR
_UNSAFE: Final = str.maketrans({"\r": " ", "\n": " ", "\x00": " "})
_CONTENT_TYPES: Final = {"json": "application/json", "messagepack": "application/x-msgpack"}

logger = logging.getLogger(__name__)

Call = Callable[[], Awaitable[None]]


class _TooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: bytes = b""
    problem: str | None = None
    """Why no usable answer came; None when ``status`` and ``body`` are the upstream's."""


class UpstreamCalls:
    """The upstream calls of one connection, made by :meth:`run` in the session's task group.

    ``client_query`` is the query the client connected with, credentials removed. The HTTP client
    is made on the first call that matches a template, and closed on exit.
    """

    def __init__(
        self, state: EmulatorState, connection: ClientConnection, client_query: str
    ) -> None:
        self._state = state
        self._connection = connection
        self._query = client_query
        self._http: httpx2.AsyncClient | None = None
        self._send: MemoryObjectSendStream[Call]
        self._receive: MemoryObjectReceiveStream[Call]
        self._send, self._receive = anyio.create_memory_object_stream[Call](_QUEUED)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._send.close()
        self._receive.close()
        if self._http is not None:
            with anyio.CancelScope(shield=True):
                await self._http.aclose()

    async def run(self) -> None:
        """Make the queued calls, one at a time, until the session ends."""
        async for call in self._receive:
            await call()

    # -- what the session asks for --------------------------------------------------------------

    async def connected(self) -> None:
        """Queue the ``connected`` event, if a template takes it."""
        await self._send.send(self._connected)

    async def invocation(self, message: Mapping[str, Any], body: bytes) -> None:
        """Queue a client invocation: ``message`` its fields as the JSON protocol names them,
        ``body`` its bytes as the upstream gets them, in the client's protocol."""

        async def call() -> None:
            await self._invoke(message, body)

        await self._send.send(call)

    async def disconnected(self, error: str | None) -> None:
        """Send the ``disconnected`` event now, if a template takes it (after the socket closed)."""
        body: dict[str, Any] = {"type": 11}
        if error:
            body["error"] = error
        await self._event("disconnected", json.dumps(body, separators=(",", ":")).encode())

    # -- the calls ------------------------------------------------------------------------------

    async def _connected(self) -> None:
        await self._event("connected", _CONNECTED)

    async def _event(self, event: str, body: bytes) -> None:
        settings = self._state.upstream.settings
        template = settings.match(self._connection.hub, "connections", event)
        if template is None:
            return
        reply = await self._post(settings, template, "connections", event, body)
        if reply.problem is not None or reply.status not in (200, 204):
            logger.warning(
                "The upstream did not take the %s event of connection %s: %s",
                event,
                self._connection.connection_id,
                reply.problem or f"status code {reply.status}",
            )

    async def _invoke(self, message: Mapping[str, Any], body: bytes) -> None:
        invocation_id = message.get("invocationId")
        awaited = invocation_id if isinstance(invocation_id, str) and invocation_id else None
        settings = self._state.upstream.settings
        routed = self._route(settings, message)
        if isinstance(routed, str):
            if awaited is not None:
                await self._complete(awaited, error=f"Invocation failed: {routed}.")
            return
        template, target = routed
        reply = await self._post(settings, template, "messages", target, body)
        if awaited is not None:
            for answer in _answers(awaited, reply, self._connection.protocol):
                if isinstance(answer, bytes):
                    self._connection.send_payload(answer)
                else:
                    await self._connection.send(answer)
        elif reply.problem is not None or not 200 <= reply.status < 300:
            logger.warning(
                "The upstream did not take %r from connection %s: %s",
                target,
                self._connection.connection_id,
                reply.problem or f"status code {reply.status}",
            )

    def _route(
        self, settings: UpstreamSettings, message: Mapping[str, Any]
    ) -> tuple[UpstreamTemplate, str] | str:
        """The template and event for an invocation, or why it goes nowhere."""
        target = message.get("target")
        if message.get("type") != 1:
            return "streaming invocations are not supported by the emulated upstream"
        if not isinstance(target, str) or not target:
            return "the invocation has no target"
        template = settings.match(self._connection.hub, "messages", target)
        if template is None:
            return (
                f"the emulated service has no upstream for hub {self._connection.hub!r}: "
                f"no upstream template takes the messages event {target!r}"
            )
        return template, target

    async def _complete(self, invocation_id: str, *, error: str) -> None:
        await self._connection.send(
            {"type": _COMPLETION, "invocationId": invocation_id, "error": error}
        )

    async def _post(
        self,
        settings: UpstreamSettings,
        template: UpstreamTemplate,
        category: str,
        event: str,
        body: bytes,
    ) -> _Reply:
        url = template.url_for(self._connection.hub, category, event)
        # Connection events are JSON whatever the client speaks; invocations in its protocol.
        content_type = _CONTENT_TYPES["json" if category == "connections" else self._protocol]
        headers, principal = self._headers(template, category, event, content_type)
        started = self._state.clock.now()
        reply = _Reply(NO_ANSWER)
        try:
            reply = await self._send_request(settings, url, headers, body)
        finally:
            parts = urlsplit(url)
            self._state.log.record(
                route=UPSTREAM_ROUTE,
                method="POST",
                path=urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
                query=parse_qsl(parts.query, keep_blank_values=True),
                headers=headers,
                status=reply.status,
                principal_oid=principal,
                at=started,
            )
        return reply

    async def _send_request(
        self, settings: UpstreamSettings, url: str, headers: list[tuple[str, str]], body: bytes
    ) -> _Reply:
        wire = [(name.encode("ascii"), value.encode("utf-8")) for name, value in headers]
        status = NO_ANSWER
        try:
            with anyio.fail_after(settings.timeout):
                request = self._client(settings).stream(
                    "POST", url, content=body, headers=wire, timeout=settings.timeout
                )
                async with request as response:
                    status = response.status_code
                    return _Reply(status, await _read_limited(response))
        except (TimeoutError, httpx2.TimeoutException):
            problem = f"the upstream did not answer within {settings.timeout:g} s"
            status = NO_ANSWER
        except _TooLarge:
            problem = "the upstream's answer is larger than 16 MB"
        except (httpx2.HTTPError, OSError) as error:
            problem = f"the upstream could not be reached ({type(error).__name__})"
            status = NO_ANSWER
        return _Reply(status, problem=problem)

    def _client(self, settings: UpstreamSettings) -> httpx2.AsyncClient:
        if self._http is None:
            # Proxies from the environment only for remote upstreams: loopback calls go direct.
            self._http = httpx2.AsyncClient(trust_env=settings.allow_remote)
        return self._http

    @property
    def _protocol(self) -> str:
        return "messagepack" if self._connection.protocol == "messagepack" else "json"

    def _headers(
        self, template: UpstreamTemplate, category: str, event: str, content_type: str
    ) -> tuple[list[tuple[str, str]], str | None]:
        """The request headers, and the principal whose bearer token is among them."""
        connection = self._connection
        headers = [
            ("X-ASRS-Connection-Id", connection.connection_id),
            ("X-ASRS-Hub", connection.hub),
            ("X-ASRS-Category", category),
            ("X-ASRS-Event", event),
        ]
        if connection.user_id:
            headers.append(("X-ASRS-User-Id", connection.user_id))
        if claims := claims_header(connection.claims):
            headers.append(("X-ASRS-User-Claims", claims))
        if self._query:
            headers.append(("X-ASRS-Client-Query", self._query))
        keys = self._state.resource_keys
        headers.append(("X-ASRS-Signature", signature_header(connection.connection_id, keys)))
        headers.append(("Content-Type", content_type))
        principal = None
        if template.auth is not None:
            identity = self._state.system_identity
            issued = self._state.entra.issue(
                identity, audience=template.auth.resource, issuer_base=self._issuer_base()
            )
            headers.append(("Authorization", f"Bearer {issued.token}"))
            principal = identity.object_id
        return [(name, value.translate(_UNSAFE)) for name, value in headers], principal

    def _issuer_base(self) -> str:
        # Where the app finds this tenant's OpenID metadata: the emulator's own address.
        urls = self._state.address.urls()
        return urls[0] if urls else "http://127.0.0.1"


def signature_header(connection_id: str, keys: tuple[str, ...]) -> str:
    """``sha256=<HEX>`` for each key, comma-joined, as the service signs upstream requests."""
    message = connection_id.encode()
    return ",".join(
        "sha256=" + hmac.new(key.encode(), message, hashlib.sha256).hexdigest().upper()
        for key in keys
    )


def claim_pairs(claims: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A token's claims as (type, value) pairs, as the service hands them on: a list claim (roles)
    gives one pair per item; values that are not text are written as JSON."""
    pairs: list[tuple[str, str]] = []
    for claim_type, value in claims.items():
        for item in value if isinstance(value, list) else [value]:
            text = item if isinstance(item, str) else json.dumps(item, separators=(",", ":"))
            pairs.append((claim_type, text))
    return pairs


def claims_header(claims: Mapping[str, Any]) -> str:
    """The connection's claims as ``type: value`` pairs; a list claim (roles) gives one pair per
    item, and values that are not text are written as JSON."""
    return ", ".join(f"{claim_type}: {value}" for claim_type, value in claim_pairs(claims))


def _answers(invocation_id: str, reply: _Reply, protocol: str) -> list[dict[str, Any] | bytes]:
    """What the client gets for an awaited invocation, given the upstream's reply: messages to
    write in the client's protocol, or (MessagePack) the upstream's own size-prefixed frames."""

    def failed(reason: str) -> list[dict[str, Any] | bytes]:
        return [{"type": _COMPLETION, "invocationId": invocation_id, "error": reason}]

    if reply.problem is not None:
        return failed(f"Invocation failed, {reply.problem}.")
    binary = protocol == "messagepack"
    text = "" if binary else reply.body.decode("utf-8", "replace").strip(_TRAILING)
    if reply.status == 204 or (reply.status == 200 and not (reply.body if binary else text)):
        return [{"type": _COMPLETION, "invocationId": invocation_id}]
    if reply.status != 200:
        return failed(f"Invocation failed, status code {reply.status}")
    messages: list[dict[str, Any]] | list[bytes] | None = (
        _frames(reply.body) if binary else _records(text)
    )
    if messages is None:
        kind = "MessagePack" if binary else "JSON"
        return failed(
            f"Invocation failed, the upstream's answer is not a {kind} hub protocol message."
        )
    return list(messages)


def _frames(body: bytes) -> list[bytes] | None:
    """Each size-prefixed MessagePack hub message of ``body``, prefix included; None unless the
    whole body is such messages."""
    reader = FrameReader(max_message_size=_MAX_ANSWER)
    try:
        payloads = reader.feed_payloads(body)
        for payload in payloads:
            decode_array(payload)
    except WireError:
        return None
    if not payloads or reader.buffered:
        return None
    return [size_prefix(len(payload)) + payload for payload in payloads]


def _records(text: str) -> list[dict[str, Any]] | None:
    messages: list[dict[str, Any]] = []
    for record in text.split(RECORD_SEPARATOR):
        if not record.strip():
            continue
        try:
            message = json.loads(record)
        except ValueError:
            return None
        if not isinstance(message, dict) or not isinstance(message.get("type"), int):
            return None
        messages.append(message)
    return messages or None


async def _read_limited(response: httpx2.Response) -> bytes:
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > _MAX_ANSWER:
            raise _TooLarge
    return bytes(data)
