"""The two hub protocols as objects a client connection can hold, the handshake, and the payload maps
of messages sent to many clients.

A client picks its protocol in the handshake, which is always JSON: ``{"protocol":"json","version":1}``
then 0x1E; the hub answers ``{}`` then 0x1E, or ``{"error":"..."}``, before any other message. Through
SignalR Service the handshake arrives as the client's first ConnectionData, and more messages may
follow it in the same payload: ``parse_handshake_request`` hands back the bytes after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final, Protocol

from .._errors import ProtocolError
from ._hub_messages import HubMessage
from ._json_hub import (
    DEFAULT_MAX_HUB_MESSAGE_SIZE,
    RECORD_SEPARATOR,
    JsonHubMessageReader,
    write_json_message,
)
from ._msgpack_hub import MessagePackHubMessageReader, write_msgpack_message

__all__ = [
    "HUB_PROTOCOLS",
    "HubMessageReader",
    "HubProtocol",
    "JsonHubProtocol",
    "MessagePackHubProtocol",
    "get_hub_protocol",
    "handshake_response",
    "parse_handshake_request",
    "payloads_for",
]

_MAX_HANDSHAKE_SIZE: Final = 4096
"""A handshake request is about 35 bytes; past this much without a separator it is not one."""


class HubMessageReader(Protocol):
    """Turns a client's byte stream into hub messages, buffering a message that arrives in pieces."""

    @property
    def buffered(self) -> int: ...

    def feed(self, data: bytes | bytearray | memoryview) -> list[HubMessage]: ...


class HubProtocol(Protocol):
    """What a client connection needs of its hub protocol."""

    @property
    def name(self) -> str: ...

    @property
    def is_binary(self) -> bool: ...

    def write(self, message: HubMessage) -> bytes: ...

    def reader(self, *, max_message_size: int = ...) -> HubMessageReader: ...


class JsonHubProtocol:
    """The JSON hub protocol (``"json"``): text records ending in 0x1E."""

    __slots__ = ()
    name: Final = "json"
    is_binary: Final = False

    def write(self, message: HubMessage) -> bytes:
        return write_json_message(message)

    def reader(
        self, *, max_message_size: int = DEFAULT_MAX_HUB_MESSAGE_SIZE
    ) -> JsonHubMessageReader:
        return JsonHubMessageReader(max_message_size=max_message_size)


class MessagePackHubProtocol:
    """The MessagePack hub protocol (``"messagepack"``): size-prefixed MessagePack arrays."""

    __slots__ = ()
    name: Final = "messagepack"
    is_binary: Final = True

    def write(self, message: HubMessage) -> bytes:
        return write_msgpack_message(message)

    def reader(
        self, *, max_message_size: int = DEFAULT_MAX_HUB_MESSAGE_SIZE
    ) -> MessagePackHubMessageReader:
        return MessagePackHubMessageReader(max_message_size=max_message_size)


HUB_PROTOCOLS: Final[dict[str, HubProtocol]] = {
    "json": JsonHubProtocol(),
    "messagepack": MessagePackHubProtocol(),
}
"""The hub protocols by name (lower case). Hub protocol version 1 is the only one."""


def get_hub_protocol(name: str) -> HubProtocol | None:
    """The protocol a handshake names (compared case-insensitively, as the service compares them),
    or ``None`` if we do not speak it."""
    return HUB_PROTOCOLS.get(name.lower())


def payloads_for(message: HubMessage, protocols: Iterable[str]) -> dict[str, bytes]:
    """``message`` written once in each of ``protocols``: the payload map of a message to many
    clients (MultiConnectionData, UserData, BroadcastData, GroupBroadcastData, ...), which the
    service matches against each client's protocol."""
    payloads: dict[str, bytes] = {}
    for name in protocols:
        protocol = get_hub_protocol(name)
        if protocol is None:
            text = f"{name!r} is not a hub protocol; known: {', '.join(HUB_PROTOCOLS)}"
            raise ProtocolError(text)
        if protocol.name not in payloads:
            payloads[protocol.name] = protocol.write(message)
    return payloads


def parse_handshake_request(buffer: bytes | bytearray) -> tuple[str, int, bytes] | None:
    """``(protocol, version, rest)`` from the start of a client's stream, where ``rest`` is what
    follows the handshake; ``None`` while the separator has not arrived. A malformed handshake
    raises :class:`ProtocolError` whose message can be sent back in ``handshake_response``."""
    end = buffer.find(RECORD_SEPARATOR)
    if end < 0:
        if len(buffer) > _MAX_HANDSHAKE_SIZE:
            text = f"no handshake request in the first {_MAX_HANDSHAKE_SIZE} bytes"
            raise ProtocolError(text)
        return None
    try:
        request = json.loads(bytes(buffer[:end]).decode("utf-8"))
    except (ValueError, RecursionError):
        text = "the handshake request is not JSON"
        raise ProtocolError(text) from None
    if type(request) is not dict:
        text = "the handshake request should be a JSON object"
        raise ProtocolError(text)
    protocol = request.get("protocol")
    if type(protocol) is not str:
        text = "the handshake request needs 'protocol' as a string"
        raise ProtocolError(text)
    version = request.get("version")
    if type(version) is not int:
        text = "the handshake request needs 'version' as an integer"
        raise ProtocolError(text)
    return protocol, version, bytes(buffer[end + 1 :])


def handshake_response(error: str | None = None) -> bytes:
    """The hub's answer to a handshake: ``{}`` for success, else ``{"error": error}``; 0x1E after."""
    if error is None:
        return b"{}" + RECORD_SEPARATOR
    return json.dumps({"error": error}, separators=(",", ":")).encode() + RECORD_SEPARATOR
