"""The messages of the service protocol, between an app server and SignalR Service.

One frozen dataclass per message, named as the .NET SDK names it without ``Message``
(``ServiceErrorMessage`` keeps it, so as not to clash with our ``ServiceError`` exception). Fields
follow the order of the wire array (``ServiceProtocol.cs`` of Azure/azure-signalr); ``TYPE`` is the
number that starts the array. Ids are ``str``, payloads ``bytes``, payload maps are keyed by the hub
protocol name, claims are pairs because a claim type may repeat. A field .NET writes as nil when it
is unset is ``None`` here; a field .NET always writes as a string is ``str`` (nil reads as ``""``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final

__all__ = [
    "EMPTY_EXT",
    "AccessKeyRequest",
    "AccessKeyResponse",
    "Ack",
    "AckStatus",
    "BroadcastData",
    "CheckConnectionExistenceWithAck",
    "CheckGroupExistenceWithAck",
    "CheckUserExistenceWithAck",
    "CheckUserInGroupWithAck",
    "ClientCompletion",
    "ClientInvocation",
    "CloseConnection",
    "CloseConnectionWithAck",
    "CloseConnectionsWithAck",
    "CloseGroupConnectionsWithAck",
    "CloseUserConnectionsWithAck",
    "ConnectionData",
    "ConnectionDataTooLarge",
    "ConnectionReconnect",
    "DataMessageType",
    "ErrorCompletion",
    "Ext",
    "GroupBroadcastData",
    "HandshakeRequest",
    "HandshakeResponse",
    "JoinGroup",
    "JoinGroupWithAck",
    "LeaveGroup",
    "LeaveGroupWithAck",
    "MultiConnectionData",
    "MultiGroupBroadcastData",
    "MultiUserData",
    "OpenConnection",
    "Ping",
    "ServiceErrorMessage",
    "ServiceEvent",
    "ServiceMapping",
    "ServiceMessage",
    "UserData",
    "UserJoinGroup",
    "UserJoinGroupWithAck",
    "UserLeaveGroup",
    "UserLeaveGroupWithAck",
]

Payloads = Mapping[str, bytes]
Headers = Mapping[str, tuple[str, ...]]
Claims = tuple[tuple[str, str], ...]


class DataMessageType:
    """Values of ``Ext.data_message_type``: what a ConnectionData payload holds."""

    UNKNOWN: Final = 0
    HANDSHAKE: Final = 1
    INVOCATION: Final = 2
    OTHER: Final = 3
    CLOSE: Final = 4  # newer services: the client's Close message, forwarded for stateful reconnect


class AckStatus:
    """Values of ``Ack.status`` (.NET ``AckStatus``)."""

    OK: Final = 1
    NOT_FOUND: Final = 2
    TIMEOUT: Final = 3
    INTERNAL_SERVER_ERROR: Final = 4
    FORBIDDEN: Final = 5  # newer services


@dataclass(frozen=True, slots=True)
class Ext:
    """The extension map most messages end with (integer keys on the wire; ``None`` = absent).

    Only these six keys are written: a .NET reader of the 2024 SDK misreads keys it does not know.
    Unknown keys are skipped when read.
    """

    tracing_id: int | None = None  # key 1, uint64
    ttl: int | None = None  # key 2, int32: seconds a user stays in a group
    protocol: str | None = None  # key 3: the client's hub protocol
    filter: str | None = None  # key 4: an OData subscriber filter on multicasts
    data_message_type: int | None = None  # key 5: DataMessageType
    is_partial: bool | None = None  # key 6: more ConnectionData of this message follows


EMPTY_EXT: Final = Ext()


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """The first message an app server sends. .NET writes ``[1, 1, 0, "", 0, {}]``."""

    TYPE: ClassVar[int] = 1
    version: int = 1
    connection_type: int = 0  # 0 Default, 1 OnDemand (asked for by a "target" ping), 2 Weak
    target: str = ""  # the service instance an OnDemand connection is for
    migration_level: int = 0  # 0 Off, 1 ShutdownOnly, 2 Any
    ext: Ext = EMPTY_EXT
    allow_stateful_reconnects: bool | None = None  # newer 7th element; not written when None


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    """The service's answer to the handshake; an empty ``error_message`` is success."""

    TYPE: ClassVar[int] = 2
    error_message: str = ""
    ext: Ext = EMPTY_EXT
    connection_id: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    """A keep-alive (no ``messages``) or key/value pairs such as ``("echo", x)``, ``("offline", id)``,
    ``("target", id)``, ``("shutdown", "fin:0")``."""

    TYPE: ClassVar[int] = 3
    messages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OpenConnection:
    """A client connected; ``ext.protocol`` names its hub protocol (newer services)."""

    TYPE: ClassVar[int] = 4
    connection_id: str
    claims: Claims = ()
    headers: Headers = field(default_factory=dict)
    query_string: str = ""
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """A client connection ends (either side); ``error_message`` is ``""`` for a clean close."""

    TYPE: ClassVar[int] = 5
    connection_id: str
    error_message: str = ""
    headers: Headers = field(default_factory=dict)
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class ConnectionData:
    """Hub-protocol bytes to or from one client, in that client's protocol."""

    TYPE: ClassVar[int] = 6
    connection_id: str
    payload: bytes
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class ConnectionDataTooLarge:
    """Not on the wire: the reader's word that a ConnectionData of ``size`` bytes, over its limit,
    went by unread, so that its client alone can be closed."""

    connection_id: str
    size: int


@dataclass(frozen=True, slots=True)
class MultiConnectionData:
    TYPE: ClassVar[int] = 7
    connection_list: tuple[str, ...]
    payloads: Payloads
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class UserData:
    TYPE: ClassVar[int] = 8
    user_id: str
    payloads: Payloads
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class MultiUserData:
    TYPE: ClassVar[int] = 9
    user_list: tuple[str, ...]
    payloads: Payloads
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class BroadcastData:
    TYPE: ClassVar[int] = 10
    excluded_list: tuple[str, ...] = ()
    payloads: Payloads = field(default_factory=dict)
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class JoinGroup:
    TYPE: ClassVar[int] = 11
    connection_id: str
    group_name: str
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class LeaveGroup:
    TYPE: ClassVar[int] = 12
    connection_id: str
    group_name: str
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class GroupBroadcastData:
    """Written with all 7 elements, as .NET writes it; older services send 4 or 5."""

    TYPE: ClassVar[int] = 13
    group_name: str
    excluded_list: tuple[str, ...] = ()
    payloads: Payloads = field(default_factory=dict)
    ext: Ext = EMPTY_EXT
    excluded_user_list: tuple[str, ...] = ()
    caller_user_id: str | None = None


@dataclass(frozen=True, slots=True)
class MultiGroupBroadcastData:
    TYPE: ClassVar[int] = 14
    group_list: tuple[str, ...]
    payloads: Payloads
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class ServiceErrorMessage:
    """The service will not take more from this connection; it has no extension map."""

    TYPE: ClassVar[int] = 15
    error_message: str


@dataclass(frozen=True, slots=True)
class UserJoinGroup:
    TYPE: ClassVar[int] = 16
    user_id: str
    group_name: str
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class UserLeaveGroup:
    """``group_name`` ``None`` removes the user from every group."""

    TYPE: ClassVar[int] = 17
    user_id: str
    group_name: str | None
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class JoinGroupWithAck:
    TYPE: ClassVar[int] = 18
    connection_id: str
    group_name: str
    ack_id: int
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class LeaveGroupWithAck:
    TYPE: ClassVar[int] = 19
    connection_id: str
    group_name: str
    ack_id: int
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class Ack:
    """The service's answer to a ``...WithAck`` message; ``status`` is an :class:`AckStatus`."""

    TYPE: ClassVar[int] = 20
    ack_id: int
    status: int
    message: str = ""
    ext: Ext = EMPTY_EXT
    payload: bytes | None = None  # newer 6th element; not written when None


@dataclass(frozen=True, slots=True)
class CheckUserInGroupWithAck:
    TYPE: ClassVar[int] = 21
    user_id: str
    group_name: str
    ack_id: int
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class ServiceEvent:
    """Something the service tells the server, for its log: ``object_type`` 0 ServiceInstance,
    1 Connection, 2 User, 3 Group, 4 ServerConnection; ``kind`` 0 Reloading, 1 Invalid,
    2 NotExisted, 3 BufferFull."""

    TYPE: ClassVar[int] = 22
    object_type: int
    id: str
    kind: int
    message: str
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class CheckGroupExistenceWithAck:
    TYPE: ClassVar[int] = 23
    group_name: str
    ack_id: int
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class CheckConnectionExistenceWithAck:
    TYPE: ClassVar[int] = 24
    connection_id: str
    ack_id: int
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class CheckUserExistenceWithAck:
    TYPE: ClassVar[int] = 25
    user_id: str
    ack_id: int
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class UserJoinGroupWithAck:
    TYPE: ClassVar[int] = 26
    user_id: str
    group_name: str
    ack_id: int
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class UserLeaveGroupWithAck:
    TYPE: ClassVar[int] = 27
    user_id: str
    group_name: str | None
    ack_id: int
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class AccessKeyRequest:
    """Asks for a temporary access key over the socket (the SDK's alternative to
    ``GET /api/v1/auth/accessKey``). ``token`` is an Entra token: never log this message."""

    TYPE: ClassVar[int] = 28
    token: str = field(repr=False)
    kid: str | None = None
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class AccessKeyResponse:
    """``access_key`` is a signing secret: never log this message."""

    TYPE: ClassVar[int] = 29
    kid: str | None = None
    access_key: str | None = field(default=None, repr=False)
    error_type: str | None = None
    error_message: str | None = None
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class CloseConnectionWithAck:
    """Obsolete in .NET (CloseConnection replaces it); read and written for completeness."""

    TYPE: ClassVar[int] = 30
    connection_id: str
    reason: str | None
    ack_id: int
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class CloseConnectionsWithAck:
    """Obsolete in .NET; read and written for completeness."""

    TYPE: ClassVar[int] = 31
    reason: str | None
    ack_id: int
    excluded_list: tuple[str, ...] = ()
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class CloseUserConnectionsWithAck:
    TYPE: ClassVar[int] = 32
    user_id: str
    reason: str | None
    ack_id: int
    excluded_list: tuple[str, ...] = ()
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class CloseGroupConnectionsWithAck:
    TYPE: ClassVar[int] = 33
    group_name: str
    reason: str | None
    ack_id: int
    excluded_list: tuple[str, ...] = ()
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class ClientInvocation:
    """A server-to-client invocation that expects a result, routed through the service."""

    TYPE: ClassVar[int] = 34
    invocation_id: str
    connection_id: str
    caller_server_id: str
    payloads: Payloads
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class ClientCompletion:
    """A client's result for a :class:`ClientInvocation`: ``payload`` is the hub-protocol Completion
    in ``protocol``. .NET also writes ``protocol`` as extension key 3, and so do we; when read, the
    extension's value wins (as in .NET) and lands in ``protocol``, not in ``ext``."""

    TYPE: ClassVar[int] = 35
    invocation_id: str
    connection_id: str
    caller_server_id: str
    protocol: str
    payload: bytes
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class ErrorCompletion:
    TYPE: ClassVar[int] = 36
    invocation_id: str
    connection_id: str
    caller_server_id: str
    error: str
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class ServiceMapping:
    TYPE: ClassVar[int] = 37
    invocation_id: str
    connection_id: str
    instance_id: str
    ext: Ext = EMPTY_EXT


@dataclass(frozen=True, slots=True)
class ConnectionReconnect:
    """A client reconnected statefully: drop its partial ConnectionData."""

    TYPE: ClassVar[int] = 38
    connection_id: str
    ext: Ext = EMPTY_EXT


ServiceMessage = (
    HandshakeRequest
    | HandshakeResponse
    | Ping
    | OpenConnection
    | CloseConnection
    | ConnectionData
    | MultiConnectionData
    | UserData
    | MultiUserData
    | BroadcastData
    | JoinGroup
    | LeaveGroup
    | GroupBroadcastData
    | MultiGroupBroadcastData
    | ServiceErrorMessage
    | UserJoinGroup
    | UserLeaveGroup
    | JoinGroupWithAck
    | LeaveGroupWithAck
    | Ack
    | CheckUserInGroupWithAck
    | ServiceEvent
    | CheckGroupExistenceWithAck
    | CheckConnectionExistenceWithAck
    | CheckUserExistenceWithAck
    | UserJoinGroupWithAck
    | UserLeaveGroupWithAck
    | AccessKeyRequest
    | AccessKeyResponse
    | CloseConnectionWithAck
    | CloseConnectionsWithAck
    | CloseUserConnectionsWithAck
    | CloseGroupConnectionsWithAck
    | ClientInvocation
    | ClientCompletion
    | ErrorCompletion
    | ServiceMapping
    | ConnectionReconnect
    | ConnectionDataTooLarge
)
"""Every message of the service protocol this codec reads and writes (and the reader's word about
one it could not hold)."""
