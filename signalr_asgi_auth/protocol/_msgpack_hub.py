"""The MessagePack hub protocol: one MessagePack array per message, behind the size prefix.

Arrays as ASP.NET Core writes them: ``[1, headers, invocationId | nil, target, arguments, streamIds]``,
``[3, headers, invocationId, resultKind, result?]`` (1 error, 2 void, 3 result), ``[7, error | nil,
allowReconnect]``, and ``[6]`` for a ping. Readers take the older, shorter arrays (no streamIds, no
allowReconnect) and ignore elements after the ones they know.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NoReturn

import msgpack

from .._errors import ProtocolError
from ._framing import FrameReader, size_prefix
from ._hub_messages import (
    CancelInvocation,
    Completion,
    HubClose,
    HubMessage,
    HubPing,
    Invocation,
    StreamInvocation,
    StreamItem,
)
from ._json_hub import DEFAULT_MAX_HUB_MESSAGE_SIZE
from ._packing import pack

__all__ = ["MessagePackHubMessageReader", "decode_msgpack_message", "write_msgpack_message"]

_ERROR_RESULT: Final = 1
_VOID_RESULT: Final = 2
_NON_VOID_RESULT: Final = 3
_PING: Final = b"\x02\x91\x06"


def _invocation(m: Invocation) -> list[Any]:
    return [1, dict(m.headers), m.invocation_id, m.target, list(m.arguments), list(m.stream_ids)]


def _stream_invocation(m: StreamInvocation) -> list[Any]:
    return [4, dict(m.headers), m.invocation_id, m.target, list(m.arguments), list(m.stream_ids)]


def _completion(m: Completion) -> list[Any]:
    if m.error is not None:
        return [3, dict(m.headers), m.invocation_id, _ERROR_RESULT, m.error]
    if m.has_result:
        return [3, dict(m.headers), m.invocation_id, _NON_VOID_RESULT, m.result]
    return [3, dict(m.headers), m.invocation_id, _VOID_RESULT]


_WRITERS: Final[dict[type, Callable[[Any], list[Any]]]] = {
    Invocation: _invocation,
    StreamInvocation: _stream_invocation,
    Completion: _completion,
    StreamItem: lambda m: [2, dict(m.headers), m.invocation_id, m.item],
    CancelInvocation: lambda m: [5, dict(m.headers), m.invocation_id],
    HubClose: lambda m: [7, m.error, m.allow_reconnect],
}


def write_msgpack_message(message: HubMessage) -> bytes:
    """``message`` as it goes on the wire: size prefix, then the array."""
    if type(message) is HubPing:
        return _PING
    writer = _WRITERS.get(type(message))
    if writer is None:
        text = f"{type(message).__name__} is not a hub-protocol message"
        raise ProtocolError(text)
    try:
        body = pack(writer(message))
    except (TypeError, ValueError, OverflowError) as error:
        text = f"{type(message).__name__} cannot be written as MessagePack: {_reason(error)}"
        raise ProtocolError(text) from None
    return size_prefix(len(body)) + body


def _reason(error: Exception) -> str:
    if isinstance(error, UnicodeError):
        return "a string holds a lone surrogate"
    return str(error)[:80]


def _kind(value: object) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bytes):
        return "binary"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a map"
    return "an extension value"


class _Array:
    __slots__ = ("items", "name")

    def __init__(self, name: str, items: list[Any], minimum: int) -> None:
        if len(items) < minimum:
            text = f"MessagePack {name} has {len(items)} elements; it needs at least {minimum}"
            raise ProtocolError(text)
        self.name = name
        self.items = items

    def fail(self, field: str, wanted: str, value: object) -> NoReturn:
        text = f"MessagePack {self.name}: '{field}' should be {wanted}, got {_kind(value)}"
        raise ProtocolError(text)

    def string(self, index: int, field: str) -> str:
        value = self.items[index]
        if type(value) is not str:
            self.fail(field, "a string", value)
        return value

    def optional_string(self, index: int, field: str) -> str | None:
        value = self.items[index] if index < len(self.items) else None
        if value is not None and type(value) is not str:
            self.fail(field, "a string or nil", value)
        return value

    def headers(self) -> dict[str, str]:
        value = self.items[1]
        if type(value) is not dict:
            self.fail("headers", "a map", value)
        for key, item in value.items():
            if type(key) is not str or type(item) is not str:
                self.fail("headers", "a map of strings to strings", item)
        return value

    def arguments(self, index: int) -> tuple[Any, ...]:
        value = self.items[index]
        if type(value) is not list:
            self.fail("arguments", "an array", value)
        return tuple(value)

    def stream_ids(self, index: int) -> tuple[str, ...]:
        if index >= len(self.items):
            return ()
        value = self.items[index]
        if value is None:
            return ()
        if type(value) is not list or any(type(item) is not str for item in value):
            self.fail("streamIds", "an array of strings", value)
        return tuple(value)


def _read_completion(a: _Array) -> Completion:
    invocation_id = a.string(2, "invocationId")
    kind = a.items[3]
    if kind == _ERROR_RESULT and type(kind) is int:
        if len(a.items) < 5:
            a.fail("error", "a string", None)
        return Completion(invocation_id, None, a.string(4, "error"), False, a.headers())
    if kind == _VOID_RESULT and type(kind) is int:
        return Completion(invocation_id, None, None, False, a.headers())
    if kind == _NON_VOID_RESULT and type(kind) is int:
        if len(a.items) < 5:
            a.fail("result", "present for resultKind 3", None)
        return Completion(invocation_id, a.items[4], None, True, a.headers())
    a.fail("resultKind", "1 (error), 2 (void) or 3 (result)", kind)


def _read_close(a: _Array) -> HubClose:
    allow = a.items[2] if len(a.items) > 2 else False
    if type(allow) is not bool:
        a.fail("allowReconnect", "a boolean", allow)
    return HubClose(a.optional_string(1, "error"), allow)


_READERS: Final[dict[int, tuple[str, int, Callable[[_Array], HubMessage]]]] = {
    1: ("Invocation", 5, lambda a: Invocation(
        a.string(3, "target"), a.arguments(4), a.optional_string(2, "invocationId"),
        a.stream_ids(5), a.headers())),
    2: ("StreamItem", 4, lambda a: StreamItem(a.string(2, "invocationId"), a.items[3], a.headers())),
    3: ("Completion", 4, _read_completion),
    4: ("StreamInvocation", 5, lambda a: StreamInvocation(
        a.string(2, "invocationId"), a.string(3, "target"), a.arguments(4), a.stream_ids(5),
        a.headers())),
    5: ("CancelInvocation", 3, lambda a: CancelInvocation(a.string(2, "invocationId"), a.headers())),
    6: ("Ping", 1, lambda a: HubPing()),
    7: ("Close", 2, _read_close),
}  # fmt: skip


def decode_msgpack_message(payload: bytes | bytearray | memoryview) -> HubMessage | None:
    """The message in one frame (without its size prefix); ``None`` for a type to skip (Ack and
    Sequence of stateful reconnect, and types added later)."""
    try:
        array = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except msgpack.ExtraData as extra:
        array = extra.unpacked
    except Exception as error:
        text = f"a MessagePack hub message is not valid MessagePack ({type(error).__name__})"
        raise ProtocolError(text) from None
    if type(array) is not list or not array:
        text = f"a MessagePack hub message should be a non-empty array, got {_kind(array)}"
        raise ProtocolError(text)
    kind = array[0]
    if type(kind) is not int:
        text = f"a MessagePack hub message's type should be an integer, got {_kind(kind)}"
        raise ProtocolError(text)
    entry = _READERS.get(kind)
    if entry is None:
        return None
    name, minimum, read = entry
    return read(_Array(name, array, minimum))


class MessagePackHubMessageReader:
    """Splits a MessagePack hub stream into messages (see ``FrameReader`` for the pieces).

    A malformed message raises :class:`ProtocolError`; a bad size prefix breaks the stream for good.
    """

    __slots__ = ("_frames",)

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_HUB_MESSAGE_SIZE) -> None:
        self._frames = FrameReader(max_message_size=max_message_size)

    @property
    def buffered(self) -> int:
        return self._frames.buffered

    def feed(self, data: bytes | bytearray | memoryview) -> list[HubMessage]:
        messages = []
        for frame in self._frames.feed(data):
            message = decode_msgpack_message(frame)
            if message is not None:
                messages.append(message)
        return messages
