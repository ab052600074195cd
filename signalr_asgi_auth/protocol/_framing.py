"""The variable-length size prefix both binary protocols put before each message.

The size is written 7 bits a byte, least significant group first, the high bit saying "more follows";
at most 5 bytes, so at most 2**31 - 1 (the .NET parser refuses anything bigger). A WebSocket message
may hold several framed messages or a part of one, so the reader keeps what it has not used yet.
"""

from __future__ import annotations

from typing import NoReturn

from .._errors import ProtocolError

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "FrameReader",
    "MessageTooLargeError",
    "OversizedFrame",
    "size_prefix",
    "write_frame",
]

_MAX_PREFIX_BYTES = 5
_MAX_SIZE = 2**31 - 1

DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
"""The largest message a reader accepts unless told otherwise: far above what SignalR Service sends
(it splits big client messages into partial ConnectionData), small enough that a corrupt prefix
cannot make a reader wait for gigabytes."""

# The prefixes of the sizes a message usually has, written once.
_SMALL_PREFIXES = tuple(bytes([n]) for n in range(128))


def size_prefix(size: int) -> bytes:
    """The size prefix for a message of ``size`` bytes."""
    if size < 128:
        if size < 0:
            message = f"a message size cannot be negative, got {size}"
            raise ProtocolError(message)
        return _SMALL_PREFIXES[size]
    if size < 0x4000:
        return bytes(((size & 0x7F) | 0x80, size >> 7))
    if size > _MAX_SIZE:
        message = f"a message of {size} bytes is too big for the size prefix (at most {_MAX_SIZE})"
        raise ProtocolError(message)
    out = bytearray()
    while size >= 0x80:
        out.append((size & 0x7F) | 0x80)
        size >>= 7
    out.append(size)
    return bytes(out)


def write_frame(payload: bytes) -> bytes:
    """``payload`` behind its size prefix."""
    return size_prefix(len(payload)) + payload


class MessageTooLargeError(ProtocolError):
    """A reader met a message over its limit: the stream is malformed only for being too big, so
    the reader's owner may say so in the words it chooses (the hub layer says ASP.NET Core's)."""


class OversizedFrame(bytes):
    """A message over the limit that a reader skipped: its first bytes (enough to say whose it
    is), and in ``size`` how big it was. The rest went by without being held."""

    size: int

    def __new__(cls, head: bytes | bytearray, size: int) -> OversizedFrame:
        frame = super().__new__(cls, head)
        frame.size = size
        return frame


class FrameReader:
    """Splits a byte stream into the payloads of size-prefixed messages.

    ``feed`` takes whatever arrived (a WebSocket message, a part of one, several messages) and returns
    the payloads it completed, in order; the rest waits for the next ``feed``. A bad prefix raises
    :class:`ProtocolError`, and so does every ``feed`` after it: the stream has lost its place.

    A message over ``max_message_size`` breaks the stream too, unless ``keep_oversized`` is given:
    then its first ``keep_oversized`` bytes come out as an :class:`OversizedFrame` in its place
    and the reader goes on after it (a stream that carries many parties' messages need not end for
    one party's big one).
    """

    __slots__ = (
        "_broken",
        "_buffer",
        "_head",
        "_keep",
        "_max_message_size",
        "_skip_left",
        "_skip_size",
        "_wanted",
    )

    def __init__(
        self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, keep_oversized: int = 0
    ) -> None:
        if not 0 < max_message_size <= _MAX_SIZE:
            message = f"max_message_size must be between 1 and {_MAX_SIZE}, got {max_message_size}"
            raise ValueError(message)
        self._max_message_size = max_message_size
        self._buffer = bytearray()
        self._broken: str | None = None
        # How many bytes the buffer must hold before its first message is whole (0: unknown).
        # A message arriving in many small pieces is then not read again at every piece.
        self._wanted = 0
        self._keep = keep_oversized
        self._head = bytearray()  # the first bytes of the oversized message being skipped
        self._skip_left = 0  # how much of it is still to come
        self._skip_size = 0

    @property
    def buffered(self) -> int:
        """How many bytes wait for the rest of their message."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        if self._broken is not None:
            raise ProtocolError(self._broken)
        if self._skip_left:
            return self._skip(data)
        if not self._buffer and type(data) is bytes and data:
            # The common case: one whole message with a 1- or 2-byte prefix, nothing left over.
            end = len(data)
            first = data[0]
            if first < 0x80:
                if first + 1 == end and first <= self._max_message_size:
                    return [data[1:]]
            elif end > 1 and data[1] < 0x80:
                size = (first & 0x7F) | (data[1] << 7)
                if size + 2 == end and size <= self._max_message_size:
                    return [data[2:]]
        if self._buffer:
            self._buffer += data
            if len(self._buffer) < self._wanted:
                return []
            source: bytes | bytearray = self._buffer
        else:
            # The common case: nothing left over, so read the new bytes where they are.
            source = bytes(data)
        payloads: list[bytes] = []
        position = 0
        end = len(source)
        self._wanted = 0
        while position < end:
            size, header = self._read_prefix(source, position, end)
            if header == 0:
                break
            start = position + header
            if size > self._max_message_size:  # only when oversized messages are skipped
                rest = source[start:]
                self._buffer.clear()
                self._skip_left = self._skip_size = size
                return payloads + self._skip(rest)
            stop = start + size
            if stop > end:
                self._wanted = stop - position
                break
            payloads.append(bytes(source[start:stop]))
            position = stop
        if source is self._buffer:
            del self._buffer[:position]
        elif position < end:
            self._buffer += source[position:]
        return payloads

    def _read_prefix(self, source: bytes | bytearray, position: int, end: int) -> tuple[int, int]:
        """(size, prefix length) of the message at ``position``; prefix length 0 while incomplete."""
        size = 0
        shift = 0
        for index in range(_MAX_PREFIX_BYTES):
            if position + index >= end:
                return 0, 0
            byte = source[position + index]
            size |= (byte & 0x7F) << shift
            if byte < 0x80:
                if size > self._max_message_size and (not self._keep or size > _MAX_SIZE):
                    self._fail(
                        f"a message of {size} bytes is over the limit of "
                        f"{self._max_message_size} bytes",
                        MessageTooLargeError,
                    )
                return size, index + 1
            shift += 7
        self._fail(f"a size prefix is longer than {_MAX_PREFIX_BYTES} bytes")

    def _skip(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Let ``data`` go by as part of the oversized message, keeping its first bytes; once it
        has all gone by, the :class:`OversizedFrame`, then what follows it."""
        taken = min(len(data), self._skip_left)
        room = self._keep - len(self._head)
        if room > 0:
            self._head += data[: min(room, taken)]
        self._skip_left -= taken
        if self._skip_left:
            return []
        skipped = OversizedFrame(self._head, self._skip_size)
        self._head = bytearray()
        rest = data[taken:]
        return [skipped, *self.feed(bytes(rest))] if len(rest) else [skipped]

    def _fail(self, reason: str, error: type[ProtocolError] = ProtocolError) -> NoReturn:
        self._broken = f"{reason}; the stream cannot be read further"
        self._buffer.clear()
        raise error(self._broken)
