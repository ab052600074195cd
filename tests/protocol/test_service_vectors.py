"""The service codec against the golden byte vectors of the .NET SDK's protocol tests.

Source (facts, not code): Azure/azure-signalr, commit 31686ed71ff8140f5b02c24b4bb08a7a04f4d788
(2024-03-22), ``test/Microsoft.Azure.SignalR.Protocols.Tests/ServiceProtocolFacts.cs``:

- ``TestData``: .NET writes each message as exactly these bytes and reads them back, so we must
  write the same bytes and read the same message (every entry is here);
- ``TestCompatibilityData``: the shorter arrays of older services, which .NET still reads (every
  entry is here);
- ``ParseMessageWithExtraData``: bytes after the array inside a frame are ignored.

The vectors are base64 of the MessagePack array without the size prefix, as in the .NET file.
"""

from __future__ import annotations

import base64

import pytest

from signalr_asgi_auth.protocol import (
    EMPTY_EXT,
    AccessKeyRequest,
    AccessKeyResponse,
    Ack,
    BroadcastData,
    CheckConnectionExistenceWithAck,
    CheckGroupExistenceWithAck,
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
    DataMessageType,
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
    decode_service_message,
    encode_service_message,
    frame_service_message,
)
from signalr_asgi_auth.protocol import CheckUserExistenceWithAck as CheckUserExistence

_PAYLOADS_A = {"json": bytes([2, 3, 4, 5, 6, 7, 1]), "messagepack": bytes([3, 4, 5, 6, 7, 1, 2])}
_PAYLOADS_B = {"json": bytes([6, 7, 1, 2, 3, 4, 5]), "messagepack": bytes([7, 1, 2, 3, 4, 5, 6])}
_PAYLOADS_C = {"json": bytes([4, 5, 6, 7, 1, 2, 3]), "messagepack": bytes([5, 6, 7, 1, 2, 3, 4])}
_PAYLOADS_D = {
    "json": bytes([1, 2, 3, 4, 5, 6, 7, 8]),
    "messagepack": bytes([7, 8, 1, 2, 3, 4, 5, 6]),
}
_SEVEN = bytes([1, 2, 3, 4, 5, 6, 7])
_NAME_ID = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"
_HEADERS = {
    "header-key-1": ("header-value-1",),
    "header-key-2": ("heaer-value-2a", "header-value-2b"),
    "header-key-3": ("heaer-value-3a", "header-value-3b", "header-value-3c"),
}
_T1234 = Ext(tracing_id=1234)

# TestData: (name in the .NET file, message, base64)
WRITTEN: list[tuple[str, ServiceMessage, str]] = [
    ("HandshakeRequest", HandshakeRequest(), "lgEBAKAAgA=="),
    (
        "HandshakeRequestWithProperty",
        HandshakeRequest(connection_type=1, target="abc"),
        "lgEBAaNhYmMAgA==",
    ),
    ("HandshakeRequestWithMigratableStatus", HandshakeRequest(migration_level=1), "lgEBAKABgA=="),
    ("HandshakeResponse", HandshakeResponse(), "lAKggMA="),
    (
        "HandshakeResponseWithError",
        HandshakeResponse("Version mismatch."),
        "lAKxVmVyc2lvbiBtaXNtYXRjaC6AwA==",
    ),
    ("HandshakeResponseWithConnectionId", HandshakeResponse(connection_id="abc"), "lAKggKNhYmM="),
    ("AccessKeyRequestMessage", AccessKeyRequest("token"), "lByldG9rZW7AgA=="),
    ("AccessKeyRequestMessageWithKid", AccessKeyRequest("token", "kid"), "lByldG9rZW6ja2lkgA=="),
    ("AccessKeyResponseMessage", AccessKeyResponse("kid", "key"), "lh2ja2lko2tlecDAgA=="),
    (
        "AccessKeyResponseMessageWithException",
        AccessKeyResponse(
            None,
            None,
            "ArgumentNullException",
            "Value cannot be null. (Parameter 'token invalid')",
        ),
        "lh3AwLVBcmd1bWVudE51bGxFeGNlcHRpb27ZMVZhbHVlIGNhbm5vdCBiZSBudWxsLiAoUGFyYW1ldGVyICd0b2tlbiBpbnZhbGlkJymA",
    ),
    ("Ping", Ping(), "kQM="),
    ("Ping+", Ping(("a", "b")), "kwOhYaFi"),
    ("OpenConnection", OpenConnection("conn1"), "lgSlY29ubjGAgKCA"),
    (
        "OpenConnectionWithTracingId",
        OpenConnection("conn1", ext=Ext(tracing_id=888)),
        "lgSlY29ubjGAgKCBAc0DeA==",
    ),
    (
        "OpenConnectionWithClaims",
        OpenConnection("conn2", ((_NAME_ID, "user1"),)),
        "lgSlY29ubjKB2URodHRwOi8vc2NoZW1hcy54bWxzb2FwLm9yZy93cy8yMDA1LzA1L2lkZW50aXR5L2NsYWltcy9uYW1laWRlbnRpZmllcqV1c2VyMYCggA==",
    ),
    (
        "OpenConnectionWithHeaders",
        OpenConnection("conn3", headers=_HEADERS),
        "lgSlY29ubjOAg6xoZWFkZXIta2V5LTGRrmhlYWRlci12YWx1ZS0xrGhlYWRlci1rZXktMpKuaGVhZXItdmFsdWUtMmGvaGVhZGVyLXZhbHVlLTJirGhlYWRlci1rZXktM5OuaGVhZXItdmFsdWUtM2GvaGVhZGVyLXZhbHVlLTNir2hlYWRlci12YWx1ZS0zY6CA",
    ),
    (
        "OpenConnectionWithQueryString1",
        OpenConnection("conn4", query_string="query1=value1"),
        "lgSlY29ubjSAgK1xdWVyeTE9dmFsdWUxgA==",
    ),
    (
        "OpenConnectionWithQueryString2",
        OpenConnection("conn4", query_string="query1=value1&query2=query2&query3=value3"),
        "lgSlY29ubjSAgNkpcXVlcnkxPXZhbHVlMSZxdWVyeTI9cXVlcnkyJnF1ZXJ5Mz12YWx1ZTOA",
    ),
    (
        "OpenConnection_WithProtocol",
        OpenConnection("conn1", ext=Ext(protocol="json")),
        "lgSlY29ubjGAgKCBA6Rqc29u",
    ),
    ("CloseConnection", CloseConnection("conn3"), "lQWlY29ubjOggIA="),
    (
        "CloseConnectionWithError",
        CloseConnection("conn4", "Error message."),
        "lQWlY29ubjSuRXJyb3IgbWVzc2FnZS6AgA==",
    ),
    (
        "CloseConnectionWithTracingId",
        CloseConnection("conn4", ext=Ext(tracing_id=123)),
        "lQWlY29ubjSggIEBew==",
    ),
    ("ConnectionData", ConnectionData("conn5", _SEVEN), "lAalY29ubjXEBwECAwQFBgeA"),
    (
        "ConnectionData_WithTypeAndPartial",
        ConnectionData(
            "conn6", _SEVEN, Ext(data_message_type=DataMessageType.INVOCATION, is_partial=True)
        ),
        "lAalY29ubjbEBwECAwQFBgeCBQIGww==",
    ),
    ("ConnectionReconnect", ConnectionReconnect("conn7"), "kyalY29ubjeA"),
    (
        "MultiConnectionData",
        MultiConnectionData(("conn6", "conn7"), _PAYLOADS_A),
        "lAeSpWNvbm42pWNvbm43gqRqc29uxAcCAwQFBgcBq21lc3NhZ2VwYWNrxAcDBAUGBwECgA==",
    ),
    (
        "UserData",
        UserData("user1", _PAYLOADS_B),
        "lAildXNlcjGCpGpzb27EBwYHAQIDBAWrbWVzc2FnZXBhY2vEBwcBAgMEBQaA",
    ),
    (
        "MultiUserData",
        MultiUserData(("user1", "user2"), _PAYLOADS_B),
        "lAmSpXVzZXIxpXVzZXIygqRqc29uxAcGBwECAwQFq21lc3NhZ2VwYWNrxAcHAQIDBAUGgA==",
    ),
    (
        "Broadcast",
        BroadcastData(payloads=_PAYLOADS_C),
        "lAqQgqRqc29uxAcEBQYHAQIDq21lc3NhZ2VwYWNrxAcFBgcBAgMEgA==",
    ),
    (
        "BroadcastExcept",
        BroadcastData(("conn7", "conn8", "conn9"), _PAYLOADS_B),
        "lAqTpWNvbm43pWNvbm44pWNvbm45gqRqc29uxAcGBwECAwQFq21lc3NhZ2VwYWNrxAcHAQIDBAUGgA==",
    ),
    ("JoinGroup", JoinGroup("conn10", "group1"), "lAumY29ubjEwpmdyb3VwMYA="),
    ("LeaveGroup", LeaveGroup("conn11", "group2"), "lAymY29ubjExpmdyb3VwMoA="),
    ("UserJoinGroup", UserJoinGroup("conn10", "group1"), "lBCmY29ubjEwpmdyb3VwMYA="),
    (
        "UserJoinGroupWithTtl",
        UserJoinGroup("conn10", "group1", Ext(ttl=100)),
        "lBCmY29ubjEwpmdyb3VwMYECZA==",
    ),
    ("UserLeaveGroup", UserLeaveGroup("conn11", "group2"), "lBGmY29ubjExpmdyb3VwMoA="),
    (
        "GroupBroadcast",
        GroupBroadcastData("group3", payloads=_PAYLOADS_B),
        "lw2mZ3JvdXAzkIKkanNvbsQHBgcBAgMEBattZXNzYWdlcGFja8QHBwECAwQFBoCQwA==",
    ),
    (
        "GroupBroadcastExcept",
        GroupBroadcastData("group3", ("conn12", "conn13"), _PAYLOADS_B),
        "lw2mZ3JvdXAzkqZjb25uMTKmY29ubjEzgqRqc29uxAcGBwECAwQFq21lc3NhZ2VwYWNrxAcHAQIDBAUGgJDA",
    ),
    (
        "GroupBroadcastExceptUser",
        GroupBroadcastData(
            "group3",
            ("conn12", "conn13"),
            _PAYLOADS_B,
            excluded_user_list=("user1", "user2"),
            caller_user_id="user3",
        ),
        "lw2mZ3JvdXAzkqZjb25uMTKmY29ubjEzgqRqc29uxAcGBwECAwQFq21lc3NhZ2VwYWNrxAcHAQIDBAUGgJKldXNlcjGldXNlcjKldXNlcjM=",
    ),
    (
        "GroupBroadcastWithTracingId",
        GroupBroadcastData("group3", payloads=_PAYLOADS_B, ext=_T1234),
        "lw2mZ3JvdXAzkIKkanNvbsQHBgcBAgMEBattZXNzYWdlcGFja8QHBwECAwQFBoEBzQTSkMA=",
    ),
    (
        "MultiGroupBroadcast",
        MultiGroupBroadcastData(("group4", "group5"), _PAYLOADS_D),
        "lA6Spmdyb3VwNKZncm91cDWCpGpzb27ECAECAwQFBgcIq21lc3NhZ2VwYWNrxAgHCAECAwQFBoA=",
    ),
    (
        "ServiceError",
        ServiceErrorMessage("Maximum message count limit reached: 100000"),
        "kg/ZK01heGltdW0gbWVzc2FnZSBjb3VudCBsaW1pdCByZWFjaGVkOiAxMDAwMDA=",
    ),
    ("JoinGroupWithAck", JoinGroupWithAck("conn14", "group1", 1), "lRKmY29ubjE0pmdyb3VwMQGA"),
    ("LeaveGroupWithAck", LeaveGroupWithAck("conn15", "group2", 1), "lROmY29ubjE1pmdyb3VwMgGA"),
    ("Ack", Ack(1, 100), "lRQBZKCA"),
    (
        "AckWithMessage",
        Ack(2, 101, "Joined group successfully"),
        "lRQCZblKb2luZWQgZ3JvdXAgc3VjY2Vzc2Z1bGx5gA==",
    ),
    (
        "ConnectionDataWithTracingId",
        ConnectionData("conn5", _SEVEN, _T1234),
        "lAalY29ubjXEBwECAwQFBgeBAc0E0g==",
    ),
    (
        "MultiConnectionDataWithTracingId",
        MultiConnectionData(("conn6", "conn7"), _PAYLOADS_A, _T1234),
        "lAeSpWNvbm42pWNvbm43gqRqc29uxAcCAwQFBgcBq21lc3NhZ2VwYWNrxAcDBAUGBwECgQHNBNI=",
    ),
    (
        "UserDataWithTracingId",
        UserData("user1", _PAYLOADS_B, _T1234),
        "lAildXNlcjGCpGpzb27EBwYHAQIDBAWrbWVzc2FnZXBhY2vEBwcBAgMEBQaBAc0E0g==",
    ),
    (
        "MultiUserDataWithTracingId",
        MultiUserData(("user1", "user2"), _PAYLOADS_B, _T1234),
        "lAmSpXVzZXIxpXVzZXIygqRqc29uxAcGBwECAwQFq21lc3NhZ2VwYWNrxAcHAQIDBAUGgQHNBNI=",
    ),
    (
        "BroadcastWithTracingId",
        BroadcastData(payloads=_PAYLOADS_C, ext=_T1234),
        "lAqQgqRqc29uxAcEBQYHAQIDq21lc3NhZ2VwYWNrxAcFBgcBAgMEgQHNBNI=",
    ),
    (
        "JoinGroupWithTracingId",
        JoinGroup("conn10", "group1", _T1234),
        "lAumY29ubjEwpmdyb3VwMYEBzQTS",
    ),
    (
        "LeaveGroupWithTracingId",
        LeaveGroup("conn11", "group2", _T1234),
        "lAymY29ubjExpmdyb3VwMoEBzQTS",
    ),
    (
        "UserJoinGroupWithTracingId",
        UserJoinGroup("conn10", "group1", _T1234),
        "lBCmY29ubjEwpmdyb3VwMYEBzQTS",
    ),
    (
        "UserLeaveGroupWithTracingId",
        UserLeaveGroup("conn11", "group2", _T1234),
        "lBGmY29ubjExpmdyb3VwMoEBzQTS",
    ),
    (
        "MultiGroupBroadcastWithTracingId",
        MultiGroupBroadcastData(("group4", "group5"), _PAYLOADS_D, _T1234),
        "lA6Spmdyb3VwNKZncm91cDWCpGpzb27ECAECAwQFBgcIq21lc3NhZ2VwYWNrxAgHCAECAwQFBoEBzQTS",
    ),
    (
        "JoinGroupWithAckWithTracingId",
        JoinGroupWithAck("conn14", "group1", 1, _T1234),
        "lRKmY29ubjE0pmdyb3VwMQGBAc0E0g==",
    ),
    (
        "LeaveGroupWithAckWithTracingId",
        LeaveGroupWithAck("conn15", "group2", 1, _T1234),
        "lROmY29ubjE1pmdyb3VwMgGBAc0E0g==",
    ),
    (
        "UserJoinGroupWithAckWithTracingId",
        UserJoinGroupWithAck("conn14", "group1", 1, Ext(tracing_id=1234, ttl=666)),
        "lRqmY29ubjE0pmdyb3VwMQGCAc0E0gLNApo=",
    ),
    (
        "UserLeaveGroupWithAckWithTracingId",
        UserLeaveGroupWithAck("conn15", "group2", 1, _T1234),
        "lRumY29ubjE1pmdyb3VwMgGBAc0E0g==",
    ),
    (
        "CheckUserInGroupWithAckWithMessage",
        CheckUserInGroupWithAck("user", "group", 3, _T1234),
        "lRWkdXNlcqVncm91cAOBAc0E0g==",
    ),
    (
        "ServiceWarningMessage",
        ServiceEvent(2, "abc", 2, "User abc is not existed."),
        "lhYCo2FiYwK4VXNlciBhYmMgaXMgbm90IGV4aXN0ZWQugA==",
    ),
    (
        "CheckGroupExistenceWithAckMessage",
        CheckGroupExistenceWithAck("group", 0, Ext(tracing_id=3)),
        "lBelZ3JvdXAAgQED",
    ),
    (
        "CheckConnectionExistenceWithAckMessage",
        CheckConnectionExistenceWithAck("connId", 1, Ext(tracing_id=2)),
        "lBimY29ubklkAYEBAg==",
    ),
    (
        "CheckUserExistenceWithAckMessage",
        CheckUserExistence("uid", 4, Ext(tracing_id=23)),
        "lBmjdWlkBIEBFw==",
    ),
    ("CloseConnectionWithAckMessage", CloseConnectionWithAck("conn1", None, 1), "lR6lY29ubjHAAYA="),
    (
        "CloseConnectionWithAckMessage_WithOptional",
        CloseConnectionWithAck("conn1", "detail", 1, Ext(tracing_id=1)),
        "lR6lY29ubjGmZGV0YWlsAYEBAQ==",
    ),
    ("CloseConnectionsWithAckMessage", CloseConnectionsWithAck(None, 1), "lR/AAZCA"),
    (
        "CloseConnectionsWithAckMessage_WithOptional",
        CloseConnectionsWithAck(None, 1, ("connId",), Ext(tracing_id=1)),
        "lR/AAZGmY29ubklkgQEB",
    ),
    (
        "CloseUserConnectionsWithAckMessage",
        CloseUserConnectionsWithAck("user1", None, 1),
        "liCldXNlcjHAAZCA",
    ),
    (
        "CloseUserConnectionsWithAckMessage_WithOptional",
        CloseUserConnectionsWithAck("conn1", "detail", 1, ext=Ext(tracing_id=1)),
        "liClY29ubjGmZGV0YWlsAZCBAQE=",
    ),
    (
        "CloseGroupConnectionsWithAckMessage",
        CloseGroupConnectionsWithAck("group1", None, 1),
        "liGmZ3JvdXAxwAGQgA==",
    ),
    (
        "CloseGroupConnectionsWithAckMessage_WithOptional",
        CloseGroupConnectionsWithAck("group1", "detail", 1, ext=Ext(tracing_id=1)),
        "liGmZ3JvdXAxpmRldGFpbAGQgQEB",
    ),
    (
        "ClientInvocationMessage",
        ClientInvocation("invocationId", "conn1", "server1", _PAYLOADS_A),
        "liKsaW52b2NhdGlvbklkpWNvbm4xp3NlcnZlcjGCpGpzb27EBwIDBAUGBwGrbWVzc2FnZXBhY2vEBwMEBQYHAQKA",
    ),
    (
        "ClientCompletionMessage",
        ClientCompletion("invocationId", "conn1", "server1", "json", _PAYLOADS_A["json"]),
        "lyOsaW52b2NhdGlvbklkpWNvbm4xp3NlcnZlcjGkanNvbsQHAgMEBQYHAYEDpGpzb24=",
    ),
    (
        "ErrorCompletionMessage",
        ErrorCompletion("invocationId", "conn1", "server1", "invocation failed."),
        "liSsaW52b2NhdGlvbklkpWNvbm4xp3NlcnZlcjGyaW52b2NhdGlvbiBmYWlsZWQugA==",
    ),
    (
        "ServiceMappingMessage",
        ServiceMapping("invocationId", "conn1", "instance1"),
        "lSWsaW52b2NhdGlvbklkpWNvbm4xqWluc3RhbmNlMYA=",
    ),
]

# TestCompatibilityData: what older services send; read only.
OLDER: list[tuple[str, ServiceMessage, str]] = [
    ("CloseConnection", CloseConnection("conn3"), "kwWlY29ubjPA"),
    (
        "CloseConnectionWithError",
        CloseConnection("conn4", "Error message."),
        "kwWlY29ubjSuRXJyb3IgbWVzc2FnZS4=",
    ),
    (
        "CloseConnectionWithHeaders",
        CloseConnection("conn4", "Error message.", {"foo": ("bar",)}),
        "lAWlY29ubjSuRXJyb3IgbWVzc2FnZS6Bo2Zvb5GjYmFy",
    ),
    ("HandshakeRequest", HandshakeRequest(), "kgEB"),
    (
        "HandshakeRequestWithProperty",
        HandshakeRequest(connection_type=1, target="abc"),
        "lAEBAaNhYmM=",
    ),
    ("HandshakeRequest_NoOptionalField", HandshakeRequest(), "lQEBAKAA"),
    (
        "HandshakeRequestWithProperty_NoOptionalField",
        HandshakeRequest(connection_type=1, target="abc"),
        "lQEBAaNhYmMA",
    ),
    (
        "HandshakeRequestWithMigratableStatus_NoOptionalField",
        HandshakeRequest(migration_level=1),
        "lQEBAKAB",
    ),
    ("HandshakeResponse_NoOptionalField", HandshakeResponse(), "kgKg"),
    ("HandshakeResponse_NoConnectionId", HandshakeResponse(), "kwKggA=="),
    (
        "HandshakeResponseWithError_NoOptionalField",
        HandshakeResponse("Version mismatch."),
        "kgKxVmVyc2lvbiBtaXNtYXRjaC4=",
    ),
    (
        "HandshakeResponseWithError_NoConnectionId",
        HandshakeResponse("Version mismatch."),
        "kwKxVmVyc2lvbiBtaXNtYXRjaC6A",
    ),
    ("OpenConnection_NoOptionalField", OpenConnection("conn1"), "lQSlY29ubjGAgKA="),
    (
        "OpenConnectionWithClaims_NoOptionalField",
        OpenConnection("conn2", ((_NAME_ID, "user1"),)),
        "lQSlY29ubjKB2URodHRwOi8vc2NoZW1hcy54bWxzb2FwLm9yZy93cy8yMDA1LzA1L2lkZW50aXR5L2NsYWltcy9uYW1laWRlbnRpZmllcqV1c2VyMYCg",
    ),
    (
        "OpenConnectionWithHeaders_NoOptionalField",
        OpenConnection("conn3", headers=_HEADERS),
        "lQSlY29ubjOAg6xoZWFkZXIta2V5LTGRrmhlYWRlci12YWx1ZS0xrGhlYWRlci1rZXktMpKuaGVhZXItdmFsdWUtMmGvaGVhZGVyLXZhbHVlLTJirGhlYWRlci1rZXktM5OuaGVhZXItdmFsdWUtM2GvaGVhZGVyLXZhbHVlLTNir2hlYWRlci12YWx1ZS0zY6A=",
    ),
    (
        "OpenConnectionWithQueryString1_NoOptionalField",
        OpenConnection("conn4", query_string="query1=value1"),
        "lQSlY29ubjSAgK1xdWVyeTE9dmFsdWUx",
    ),
    (
        "OpenConnectionWithQueryString2_NoOptionalField",
        OpenConnection("conn4", query_string="query1=value1&query2=query2&query3=value3"),
        "lQSlY29ubjSAgNkpcXVlcnkxPXZhbHVlMSZxdWVyeTI9cXVlcnkyJnF1ZXJ5Mz12YWx1ZTM=",
    ),
    ("CloseConnection_NoOptionalField", CloseConnection("conn3"), "lAWlY29ubjOggA=="),
    (
        "CloseConnectionWithError_NoOptionalField",
        CloseConnection("conn4", "Error message."),
        "lAWlY29ubjSuRXJyb3IgbWVzc2FnZS6A",
    ),
    ("ConnectionData_NoOptionalField", ConnectionData("conn5", _SEVEN), "kwalY29ubjXEBwECAwQFBgc="),
    (
        "MultiConnectionData_NoOptionalField",
        MultiConnectionData(("conn6", "conn7"), _PAYLOADS_A),
        "kweSpWNvbm42pWNvbm43gqRqc29uxAcCAwQFBgcBq21lc3NhZ2VwYWNrxAcDBAUGBwEC",
    ),
    (
        "UserData_NoOptionalField",
        UserData("user1", _PAYLOADS_B),
        "kwildXNlcjGCpGpzb27EBwYHAQIDBAWrbWVzc2FnZXBhY2vEBwcBAgMEBQY=",
    ),
    (
        "MultiUserData_NoOptionalField",
        MultiUserData(("user1", "user2"), _PAYLOADS_B),
        "kwmSpXVzZXIxpXVzZXIygqRqc29uxAcGBwECAwQFq21lc3NhZ2VwYWNrxAcHAQIDBAUG",
    ),
    (
        "Broadcast_NoOptionalField",
        BroadcastData(payloads=_PAYLOADS_C),
        "kwqQgqRqc29uxAcEBQYHAQIDq21lc3NhZ2VwYWNrxAcFBgcBAgME",
    ),
    (
        "BroadcastExcept_NoOptionalField",
        BroadcastData(("conn7", "conn8", "conn9"), _PAYLOADS_B),
        "kwqTpWNvbm43pWNvbm44pWNvbm45gqRqc29uxAcGBwECAwQFq21lc3NhZ2VwYWNrxAcHAQIDBAUG",
    ),
    ("JoinGroup_NoOptionalField", JoinGroup("conn10", "group1"), "kwumY29ubjEwpmdyb3VwMQ=="),
    ("LeaveGroup_NoOptionalField", LeaveGroup("conn11", "group2"), "kwymY29ubjExpmdyb3VwMg=="),
    (
        "UserJoinGroup_NoOptionalField",
        UserJoinGroup("conn10", "group1"),
        "kxCmY29ubjEwpmdyb3VwMQ==",
    ),
    (
        "UserLeaveGroup_NoOptionalField",
        UserLeaveGroup("conn11", "group2"),
        "kxGmY29ubjExpmdyb3VwMg==",
    ),
    (
        "GroupBroadcast_NoOptionalField",
        GroupBroadcastData("group3", payloads=_PAYLOADS_B),
        "lA2mZ3JvdXAzkIKkanNvbsQHBgcBAgMEBattZXNzYWdlcGFja8QHBwECAwQFBg==",
    ),
    (
        "GroupBroadcastExcept_NoOptionalField",
        GroupBroadcastData("group3", ("conn12", "conn13"), _PAYLOADS_B),
        "lA2mZ3JvdXAzkqZjb25uMTKmY29ubjEzgqRqc29uxAcGBwECAwQFq21lc3NhZ2VwYWNrxAcHAQIDBAUG",
    ),
    (
        "MultiGroupBroadcast_NoOptionalField",
        MultiGroupBroadcastData(("group4", "group5"), _PAYLOADS_D),
        "kw6Spmdyb3VwNKZncm91cDWCpGpzb27ECAECAwQFBgcIq21lc3NhZ2VwYWNrxAgHCAECAwQFBg==",
    ),
    (
        "JoinGroupWithAck_NoOptionalField",
        JoinGroupWithAck("conn14", "group1", 1),
        "lBKmY29ubjE0pmdyb3VwMQE=",
    ),
    (
        "LeaveGroupWithAck_NoOptionalField",
        LeaveGroupWithAck("conn15", "group2", 1),
        "lBOmY29ubjE1pmdyb3VwMgE=",
    ),
    ("Ack_NoOptionalField", Ack(1, 100), "lBQBZKA="),
    (
        "AckWithMessage_NoOptionalField",
        Ack(2, 101, "Joined group successfully"),
        "lBQCZblKb2luZWQgZ3JvdXAgc3VjY2Vzc2Z1bGx5",
    ),
    (
        "GroupBroadcastExcept",
        GroupBroadcastData("group3", ("conn12", "conn13"), _PAYLOADS_B),
        "lQ2mZ3JvdXAzkqZjb25uMTKmY29ubjEzgqRqc29uxAcGBwECAwQFq21lc3NhZ2VwYWNrxAcHAQIDBAUGgA==",
    ),
    (
        "GroupBroadcast",
        GroupBroadcastData("group3", payloads=_PAYLOADS_B),
        "lQ2mZ3JvdXAzkIKkanNvbsQHBgcBAgMEBattZXNzYWdlcGFja8QHBwECAwQFBoA=",
    ),
    (
        "GroupBroadcastWithTracingId",
        GroupBroadcastData("group3", payloads=_PAYLOADS_B, ext=_T1234),
        "lQ2mZ3JvdXAzkIKkanNvbsQHBgcBAgMEBattZXNzYWdlcGFja8QHBwECAwQFBoEBzQTS",
    ),
]


def _ids(table: list[tuple[str, ServiceMessage, str]]) -> list[str]:
    return [name for name, _, _ in table]


def test_the_tables_are_whole() -> None:
    # 76 written (TestData) and 39 older (TestCompatibilityData) entries in the cited file.
    assert (len(WRITTEN), len(OLDER)) == (76, 39)
    assert len(set(_ids(WRITTEN))) == len(WRITTEN)
    assert len(set(_ids(OLDER))) == len(OLDER)


@pytest.mark.parametrize(("name", "message", "binary"), WRITTEN, ids=_ids(WRITTEN))
def test_writes_the_bytes_dotnet_writes(name: str, message: ServiceMessage, binary: str) -> None:
    assert base64.b64encode(encode_service_message(message)).decode() == binary


@pytest.mark.parametrize(("name", "message", "binary"), WRITTEN, ids=_ids(WRITTEN))
def test_reads_what_dotnet_writes(name: str, message: ServiceMessage, binary: str) -> None:
    assert decode_service_message(base64.b64decode(binary)) == message


@pytest.mark.parametrize(("name", "message", "binary"), OLDER, ids=_ids(OLDER))
def test_reads_the_shorter_arrays_of_older_services(
    name: str, message: ServiceMessage, binary: str
) -> None:
    assert decode_service_message(base64.b64decode(binary)) == message


def test_a_frame_is_the_size_prefix_then_the_vector() -> None:
    framed = frame_service_message(HandshakeRequest())
    assert framed == bytes([7]) + base64.b64decode("lgEBAKAAgA==")
    assert framed.hex(" ") == "07 96 01 01 00 a0 00 80"


def test_bytes_after_the_array_in_a_frame_are_ignored() -> None:
    # ParseMessageWithExtraData: a legacy 3-element OpenConnection, then a 5-element one, each
    # followed by a stray string inside the same frame.
    legacy = bytes([0x93, 4, 0xA2, *b"id", 0x80, 0xA2, *b"ex"])
    assert decode_service_message(legacy) == OpenConnection("id")
    current = bytes([0x95, 4, 0xA2, *b"id", 0x80, 0x80, 0xA4, *b"?k=v", 0xA2, *b"ex"])
    assert decode_service_message(current) == OpenConnection("id", query_string="?k=v")


def test_claims_keep_repeated_types_in_order() -> None:
    claims = (("role", "admin"), ("sub", "u1"), ("role", "reader"))
    message = OpenConnection("c", claims, ext=Ext(protocol="messagepack"))
    decoded = decode_service_message(encode_service_message(message))
    assert isinstance(decoded, OpenConnection)
    assert decoded.claims == claims
    assert decoded.ext.protocol == "messagepack"


def test_empty_ext_reads_as_the_shared_empty_ext() -> None:
    decoded = decode_service_message(base64.b64decode("lAalY29ubjXEBwECAwQFBgeA"))
    assert isinstance(decoded, ConnectionData)
    assert decoded.ext is EMPTY_EXT
