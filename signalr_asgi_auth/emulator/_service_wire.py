"""The service protocol's bytes as the emulated service reads and writes them.

Each message is a MessagePack array behind a size prefix of 7 bits a byte, least significant group
first, at most 5 bytes (Azure/azure-signalr ``BinaryMessageFormatter.cs``/``BinaryMessageParser.cs``).
A WebSocket message may hold several messages or part of one, so the reader keeps what it has not
used. Messages are read by position, as the service's own readers do, so older servers' shorter
arrays pass; what each position holds is checked where it is used (``Fields``).

The emulator keeps its own few lines for this rather than the package's codec: where it stands for
Azure it should not share the library's mistakes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgpack

__all__ = [
    "MAX_MESSAGE_SIZE",
    "Fields",
    "FrameReader",
    "WireError",
    "decode_array",
    "frame",
    "open_connection",
]

MAX_MESSAGE_SIZE = 16 * 1024 * 1024
"""The largest message the emulated service reads; a bigger size prefix is a protocol error."""

_PREFIX_BYTES = 5


class WireError(ValueError):
    """Bytes that are not service-protocol messages; the text says what is wrong."""


def size_prefix(size: int) -> bytes:
    out = bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        if size:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def frame(fields: Sequence[Any]) -> bytes:
    """One message: the size prefix and the MessagePack array of ``fields`` (bytes as ``bin``)."""
    packed: bytes = msgpack.packb(list(fields), use_bin_type=True)
    return size_prefix(len(packed)) + packed


def open_connection(
    connection_id: str,
    claims: Iterable[tuple[str, str]],
    headers: Mapping[str, Sequence[str]],
    query: str,
    protocol: str,
) -> bytes:
    """OpenConnection ``[4, id, claims, headers, query, {3: protocol}]``, its claims map written by
    hand: a claim type may repeat (several ``role`` claims), which a dict cannot hold."""
    packer = msgpack.Packer(use_bin_type=True)
    pairs = list(claims)
    parts = [packer.pack_array_header(6), packer.pack(4), packer.pack(connection_id)]
    parts.append(packer.pack_map_header(len(pairs)))
    for name, value in pairs:
        parts += [packer.pack(name), packer.pack(value)]
    parts.append(packer.pack({name: list(values) for name, values in headers.items()}))
    parts += [packer.pack(query), packer.pack({3: protocol})]
    packed = b"".join(parts)
    return size_prefix(len(packed)) + packed


class FrameReader:
    """Bytes in, whole messages out: ``feed`` keeps a partial message for the next call."""

    def __init__(self, *, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self._max = max_message_size

    @property
    def buffered(self) -> int:
        """Bytes of a message not yet whole."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[list[Any]]:
        return [decode_array(payload) for payload in self.feed_payloads(data)]

    def feed_payloads(self, data: bytes) -> list[bytes]:
        """The whole messages' MessagePack bytes, without their size prefixes."""
        self._buffer += data
        payloads: list[bytes] = []
        while True:
            header = self._header()
            if header is None:
                return payloads
            used, size = header
            if len(self._buffer) < used + size:
                return payloads
            payloads.append(bytes(self._buffer[used : used + size]))
            del self._buffer[: used + size]

    def _header(self) -> tuple[int, int] | None:
        size = 0
        for index in range(min(len(self._buffer), _PREFIX_BYTES)):
            byte = self._buffer[index]
            size |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                if size > self._max:
                    msg = f"a message of {size} bytes is over the {self._max}-byte limit"
                    raise WireError(msg)
                return index + 1, size
        if len(self._buffer) >= _PREFIX_BYTES:
            msg = "a size prefix longer than 5 bytes"
            raise WireError(msg)
        return None


def decode_array(payload: bytes) -> list[Any]:
    """One message: a MessagePack array starting with its integer type."""
    try:
        message = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as error:
        msg = f"a message that is not MessagePack ({type(error).__name__})"
        raise WireError(msg) from None
    if not isinstance(message, list) or not message or not _is_int(message[0]):
        msg = "a message that is not an array starting with its type"
        raise WireError(msg)
    return message


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Fields:
    """One message's array, read by position: a missing tail field gives the default, a field of
    the wrong kind a :class:`WireError` naming the message type and position."""

    def __init__(self, message: list[Any]) -> None:
        self.message = message
        self.type: int = message[0]

    def __len__(self) -> int:
        return len(self.message)

    def _get(self, index: int) -> Any:
        return self.message[index] if index < len(self.message) else None

    def _wrong(self, index: int, kind: str) -> WireError:
        value = self._get(index)
        return WireError(
            f"message type {self.type}: field {index} must be {kind}, not {type(value).__name__}"
        )

    def text(self, index: int) -> str:
        value = self._get(index)
        if not isinstance(value, str):
            raise self._wrong(index, "a string")
        return value

    def optional_text(self, index: int) -> str | None:
        value = self._get(index)
        if value is not None and not isinstance(value, str):
            raise self._wrong(index, "a string or nil")
        return value

    def integer(self, index: int) -> int:
        value = self._get(index)
        if not _is_int(value):
            raise self._wrong(index, "an integer")
        return int(value)

    def texts(self, index: int) -> list[str]:
        value = self._get(index)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._wrong(index, "an array of strings")
        return value

    def payloads(self, index: int) -> dict[str, bytes]:
        """A payload map keyed by protocol name, the names lower-cased (the service compares them
        without regard to case)."""
        value = self._get(index)
        if not isinstance(value, dict) or not all(
            isinstance(name, str) and isinstance(payload, bytes) for name, payload in value.items()
        ):
            raise self._wrong(index, "a map of protocol names to binary payloads")
        return {name.lower(): payload for name, payload in value.items()}

    def binary(self, index: int) -> bytes:
        value = self._get(index)
        if not isinstance(value, bytes):
            raise self._wrong(index, "binary")
        return value

    def ext(self, index: int) -> dict[int, Any]:
        value = self._get(index)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._wrong(index, "a map")
        return {key: item for key, item in value.items() if _is_int(key)}
