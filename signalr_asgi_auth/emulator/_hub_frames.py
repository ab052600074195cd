"""The few SignalR hub-protocol messages the emulated service writes itself (REST API sends, pings,
close messages, completions), in the client's protocol, and the client's handshake request.

JSON messages are objects followed by the record separator ``\\x1e``; MessagePack messages are
arrays behind the same size prefix as the service protocol (dotnet/aspnetcore ``HubProtocol.md``).
The handshake is JSON whatever the protocol.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgpack

from ._service_wire import size_prefix

__all__ = [
    "HANDSHAKE_LIMIT",
    "HUB_PROTOCOLS",
    "RECORD_SEPARATOR",
    "encode_hub_message",
    "encode_json_message",
    "read_handshake",
]

RECORD_SEPARATOR = "\x1e"
HUB_PROTOCOLS = frozenset({"json", "messagepack"})
HANDSHAKE_LIMIT = 32 * 1024
"""Bytes a client may send before its handshake request ends."""

_INVOCATION, _COMPLETION, _PING, _CLOSE = 1, 3, 6, 7
_ERROR_RESULT, _VOID_RESULT, _NON_VOID_RESULT = 1, 2, 3


def encode_json_message(message: Mapping[str, Any]) -> str:
    """One JSON hub-protocol frame: compact JSON followed by the record separator."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False) + RECORD_SEPARATOR


def encode_hub_message(protocol: str, message: Mapping[str, Any]) -> str | bytes:
    """``message`` (a JSON hub message: an invocation, completion, ping or close) in ``protocol``:
    text for ``json``, bytes for ``messagepack``."""
    if protocol != "messagepack":
        return encode_json_message(message)
    kind = message["type"]
    fields: list[Any]
    if kind == _INVOCATION:
        fields = [kind, {}, message.get("invocationId"), message["target"], message["arguments"]]
    elif kind == _COMPLETION:
        fields = [kind, {}, message["invocationId"]]
        if "error" in message:
            fields += [_ERROR_RESULT, message["error"]]
        elif "result" in message:
            fields += [_NON_VOID_RESULT, message["result"]]
        else:
            fields.append(_VOID_RESULT)
    elif kind == _PING:
        fields = [kind]
    elif kind == _CLOSE:
        fields = [kind, message.get("error"), bool(message.get("allowReconnect", False))]
    else:
        msg = f"The emulated service does not write hub messages of type {kind!r}."
        raise ValueError(msg)
    packed: bytes = msgpack.packb(fields, use_bin_type=True)
    return size_prefix(len(packed)) + packed


def read_handshake(buffer: bytes) -> tuple[str | None, str | None] | None:
    """The protocol a complete handshake request in ``buffer`` names, or why it is refused, as
    ``(protocol, None)`` or ``(None, error)``; None while the request is incomplete."""
    end = buffer.find(RECORD_SEPARATOR.encode())
    if end < 0:
        if len(buffer) > HANDSHAKE_LIMIT:
            return None, f"The handshake request is longer than {HANDSHAKE_LIMIT} bytes."
        return None
    try:
        request = json.loads(buffer[:end].decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None, "The handshake request is not valid JSON."
    if not isinstance(request, dict):
        return None, "The handshake request must be a JSON object."
    protocol = request.get("protocol")
    if protocol not in HUB_PROTOCOLS:
        return None, f"The protocol {protocol!r} is not supported."
    return str(protocol), None
