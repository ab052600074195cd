"""Reading and writing service-protocol messages: MessagePack arrays behind a size prefix.

The layouts are those the .NET SDK writes (``ServiceProtocol.cs``, Azure/azure-signalr); the readers
take the shorter arrays of older services and the longer ones of newer services, ignore message types
they do not know (newer services add them) and extension keys they do not know, and ignore bytes after
the array inside a frame, as .NET does. Anything else that cannot be read raises ``ProtocolError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn

import msgpack

from .._errors import ProtocolError
from ._framing import DEFAULT_MAX_MESSAGE_SIZE, FrameReader, OversizedFrame, size_prefix
from ._oversized import HEAD_SIZE, read_oversized
from ._packing import pack as _pack
from ._service_messages import (
    EMPTY_EXT,
    AccessKeyRequest,
    AccessKeyResponse,
    Ack,
    BroadcastData,
    CheckConnectionExistenceWithAck,
    CheckGroupExistenceWithAck,
    CheckUserExistenceWithAck,
    CheckUserInGroupWithAck,
    ClientCompletion,
    ClientInvocation,
    CloseConnection,
    CloseConnectionsWithAck,
    CloseConnectionWithAck,
    CloseGroupConnectionsWithAck,
    CloseUserConnectionsWithAck,
    ConnectionData,
    ConnectionReconnect,
    ErrorCompletion,
    Ext,
    GroupBroadcastData,
    HandshakeRequest,
    HandshakeResponse,
    JoinGroup,
    JoinGroupWithAck,
    LeaveGroup,
    LeaveGroupWithAck,
    MultiConnectionData,
    MultiGroupBroadcastData,
    MultiUserData,
    OpenConnection,
    Ping,
    ServiceErrorMessage,
    ServiceEvent,
    ServiceMapping,
    ServiceMessage,
    UserData,
    UserJoinGroup,
    UserJoinGroupWithAck,
    UserLeaveGroup,
    UserLeaveGroupWithAck,
)

__all__ = [
    "ServiceMessageReader",
    "decode_service_message",
    "encode_service_message",
    "frame_service_message",
]

_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1
_UINT64_MAX: Final = 2**64 - 1


# -- writing ---------------------------------------------------------------------------------------


def _ext_map(ext: Ext) -> dict[int, Any]:
    if ext is EMPTY_EXT:
        return {}
    out: dict[int, Any] = {}
    if ext.tracing_id is not None:
        out[1] = ext.tracing_id
    if ext.ttl is not None:
        out[2] = ext.ttl
    if ext.protocol is not None:
        out[3] = ext.protocol
    if ext.filter is not None:
        out[4] = ext.filter
    if ext.data_message_type is not None:
        out[5] = ext.data_message_type
    if ext.is_partial is not None:
        out[6] = ext.is_partial
    return out


def _payload_map(payloads: Mapping[str, bytes]) -> dict[str, bytes]:
    return payloads if type(payloads) is dict else dict(payloads)


def _headers_map(headers: Mapping[str, tuple[str, ...]]) -> dict[str, list[str]]:
    return {name: list(values) for name, values in headers.items()}


def _handshake_request(m: HandshakeRequest) -> list[Any]:
    out = [1, m.version, m.connection_type, m.target, m.migration_level, _ext_map(m.ext)]
    if m.allow_stateful_reconnects is not None:
        out.append(m.allow_stateful_reconnects)
    return out


def _ack(m: Ack) -> list[Any]:
    out = [20, m.ack_id, m.status, m.message, _ext_map(m.ext)]
    if m.payload is not None:
        out.append(m.payload)
    return out


def _client_completion(m: ClientCompletion) -> list[Any]:
    ext = _ext_map(dataclasses.replace(m.ext, protocol=m.protocol))
    return [35, m.invocation_id, m.connection_id, m.caller_server_id, m.protocol, m.payload, ext]


def _connection_data(m: ConnectionData) -> list[Any]:
    return [6, m.connection_id, m.payload, _ext_map(m.ext)]


# How a field is written, by its annotation; anything else (str, int, bytes, None) as it is.
_CONVERTERS: Final[dict[str, Callable[[Any], Any]]] = {
    "Ext": _ext_map,
    "Payloads": _payload_map,
    "Headers": _headers_map,
    "tuple[str, ...]": list,
}


def _positional_writer(cls: type) -> Callable[[Any], list[Any]]:
    """Writes the fields of ``cls`` in their declared order, which is the wire order."""
    plan = [(f.name, _CONVERTERS.get(str(f.type))) for f in dataclasses.fields(cls)]
    kind: int = cls.TYPE  # type: ignore[attr-defined]

    def write(message: Any) -> list[Any]:
        out = [kind]
        for name, convert in plan:
            value = getattr(message, name)
            out.append(value if convert is None else convert(value))
        return out

    return write


_SPECIAL_WRITERS: Final[dict[type, Callable[[Any], list[Any]]]] = {
    HandshakeRequest: _handshake_request,
    Ack: _ack,
    ClientCompletion: _client_completion,
    ConnectionData: _connection_data,
    Ping: lambda m: [3, *m.messages],
}
_WRITERS: Final[dict[type, Callable[[Any], list[Any]]]] = {
    cls: _SPECIAL_WRITERS.get(cls) or _positional_writer(cls)
    for cls in (
        HandshakeRequest, HandshakeResponse, Ping, CloseConnection, ConnectionData,
        MultiConnectionData, UserData, MultiUserData, BroadcastData, JoinGroup, LeaveGroup,
        GroupBroadcastData, MultiGroupBroadcastData, ServiceErrorMessage, UserJoinGroup,
        UserLeaveGroup, JoinGroupWithAck, LeaveGroupWithAck, Ack, CheckUserInGroupWithAck,
        ServiceEvent, CheckGroupExistenceWithAck, CheckConnectionExistenceWithAck,
        CheckUserExistenceWithAck, UserJoinGroupWithAck, UserLeaveGroupWithAck, AccessKeyRequest,
        AccessKeyResponse, CloseConnectionWithAck, CloseConnectionsWithAck,
        CloseUserConnectionsWithAck, CloseGroupConnectionsWithAck, ClientInvocation,
        ClientCompletion, ErrorCompletion, ServiceMapping, ConnectionReconnect,
    )
}  # fmt: skip


def _write_open_connection(m: OpenConnection) -> bytes:
    """OpenConnection, its claims map written pair by pair: a claim type may repeat, which a dict
    (all msgpack writes a map from) cannot hold."""
    packer = msgpack.Packer(use_bin_type=True)
    out = bytearray(packer.pack_array_header(6))
    out += packer.pack(4)
    out += packer.pack(m.connection_id)
    out += packer.pack_map_header(len(m.claims))
    for name, value in m.claims:
        out += packer.pack(name)
        out += packer.pack(value)
    out += packer.pack(_headers_map(m.headers))
    out += packer.pack(m.query_string)
    out += packer.pack(_ext_map(m.ext))
    return bytes(out)


def encode_service_message(message: ServiceMessage) -> bytes:
    """The MessagePack array of ``message``, without the size prefix."""
    try:
        if type(message) is ConnectionData:
            # The message of every client frame: no table lookup, no extension map to build.
            ext = {} if message.ext is EMPTY_EXT else _ext_map(message.ext)
            return _pack([6, message.connection_id, message.payload, ext])
        if type(message) is OpenConnection:
            return _write_open_connection(message)
        writer = _WRITERS.get(type(message))
        if writer is None:
            text = f"{type(message).__name__} is not a service-protocol message"
            raise ProtocolError(text)
        return _pack(writer(message))
    except (TypeError, ValueError, OverflowError) as error:
        text = f"{type(message).__name__} cannot be written: {error}"
        raise ProtocolError(text) from None


def frame_service_message(message: ServiceMessage) -> bytes:
    """``message`` as it goes on the wire: size prefix, then the array."""
    body = encode_service_message(message)
    return size_prefix(len(body)) + body


# -- reading ---------------------------------------------------------------------------------------


class _Pairs(list[tuple[Any, Any]]):
    """A map read as its pairs, in order and with repeated keys (used for OpenConnection)."""


class _Fields:
    """Positional access to one message's array, with errors that name the field."""

    __slots__ = ("array", "name")

    def __init__(self, name: str, array: list[Any], minimum: int) -> None:
        if len(array) < minimum:
            text = f"{name} has {len(array)} elements; it needs at least {minimum}"
            raise ProtocolError(text)
        self.name = name
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def fail(self, field: str, wanted: str, value: object) -> NoReturn:
        got = "nil" if value is None else f"a {_msgpack_type(value)}"
        text = f"{self.name}: '{field}' should be {wanted}, got {got}"
        raise ProtocolError(text)

    def string(self, index: int, field: str) -> str:
        value = self.array[index]
        if type(value) is str:
            return value
        if value is None:
            return ""
        self.fail(field, "a string", value)

    def optional_string(self, index: int, field: str) -> str | None:
        if index >= len(self.array):
            return None
        value = self.array[index]
        if value is None or type(value) is str:
            return value
        self.fail(field, "a string or nil", value)

    def int32(self, index: int, field: str) -> int:
        value = self.array[index]
        if type(value) is int and _INT32_MIN <= value <= _INT32_MAX:
            return value
        self.fail(field, "a 32-bit integer", value)

    def boolean(self, index: int, field: str) -> bool | None:
        if index >= len(self.array):
            return None
        value = self.array[index]
        if value is None or type(value) is bool:
            return value
        self.fail(field, "a boolean", value)

    def binary(self, index: int, field: str) -> bytes:
        value = self.array[index]
        if type(value) is bytes:
            return value
        if value is None:
            return b""
        self.fail(field, "binary", value)

    def strings(self, index: int, field: str) -> tuple[str, ...]:
        if index >= len(self.array):
            return ()
        value = self.array[index]
        if value is None:
            return ()
        if type(value) is not list:
            self.fail(field, "an array of strings", value)
        for item in value:
            if type(item) is not str:
                self.fail(f"{field}[]", "a string", item)
        return tuple(value)

    def map_items(self, index: int, field: str) -> list[tuple[Any, Any]]:
        value = self.array[index]
        if value is None:
            return []
        if type(value) is dict:
            return list(value.items())
        if type(value) is _Pairs:
            return value
        self.fail(field, "a map", value)

    def payloads(self, index: int, field: str = "payloads") -> dict[str, bytes]:
        value = self.array[index]
        if type(value) is dict:
            for key, data in value.items():
                if type(key) is not str or type(data) is not bytes:
                    self.fail(field, "a map of protocol names to binary", data)
            return value
        out: dict[str, bytes] = {}
        for key, data in self.map_items(index, field):
            if type(key) is not str or type(data) is not bytes:
                self.fail(field, "a map of protocol names to binary", data)
            out[key] = data
        return out

    def headers(self, index: int) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        if index >= len(self.array):
            return out
        for key, values in self.map_items(index, "headers"):
            if type(key) is not str:
                self.fail("headers", "a map with string keys", key)
            if type(values) is not list or any(type(v) is not str for v in values):
                self.fail("headers", "a map of names to arrays of strings", values)
            out[key] = tuple(values)
        return out

    def claims(self, index: int) -> tuple[tuple[str, str], ...]:
        pairs = self.map_items(index, "claims")
        for key, value in pairs:
            if type(key) is not str or type(value) is not str:
                self.fail("claims", "a map of strings to strings", value)
        return tuple(pairs)

    def ext(self, index: int) -> Ext:
        if index >= len(self.array):
            return EMPTY_EXT
        value = self.array[index]
        if type(value) is dict:
            if not value:
                return EMPTY_EXT
            items: list[tuple[Any, Any]] = list(value.items())
        else:
            items = self.map_items(index, "ext")
            if not items:
                return EMPTY_EXT
        tracing_id = ttl = data_message_type = None
        protocol = filter_ = None
        is_partial = None
        for key, item in items:
            if type(key) is not int:
                continue
            if key == 1:
                if type(item) is not int or not 0 <= item <= _UINT64_MAX:
                    self.fail("ext[TracingId]", "an unsigned integer", item)
                tracing_id = item
            elif key == 2:
                if type(item) is not int or not _INT32_MIN <= item <= _INT32_MAX:
                    self.fail("ext[Ttl]", "a 32-bit integer", item)
                ttl = item
            elif key == 3:
                if item is not None and type(item) is not str:
                    self.fail("ext[Protocol]", "a string", item)
                protocol = item
            elif key == 4:
                if item is not None and type(item) is not str:
                    self.fail("ext[Filter]", "a string", item)
                filter_ = item
            elif key == 5:
                if type(item) is not int or not _INT32_MIN <= item <= _INT32_MAX:
                    self.fail("ext[DataMessageType]", "a 32-bit integer", item)
                data_message_type = item
            elif key == 6:
                if type(item) is not bool:
                    self.fail("ext[IsPartial]", "a boolean", item)
                is_partial = item
        return Ext(tracing_id, ttl, protocol, filter_, data_message_type, is_partial)


def _msgpack_type(value: object) -> str:
    if type(value) is _Pairs or isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "binary"
    return "extension value"


def _read_handshake_request(a: list[Any]) -> HandshakeRequest:
    f = _Fields("HandshakeRequest", a, 2)
    long = len(a) >= 4
    return HandshakeRequest(
        version=f.int32(1, "version"),
        connection_type=f.int32(2, "connectionType") if long else 0,
        target=f.string(3, "target") if long else "",
        migration_level=f.int32(4, "migrationLevel") if len(a) >= 5 else 0,
        ext=f.ext(5),
        allow_stateful_reconnects=f.boolean(6, "allowStatefulReconnects"),
    )


def _read_ping(a: list[Any]) -> Ping:
    f = _Fields("Ping", a, 1)
    return Ping(tuple(f.string(i, f"messages[{i - 1}]") for i in range(1, len(a))))


def _read_open_connection(a: list[Any]) -> OpenConnection:
    f = _Fields("OpenConnection", a, 3)
    if len(a) < 5:
        return OpenConnection(f.string(1, "connectionId"), f.claims(2))
    return OpenConnection(
        f.string(1, "connectionId"), f.claims(2), f.headers(3), f.string(4, "queryString"), f.ext(5)
    )


def _read_close_connection(a: list[Any]) -> CloseConnection:
    f = _Fields("CloseConnection", a, 3)
    return CloseConnection(
        f.string(1, "connectionId"), f.string(2, "errorMessage"), f.headers(3), f.ext(4)
    )


def _read_connection_data(a: list[Any]) -> ConnectionData:
    f = _Fields("ConnectionData", a, 3)
    return ConnectionData(f.string(1, "connectionId"), f.binary(2, "payload"), f.ext(3))


def _read_group_broadcast(a: list[Any]) -> GroupBroadcastData:
    f = _Fields("GroupBroadcastData", a, 4)
    return GroupBroadcastData(
        f.string(1, "groupName"),
        f.strings(2, "excludedList"),
        f.payloads(3),
        f.ext(4),
        f.strings(5, "excludedUserList"),
        f.optional_string(6, "callerUserId"),
    )


def _read_ack(a: list[Any]) -> Ack:
    f = _Fields("Ack", a, 4)
    payload = None
    if len(a) >= 6 and a[5] is not None:
        payload = f.binary(5, "payload")
    return Ack(f.int32(1, "ackId"), f.int32(2, "status"), f.string(3, "message"), f.ext(4), payload)


def _read_client_completion(a: list[Any]) -> ClientCompletion:
    f = _Fields("ClientCompletion", a, 6)
    ext = f.ext(6)
    protocol = f.string(4, "protocol")
    if ext.protocol is not None:
        protocol = ext.protocol
        ext = _without_protocol(ext)
    return ClientCompletion(
        f.string(1, "invocationId"),
        f.string(2, "connectionId"),
        f.string(3, "callerServerId"),
        protocol,
        f.binary(5, "payload"),
        ext,
    )


def _without_protocol(ext: Ext) -> Ext:
    out = Ext(ext.tracing_id, ext.ttl, None, ext.filter, ext.data_message_type, ext.is_partial)
    return EMPTY_EXT if out == EMPTY_EXT else out


def _reader(
    name: str, minimum: int, build: Callable[[_Fields], ServiceMessage]
) -> Callable[[list[Any]], ServiceMessage]:
    def read(a: list[Any]) -> ServiceMessage:
        return build(_Fields(name, a, minimum))

    return read


_READERS: Final[dict[int, Callable[[list[Any]], ServiceMessage]]] = {
    1: _read_handshake_request,
    2: _reader("HandshakeResponse", 2, lambda f: HandshakeResponse(
        f.string(1, "errorMessage"), f.ext(2), f.optional_string(3, "connectionId"))),
    3: _read_ping,
    4: _read_open_connection,
    5: _read_close_connection,
    6: _read_connection_data,
    7: _reader("MultiConnectionData", 3, lambda f: MultiConnectionData(
        f.strings(1, "connectionList"), f.payloads(2), f.ext(3))),
    8: _reader("UserData", 3, lambda f: UserData(f.string(1, "userId"), f.payloads(2), f.ext(3))),
    9: _reader("MultiUserData", 3, lambda f: MultiUserData(
        f.strings(1, "userList"), f.payloads(2), f.ext(3))),
    10: _reader("BroadcastData", 3, lambda f: BroadcastData(
        f.strings(1, "excludedList"), f.payloads(2), f.ext(3))),
    11: _reader("JoinGroup", 3, lambda f: JoinGroup(
        f.string(1, "connectionId"), f.string(2, "groupName"), f.ext(3))),
    12: _reader("LeaveGroup", 3, lambda f: LeaveGroup(
        f.string(1, "connectionId"), f.string(2, "groupName"), f.ext(3))),
    13: _read_group_broadcast,
    14: _reader("MultiGroupBroadcastData", 3, lambda f: MultiGroupBroadcastData(
        f.strings(1, "groupList"), f.payloads(2), f.ext(3))),
    15: _reader("ServiceErrorMessage", 2, lambda f: ServiceErrorMessage(
        f.string(1, "errorMessage"))),
    16: _reader("UserJoinGroup", 3, lambda f: UserJoinGroup(
        f.string(1, "userId"), f.string(2, "groupName"), f.ext(3))),
    17: _reader("UserLeaveGroup", 3, lambda f: UserLeaveGroup(
        f.string(1, "userId"), f.optional_string(2, "groupName"), f.ext(3))),
    18: _reader("JoinGroupWithAck", 4, lambda f: JoinGroupWithAck(
        f.string(1, "connectionId"), f.string(2, "groupName"), f.int32(3, "ackId"), f.ext(4))),
    19: _reader("LeaveGroupWithAck", 4, lambda f: LeaveGroupWithAck(
        f.string(1, "connectionId"), f.string(2, "groupName"), f.int32(3, "ackId"), f.ext(4))),
    20: _read_ack,
    21: _reader("CheckUserInGroupWithAck", 4, lambda f: CheckUserInGroupWithAck(
        f.string(1, "userId"), f.string(2, "groupName"), f.int32(3, "ackId"), f.ext(4))),
    22: _reader("ServiceEvent", 5, lambda f: ServiceEvent(
        f.int32(1, "type"), f.string(2, "id"), f.int32(3, "kind"), f.string(4, "message"), f.ext(5))),
    23: _reader("CheckGroupExistenceWithAck", 3, lambda f: CheckGroupExistenceWithAck(
        f.string(1, "groupName"), f.int32(2, "ackId"), f.ext(3))),
    24: _reader("CheckConnectionExistenceWithAck", 3, lambda f: CheckConnectionExistenceWithAck(
        f.string(1, "connectionId"), f.int32(2, "ackId"), f.ext(3))),
    25: _reader("CheckUserExistenceWithAck", 3, lambda f: CheckUserExistenceWithAck(
        f.string(1, "userId"), f.int32(2, "ackId"), f.ext(3))),
    26: _reader("UserJoinGroupWithAck", 4, lambda f: UserJoinGroupWithAck(
        f.string(1, "userId"), f.string(2, "groupName"), f.int32(3, "ackId"), f.ext(4))),
    27: _reader("UserLeaveGroupWithAck", 4, lambda f: UserLeaveGroupWithAck(
        f.string(1, "userId"), f.optional_string(2, "groupName"), f.int32(3, "ackId"), f.ext(4))),
    28: _reader("AccessKeyRequest", 2, lambda f: AccessKeyRequest(
        f.string(1, "token"), f.optional_string(2, "kid"), f.ext(3))),
    29: _reader("AccessKeyResponse", 5, lambda f: AccessKeyResponse(
        f.optional_string(1, "kid"), f.optional_string(2, "accessKey"), f.optional_string(3, "errorType"),
        f.optional_string(4, "errorMessage"), f.ext(5))),
    30: _reader("CloseConnectionWithAck", 4, lambda f: CloseConnectionWithAck(
        f.string(1, "connectionId"), f.optional_string(2, "reason"), f.int32(3, "ackId"), f.ext(4))),
    31: _reader("CloseConnectionsWithAck", 4, lambda f: CloseConnectionsWithAck(
        f.optional_string(1, "reason"), f.int32(2, "ackId"), f.strings(3, "excluded"), f.ext(4))),
    32: _reader("CloseUserConnectionsWithAck", 5, lambda f: CloseUserConnectionsWithAck(
        f.string(1, "userId"), f.optional_string(2, "reason"), f.int32(3, "ackId"),
        f.strings(4, "excluded"), f.ext(5))),
    33: _reader("CloseGroupConnectionsWithAck", 5, lambda f: CloseGroupConnectionsWithAck(
        f.string(1, "group"), f.optional_string(2, "reason"), f.int32(3, "ackId"),
        f.strings(4, "excluded"), f.ext(5))),
    34: _reader("ClientInvocation", 5, lambda f: ClientInvocation(
        f.string(1, "invocationId"), f.string(2, "connectionId"), f.string(3, "callerServerId"),
        f.payloads(4), f.ext(5))),
    35: _read_client_completion,
    36: _reader("ErrorCompletion", 5, lambda f: ErrorCompletion(
        f.string(1, "invocationId"), f.string(2, "connectionId"), f.string(3, "callerServerId"),
        f.string(4, "error"), f.ext(5))),
    37: _reader("ServiceMapping", 4, lambda f: ServiceMapping(
        f.string(1, "invocationId"), f.string(2, "connectionId"), f.string(3, "instanceId"), f.ext(4))),
    38: _reader("ConnectionReconnect", 2, lambda f: ConnectionReconnect(
        f.string(1, "connectionId"), f.ext(2))),
}  # fmt: skip


def _unpack(payload: bytes | bytearray | memoryview, pairs: bool) -> Any:
    try:
        if pairs:
            return msgpack.unpackb(
                payload, raw=False, strict_map_key=False, object_pairs_hook=_Pairs
            )
        return msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except msgpack.ExtraData as extra:
        # .NET reads the array and ignores what follows it in the frame; so do we.
        return extra.unpacked
    except Exception as error:
        # msgpack raises ValueError subclasses, its own OutOfData, TypeError for a map key that
        # cannot be hashed, and more: none of them is the caller's concern beyond "malformed".
        text = f"a service message is not valid MessagePack ({type(error).__name__})"
        raise ProtocolError(text) from None


_unpackb = msgpack.unpackb
_new = object.__new__
_set_connection_id = ConnectionData.__dict__["connection_id"].__set__
_set_payload = ConnectionData.__dict__["payload"].__set__
_set_ext = ConnectionData.__dict__["ext"].__set__


def decode_service_message(payload: bytes | bytearray | memoryview) -> ServiceMessage | None:
    """The message in ``payload`` (one frame, without its size prefix); ``None`` for a message type
    this codec does not know, which newer services may send and which is to be ignored."""
    try:
        array = _unpackb(payload, raw=False, strict_map_key=False)
    except Exception:
        array = _unpack(payload, pairs=False)  # the slow way, which says what went wrong
    if type(array) is list and len(array) == 4 and array[0] == 6:
        connection_id, data, ext = array[1], array[2], array[3]
        if type(connection_id) is str and type(data) is bytes and type(ext) is dict and not ext:
            # ConnectionData without extensions, the message of every client frame, built without
            # the frozen dataclass's __init__ (which goes through object.__setattr__ per field).
            message: ConnectionData = _new(ConnectionData)
            _set_connection_id(message, connection_id)
            _set_payload(message, data)
            _set_ext(message, EMPTY_EXT)
            return message
    if type(array) is not list or not array:
        got = "an empty array" if array == [] else f"a {_msgpack_type(array)}"
        text = f"a service message should be a MessagePack array, got {got}"
        raise ProtocolError(text)
    kind = array[0]
    if type(kind) is not int:
        text = f"a service message's type should be an integer, got a {_msgpack_type(kind)}"
        raise ProtocolError(text)
    if kind == 6:  # ConnectionData, by far the most frequent: no dispatch
        return _read_connection_data(array)
    reader = _READERS.get(kind)
    if reader is None:
        return None
    if kind == 4:
        # Claims may repeat a key, which a dict would lose: read this one again as pairs.
        array = _unpack(payload, pairs=True)
    return reader(array)


class ServiceMessageReader:
    """Decodes the service messages in a byte stream that arrives in pieces (see ``FrameReader``).

    ``feed`` returns the messages completed so far, in order, without those of unknown types. A
    message over ``max_message_size`` is not held: one a client wrote stands for it (see
    ``_oversized``), any other raises :class:`ProtocolError`.
    """

    __slots__ = ("_frames", "_limit")

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._frames = FrameReader(max_message_size=max_message_size, keep_oversized=HEAD_SIZE)
        self._limit = max_message_size

    @property
    def buffered(self) -> int:
        """How many bytes wait for the rest of their message."""
        return self._frames.buffered

    def feed(self, data: bytes | bytearray | memoryview) -> list[ServiceMessage]:
        messages = []
        for frame in self._frames.feed(data):
            if type(frame) is OversizedFrame:
                messages.append(read_oversized(frame, self._limit))
                continue
            message = decode_service_message(frame)
            if message is not None:
                messages.append(message)
        return messages
