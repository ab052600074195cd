"""The bytes of the service protocol and the hub protocols, written again from the .NET sources.

Deliberately nothing from ``signalr_asgi_auth.protocol``: raw ``msgpack`` and a size prefix of our
own, so that a misreading in the library's codec cannot hide behind the same misreading here. The
layouts follow Azure/azure-signalr ``src/Microsoft.Azure.SignalR.Protocols/ServiceProtocol.cs`` and
``src/Common/BinaryMessageParser.cs`` (7 bits a byte, least significant first, at most 5 bytes).
"""

from __future__ import annotations

import json
from typing import Any

import msgpack

RS = b"\x1e"  # the JSON hub protocol's record separator


def varint(size: int) -> bytes:
    out = bytearray()
    while True:
        low = size & 0x7F
        size >>= 7
        if size:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def pack(array: list[Any]) -> bytes:
    """One service-protocol message (or MessagePack hub message), size prefix included."""
    body: bytes = msgpack.packb(array, use_bin_type=True)
    return varint(len(body)) + body


def pack_open_connection(
    connection_id: str,
    claims: list[tuple[str, str]],
    headers: dict[str, list[str]],
    query: str,
    protocol: str,
) -> bytes:
    """OpenConnection ``[4, id, claims, headers, query, {3: protocol}]``; the claims map is written
    pair by pair because a claim type may repeat (several roles)."""
    packer = msgpack.Packer(use_bin_type=True)
    body = bytearray(packer.pack_array_header(6))
    body += packer.pack(4) + packer.pack(connection_id)
    body += packer.pack_map_header(len(claims))
    for name, value in claims:
        body += packer.pack(name) + packer.pack(value)
    body += packer.pack(headers) + packer.pack(query) + packer.pack({3: protocol})
    return varint(len(body)) + bytes(body)


class Frames:
    """Cuts a byte stream at the size prefixes; keeps an unfinished message for the next feed."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        out: list[bytes] = []
        while True:
            size = shift = 0
            for index, byte in enumerate(self.buffer[:5]):
                size |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    start = index + 1
                    break
            else:
                if len(self.buffer) >= 5:
                    message = "a size prefix longer than 5 bytes"
                    raise ValueError(message)
                return out
            if len(self.buffer) < start + size:
                return out
            out.append(self.buffer[start : start + size])
            self.buffer = self.buffer[start + size :]


def unpack(frame: bytes) -> list[Any]:
    value = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    if not isinstance(value, list) or not value:
        message = "a message that is not a non-empty array"
        raise ValueError(message)
    return value


def json_records(buffer: bytes) -> tuple[list[Any], bytes]:
    """The JSON records in ``buffer`` and what is left after the last separator."""
    *records, rest = buffer.split(RS)
    return [json.loads(record) for record in records], rest


def client_handshake(protocol: str) -> bytes:
    return json.dumps({"protocol": protocol, "version": 1}).encode() + RS


def hub_bytes(message: Any, protocol: str) -> bytes:
    """A test's hub message in ``protocol``: bytes as they are, a dict as a JSON record, a list as a
    MessagePack hub message."""
    if isinstance(message, bytes):
        return message
    if protocol == "json":
        return json.dumps(message, separators=(",", ":")).encode() + RS
    return pack(list(message))
