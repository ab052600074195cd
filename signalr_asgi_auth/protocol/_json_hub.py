"""The JSON hub protocol: one JSON object per message, each followed by the record separator 0x1E.

Written compactly and in the property order ASP.NET Core writes (type, headers, invocationId, ...),
so a record is byte for byte what a .NET hub would send. ``bytes`` values are written as base64
strings, as .NET writes ``byte[]``. Properties a reader does not know are ignored.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn

from .._errors import ProtocolError, short
from ._framing import MessageTooLargeError
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

__all__ = ["DEFAULT_MAX_HUB_MESSAGE_SIZE", "RECORD_SEPARATOR", "JsonHubMessageReader"]

RECORD_SEPARATOR: Final = b"\x1e"

DEFAULT_MAX_HUB_MESSAGE_SIZE: Final = 1024 * 1024
"""The largest hub message a reader accepts unless told otherwise (ASP.NET Core's default is 32 KB;
Azure SignalR Service lets a client send up to 1 MB)."""

_PING: Final = b'{"type":6}\x1e'


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    message = f"a {type(value).__name__} cannot be written as JSON"
    raise TypeError(message)


_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default
)


def _start(
    message: Invocation | StreamInvocation | StreamItem | Completion | CancelInvocation,
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": message.TYPE}
    if message.headers:
        out["headers"] = dict(message.headers)
    if message.invocation_id is not None:
        out["invocationId"] = message.invocation_id
    return out


def _invocation(message: Invocation | StreamInvocation) -> dict[str, Any]:
    out = _start(message)
    out["target"] = message.target
    out["arguments"] = list(message.arguments)
    if message.stream_ids:
        out["streamIds"] = list(message.stream_ids)
    return out


def _completion(message: Completion) -> dict[str, Any]:
    out = _start(message)
    if message.error is not None:
        out["error"] = message.error
    elif message.has_result:
        out["result"] = message.result
    return out


def _stream_item(message: StreamItem) -> dict[str, Any]:
    out = _start(message)
    out["item"] = message.item
    return out


def _close(message: HubClose) -> dict[str, Any]:
    out: dict[str, Any] = {"type": 7}
    if message.error is not None:
        out["error"] = message.error
    if message.allow_reconnect:
        out["allowReconnect"] = True
    return out


_WRITERS: Final[dict[type, Callable[[Any], dict[str, Any]]]] = {
    Invocation: _invocation,
    StreamInvocation: _invocation,
    Completion: _completion,
    StreamItem: _stream_item,
    CancelInvocation: _start,
    HubClose: _close,
}


def write_json_message(message: HubMessage) -> bytes:
    """``message`` as a JSON record, separator included."""
    if type(message) is HubPing:
        return _PING
    writer = _WRITERS.get(type(message))
    if writer is None:
        text = f"{type(message).__name__} is not a hub-protocol message"
        raise ProtocolError(text)
    try:
        return _encoder.encode(writer(message)).encode("utf-8") + RECORD_SEPARATOR
    except (TypeError, ValueError, RecursionError) as error:
        # ValueError: NaN or infinity, which JSON cannot hold; UnicodeEncodeError (a ValueError):
        # a lone surrogate in a string.
        text = f"{type(message).__name__} cannot be written as JSON: {_reason(error)}"
        raise ProtocolError(text) from None


def _reason(error: BaseException) -> str:
    if isinstance(error, UnicodeError):
        return "a string holds a lone surrogate"
    if isinstance(error, RecursionError):
        return "values nest too deeply"
    return str(error)


def _reject_constant(name: str) -> None:
    message = f"{name} is not a JSON value"
    raise ValueError(message)


def _invalid(text: str) -> NoReturn:
    message = f"invalid JSON hub message: {text}"
    raise ProtocolError(message)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class _Object:
    """Typed access to the properties of one message object."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def required(self, name: str) -> Any:
        if name not in self.values:
            _invalid(f"missing required property '{name}'")
        return self.values[name]

    def string(self, name: str) -> str:
        value = self.required(name)
        if type(value) is not str:
            _invalid(f"'{name}' should be a string, got {_json_type(value)}")
        return value

    def optional_string(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or type(value) is str:
            return value
        _invalid(f"'{name}' should be a string, got {_json_type(value)}")

    def arguments(self) -> tuple[Any, ...]:
        value = self.required("arguments")
        if type(value) is not list:
            _invalid(f"'arguments' should be an array, got {_json_type(value)}")
        return tuple(value)

    def stream_ids(self) -> tuple[str, ...]:
        value = self.values.get("streamIds")
        if value is None:
            return ()
        if type(value) is not list or any(type(item) is not str for item in value):
            _invalid("'streamIds' should be an array of strings")
        return tuple(value)

    def headers(self) -> Mapping[str, str]:
        value = self.values.get("headers")
        if value is None:
            return {}
        if type(value) is not dict:
            _invalid(f"'headers' should be an object, got {_json_type(value)}")
        for key, item in value.items():
            if type(item) is not str:
                _invalid(f"header '{short(key, 40)}' should be a string, got {_json_type(item)}")
        return value


def _read_object(record: bytes) -> HubMessage | None:
    try:
        values = json.loads(record.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        _invalid("the record is not UTF-8")
    except RecursionError:
        _invalid("values nest too deeply")
    except ValueError as error:
        _invalid(f"the record is not JSON ({_short(error)})")
    if type(values) is not dict:
        _invalid(f"a message should be a JSON object, got {_json_type(values)}")
    fields = _Object(values)
    kind = fields.required("type")
    if type(kind) is not int:
        _invalid(f"'type' should be an integer, got {_json_type(kind)}")
    if kind == 1:
        invocation_id = fields.optional_string("invocationId")
        return Invocation(
            fields.string("target"),
            fields.arguments(),
            invocation_id,
            fields.stream_ids(),
            fields.headers(),
        )
    if kind == 2:
        invocation_id = fields.string("invocationId")
        return StreamItem(invocation_id, fields.required("item"), fields.headers())
    if kind == 3:
        invocation_id = fields.string("invocationId")
        failure = fields.optional_string("error")
        has_result = "result" in values
        if failure is not None and has_result:
            _invalid("a Completion has both 'error' and 'result'")
        return Completion(
            invocation_id, values.get("result"), failure, has_result, fields.headers()
        )
    if kind == 4:
        invocation_id = fields.string("invocationId")
        return StreamInvocation(
            invocation_id,
            fields.string("target"),
            fields.arguments(),
            fields.stream_ids(),
            fields.headers(),
        )
    if kind == 5:
        return CancelInvocation(fields.string("invocationId"), fields.headers())
    if kind == 6:
        return HubPing()
    if kind == 7:
        allow = values.get("allowReconnect", False)
        if type(allow) is not bool:
            _invalid(f"'allowReconnect' should be a boolean, got {_json_type(allow)}")
        return HubClose(fields.optional_string("error"), allow)
    # 8 Ack and 9 Sequence (stateful reconnect, not negotiated) and types added later: skipped.
    return None


def _short(error: ValueError) -> str:
    text = str(error)
    return text if len(text) <= 80 else text[:79] + "…"


def decode_json_message(record: bytes) -> HubMessage | None:
    """The message in one JSON record (without its separator); ``None`` for a type to skip."""
    return _read_object(record)


class JsonHubMessageReader:
    """Splits a JSON hub stream into messages; a record may arrive in pieces, or many at once.

    A malformed record raises :class:`ProtocolError` (the messages before it in the same ``feed``
    are lost with it: ASP.NET Core closes such a connection, and so should the caller).
    """

    __slots__ = ("_buffer", "_max_message_size")

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_HUB_MESSAGE_SIZE) -> None:
        self._max_message_size = max_message_size
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[HubMessage]:
        buffer = self._buffer
        # What was kept holds no separator: only the new bytes are searched, so a record that
        # arrives in many pieces costs its length once, not once per piece.
        searched = len(buffer)
        buffer += data
        messages: list[HubMessage] = []
        start = 0
        while True:
            end = buffer.find(RECORD_SEPARATOR, max(start, searched))
            if end < 0:
                break
            if end - start > self._max_message_size:
                self._too_big(end - start)
            record = bytes(buffer[start:end])
            start = end + 1
            try:
                message = _read_object(record)
            except ProtocolError:
                del buffer[:start]  # the next feed starts after the bad record
                raise
            if message is not None:
                messages.append(message)
        del buffer[:start]
        if len(buffer) > self._max_message_size:
            self._too_big(len(buffer))
        return messages

    def _too_big(self, size: int) -> None:
        self._buffer.clear()
        text = (
            f"a JSON hub message of {size} bytes or more is over the limit of "
            f"{self._max_message_size} bytes"
        )
        raise MessageTooLargeError(text)
