"""The JSON and MessagePack hub protocols, the handshake and payload maps.

Vectors (facts, not code) from dotnet/aspnetcore:
- ``src/SignalR/docs/specs/HubProtocol.md`` (commit 0756473898ca1e9f8e47fcf994bfb379aee2f647): the
  MessagePack examples byte for byte, the JSON examples;
- ``src/SignalR/common/SignalR.Common/test/Internal/Protocol/JsonHubProtocolTestsBase.cs``
  (commit 08d423a9c19e126a79d56590e1f1191f57640932): ``ProtocolTestData`` (written and read),
  ``OutOfOrderJsonTestData`` (read), ``InvalidMessages`` and ``ExtraItemsInMessageAreIgnored``;
- ``src/SignalR/common/SignalR.Common/test/Internal/Protocol/MessagePackHubProtocolTestBase.cs``
  (commit 24d60f82af9bf86ccee4a35c367a20784b3a1071): ``BaseTestData`` (written and read; the two
  float32 vectors read only: Python floats are written as float64), ``BaseInvalidPayloads``,
  ``ParseMessageWithExtraData``, ``ParserDoesNotConsumePartialData`` and ``MessageSizeData``.
The .NET-only cases (DateTime binding, argument binding against method signatures) belong to the hub
layer and are not here.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalr_asgi_auth.protocol import (
    HUB_PROTOCOLS,
    CancelInvocation,
    Completion,
    HubClose,
    HubMessage,
    HubPing,
    HubProtocol,
    Invocation,
    JsonHubProtocol,
    MessagePackHubProtocol,
    ProtocolError,
    StreamInvocation,
    StreamItem,
    get_hub_protocol,
    handshake_response,
    parse_handshake_request,
    payloads_for,
    size_prefix,
)

JSON = JsonHubProtocol()
MSGPACK = MessagePackHubProtocol()

HEADERS = {
    "Foo": "Bar",
    "KeyWith\nNew\r\nLines": "Still Works",
    "ValueWithNewLines": "Also\nWorks\r\nFine",
}
SERIALIZED_HEADERS = (
    '"headers":{"Foo":"Bar","KeyWith\\nNew\\r\\nLines":"Still Works",'
    '"ValueWithNewLines":"Also\\nWorks\\r\\nFine"}'
)

# ProtocolTestData of JsonHubProtocolTestsBase.cs; the DateTimeOffset entry is a string here.
JSON_VECTORS: list[tuple[str, HubMessage, str]] = [
    (
        "InvocationMessage_HasInvocationId",
        Invocation("Target", (1, "Foo"), "123"),
        '{"type":1,"invocationId":"123","target":"Target","arguments":[1,"Foo"]}',
    ),
    (
        "InvocationMessage_HasBoolArgument",
        Invocation("Target", (True,)),
        '{"type":1,"target":"Target","arguments":[true]}',
    ),
    (
        "InvocationMessage_HasNullArgument",
        Invocation("Target", (None,)),
        '{"type":1,"target":"Target","arguments":[null]}',
    ),
    (
        "InvocationMessage_HasStreamArgument",
        Invocation("Target", (), stream_ids=("__test_id__",)),
        '{"type":1,"target":"Target","arguments":[],"streamIds":["__test_id__"]}',
    ),
    (
        "InvocationMessage_HasStreamAndNormalArgument",
        Invocation("Target", (42,), stream_ids=("__test_id__",)),
        '{"type":1,"target":"Target","arguments":[42],"streamIds":["__test_id__"]}',
    ),
    (
        "InvocationMessage_HasMultipleStreams",
        Invocation("Target", (), stream_ids=("__test_id__", "__test_id2__")),
        '{"type":1,"target":"Target","arguments":[],"streamIds":["__test_id__","__test_id2__"]}',
    ),
    (
        "InvocationMessage_DateTimeOffsetArgument",
        Invocation("Method", ("2016-05-10T13:51:20+12:34",)),
        '{"type":1,"target":"Method","arguments":["2016-05-10T13:51:20+12:34"]}',
    ),
    (
        "StreamItemMessage_HasIntegerItem",
        StreamItem("123", 1),
        '{"type":2,"invocationId":"123","item":1}',
    ),
    (
        "StreamItemMessage_HasStringItem",
        StreamItem("123", "Foo"),
        '{"type":2,"invocationId":"123","item":"Foo"}',
    ),
    (
        "StreamItemMessage_HasBoolItem",
        StreamItem("123", True),
        '{"type":2,"invocationId":"123","item":true}',
    ),
    (
        "StreamItemMessage_HasNullItem",
        StreamItem("123", None),
        '{"type":2,"invocationId":"123","item":null}',
    ),
    (
        "CompletionMessage_HasIntegerResult",
        Completion.with_result("123", 1),
        '{"type":3,"invocationId":"123","result":1}',
    ),
    (
        "CompletionMessage_HasStringResult",
        Completion.with_result("123", "Foo"),
        '{"type":3,"invocationId":"123","result":"Foo"}',
    ),
    (
        "CompletionMessage_HasBoolResult",
        Completion.with_result("123", True),
        '{"type":3,"invocationId":"123","result":true}',
    ),
    (
        "CompletionMessage_HasNullResult",
        Completion.with_result("123", None),
        '{"type":3,"invocationId":"123","result":null}',
    ),
    (
        "CompletionMessage_HasError",
        Completion.with_error("123", "Whoops!"),
        '{"type":3,"invocationId":"123","error":"Whoops!"}',
    ),
    (
        "CompletionMessage_HasErrorAndHeaders",
        Completion("123", error="Whoops!", headers=HEADERS),
        '{"type":3,' + SERIALIZED_HEADERS + ',"invocationId":"123","error":"Whoops!"}',
    ),
    (
        "StreamInvocationMessage_HasInvocationId",
        StreamInvocation("123", "Target", (1, "Foo")),
        '{"type":4,"invocationId":"123","target":"Target","arguments":[1,"Foo"]}',
    ),
    (
        "StreamInvocationMessage_HasBoolArgument",
        StreamInvocation("123", "Target", (True,)),
        '{"type":4,"invocationId":"123","target":"Target","arguments":[true]}',
    ),
    (
        "StreamInvocationMessage_HasNullArgument",
        StreamInvocation("123", "Target", (None,)),
        '{"type":4,"invocationId":"123","target":"Target","arguments":[null]}',
    ),
    (
        "StreamInvocationMessage_HasStreamArgument",
        StreamInvocation("123", "Target", (), ("__test_id__",)),
        '{"type":4,"invocationId":"123","target":"Target","arguments":[],"streamIds":["__test_id__"]}',
    ),
    (
        "CancelInvocationMessage_HasInvocationId",
        CancelInvocation("123"),
        '{"type":5,"invocationId":"123"}',
    ),
    (
        "CancelInvocationMessage_HasHeaders",
        CancelInvocation("123", HEADERS),
        '{"type":5,' + SERIALIZED_HEADERS + ',"invocationId":"123"}',
    ),
    ("PingMessage", HubPing(), '{"type":6}'),
    ("CloseMessage", HubClose(), '{"type":7}'),
    ("CloseMessage_HasError", HubClose("Error!"), '{"type":7,"error":"Error!"}'),
    ("CloseMessage_HasErrorEmptyString", HubClose(""), '{"type":7,"error":""}'),
    # From the spec: a void completion, and a close that lets the client reconnect.
    ("spec: Completion without result", Completion.void("123"), '{"type":3,"invocationId":"123"}'),
    (
        "spec: Close with allowReconnect",
        HubClose("Connection closed because of an error!", allow_reconnect=True),
        '{"type":7,"error":"Connection closed because of an error!","allowReconnect":true}',
    ),
]

JSON_READ_ONLY: list[tuple[str, HubMessage, str]] = [
    (
        "InvocationMessage_StringIsoDateArgumentFirst",
        Invocation("Method", ("2016-05-10T13:51:20+12:34",)),
        '{ "arguments": ["2016-05-10T13:51:20+12:34"], "type":1, "target": "Method" }',
    ),
    (
        "InvocationMessage_IntegerArrayArgumentFirst",
        Invocation("Method", (1, 2)),
        '{ "arguments": [1,2], "type":1, "target": "Method" }',
    ),
    (
        "StreamInvocationMessage_IntegerArrayArgumentFirst",
        StreamInvocation("3", "Method", (1, 2)),
        '{ "type":4, "arguments": [1,2], "target": "Method", "invocationId": "3" }',
    ),
    (
        "CompletionMessage_ResultFirst",
        Completion.with_result("15", 10),
        '{ "type":3, "result": 10, "invocationId": "15" }',
    ),
    (
        "StreamItemMessage_ItemFirst",
        StreamItem("1a", "foo"),
        '{ "item": "foo", "invocationId": "1a", "type":2 }',
    ),
    (
        "ExtraItemsInMessageAreIgnored",
        Invocation("foo", (), "42"),
        '{"type":1,"invocationId":"42","target":"foo","arguments":[],"extraParameter":"1"}',
    ),
    (
        "spec: headers example",
        Invocation("Send", (42, "Test Message"), "123", headers={"Foo": "Bar"}),
        '{"type":1,"headers":{"Foo":"Bar"},"invocationId":"123","target":"Send",'
        '"arguments":[42,"Test Message"]}',
    ),
]


def _names(table: list[tuple[str, HubMessage, str]]) -> list[str]:
    return [name for name, _, _ in table]


@pytest.mark.parametrize(("name", "message", "text"), JSON_VECTORS, ids=_names(JSON_VECTORS))
def test_json_writes_what_aspnetcore_writes(name: str, message: HubMessage, text: str) -> None:
    assert JSON.write(message) == text.encode() + b"\x1e"


@pytest.mark.parametrize(
    ("name", "message", "text"),
    JSON_VECTORS + JSON_READ_ONLY,
    ids=_names(JSON_VECTORS + JSON_READ_ONLY),
)
def test_json_reads_what_aspnetcore_writes(name: str, message: HubMessage, text: str) -> None:
    assert JSON.reader().feed(text.encode() + b"\x1e") == [message]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("null", "should be a JSON object, got null"),
        ('"foo"', "should be a JSON object, got a string"),
        ("[42]", "should be a JSON object, got an array"),
        ("{}", "missing required property 'type'"),
        ('{"type":1,"headers":{"Foo": 42},"target":"test","arguments":[]}', "header 'Foo'"),
        ('{"type":1,"headers":{"Foo": true},"target":"test","arguments":[]}', "header 'Foo'"),
        ('{"type":1,"headers":{"Foo": null},"target":"test","arguments":[]}', "header 'Foo'"),
        ('{"type":1,"headers":{"Foo": []},"target":"test","arguments":[]}', "header 'Foo'"),
        ('{"type":1}', "missing required property 'target'"),
        ('{"type":1,"invocationId":42}', "'invocationId' should be a string"),
        ('{"type":1,"invocationId":"42"}', "missing required property 'target'"),
        ('{"type":1,"invocationId":"42","target":42}', "'target' should be a string"),
        ('{"type":1,"invocationId":"42","target":"foo"}', "missing required property 'arguments'"),
        (
            '{"type":1,"invocationId":"42","target":"foo","arguments":{}}',
            "'arguments' should be an array",
        ),
        ('{"type":2}', "missing required property 'invocationId'"),
        ('{"type":2,"invocationId":42}', "'invocationId' should be a string"),
        ('{"type":2,"invocationId":"42"}', "missing required property 'item'"),
        ('{"type":3}', "missing required property 'invocationId'"),
        ('{"type":3,"invocationId":42}', "'invocationId' should be a string"),
        ('{"type":3,"invocationId":"42","error":[]}', "'error' should be a string"),
        ('{"type":3,"invocationId":"42","error":"foo","result":true}', "both 'error' and 'result'"),
        ('{"type":4}', "missing required property 'invocationId'"),
        ('{"type":4,"invocationId":42}', "'invocationId' should be a string"),
        ('{"type":4,"invocationId":"42","target":42}', "'target' should be a string"),
        ('{"type":4,"invocationId":"42","target":"foo"}', "missing required property 'arguments'"),
        (
            '{"type":4,"invocationId":"42","target":"foo","arguments":{}}',
            "'arguments' should be an array",
        ),
        ('{"type":"1"}', "'type' should be an integer"),
        ('{"type":7,"allowReconnect":"yes"}', "'allowReconnect' should be a boolean"),
        ('{"type":1,"target":"t","arguments":[NaN]}', "not JSON"),
        ('{"type":3,"invocationId":"42","result":true', "not JSON"),
    ],
)
def test_json_malformed_messages(text: str, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        JSON.reader().feed(text.encode() + b"\x1e")


def test_json_skips_ack_sequence_and_unknown_types() -> None:
    stream = b'{"type":8,"sequenceId":1394}\x1e{"type":9,"sequenceId":1234}\x1e{"type":42}\x1e'
    assert JSON.reader().feed(stream + b'{"type":6}\x1e') == [HubPing()]


def test_json_bad_bytes() -> None:
    with pytest.raises(ProtocolError, match="not UTF-8"):
        JSON.reader().feed(b'{"type":6,"x":"\xff"}\x1e')
    with pytest.raises(ProtocolError, match="nest too deeply"):
        JSON.reader().feed(b"[" * 100_000 + b"\x1e")


def test_json_reader_goes_on_after_a_bad_record() -> None:
    reader = JSON.reader()
    with pytest.raises(ProtocolError):
        reader.feed(b"nonsense\x1e")
    assert reader.feed(b'{"type":6}\x1e') == [HubPing()]


def test_json_reader_limits_what_it_buffers() -> None:
    reader = JSON.reader(max_message_size=100)
    assert reader.feed(b'{"type":1,"target":"t","arguments":["' + b"x" * 40) == []
    with pytest.raises(ProtocolError, match="over the limit of 100 bytes"):
        reader.feed(b"y" * 100)
    assert reader.buffered == 0
    with pytest.raises(ProtocolError, match="over the limit"):
        JSON.reader(max_message_size=10).feed(b'{"type":6,"pad":"xxxxxxxxxxx"}\x1e')


def test_json_writes_bytes_as_base64_and_refuses_what_json_cannot_hold() -> None:
    assert (
        JSON.write(StreamItem("1", b"\x00\x01"))
        == b'{"type":2,"invocationId":"1","item":"AAE="}\x1e'
    )
    assert (
        JSON.write(StreamItem("1", "é")) == '{"type":2,"invocationId":"1","item":"é"}\x1e'.encode()
    )
    with pytest.raises(ProtocolError, match=r"NaN|Out of range float"):
        JSON.write(StreamItem("1", float("nan")))
    with pytest.raises(ProtocolError, match="a object cannot be written as JSON"):
        JSON.write(StreamItem("1", object()))
    with pytest.raises(ProtocolError, match="lone surrogate"):
        JSON.write(StreamItem("1", "\udc80"))
    with pytest.raises(ProtocolError, match="is not a hub-protocol message"):
        JSON.write(object())  # type: ignore[arg-type]


# -- MessagePack ---------------------------------------------------------------------------------

# BaseTestData of MessagePackHubProtocolTestBase.cs
MSGPACK_VECTORS: list[tuple[str, HubMessage, str]] = [
    (
        "InvocationWithNoHeadersAndNoArgs",
        Invocation("method", (), "xyz"),
        "lgGAo3h5eqZtZXRob2SQkA==",
    ),
    ("InvocationWithNoHeadersNoIdAndNoArgs", Invocation("method"), "lgGAwKZtZXRob2SQkA=="),
    (
        "InvocationWithNoHeadersNoIdAndSingleIntArg",
        Invocation("method", (42,)),
        "lgGAwKZtZXRob2SRKpA=",
    ),
    (
        "InvocationWithNoHeadersNoIdIntAndStringArgs",
        Invocation("method", (42, "string")),
        "lgGAwKZtZXRob2SSKqZzdHJpbmeQ",
    ),
    (
        "InvocationWithStreamArgument",
        Invocation("Target", stream_ids=("__test_id__",)),
        "lgGAwKZUYXJnZXSQkatfX3Rlc3RfaWRfXw==",
    ),
    (
        "InvocationWithStreamAndNormalArgument",
        Invocation("Target", (42,), stream_ids=("__test_id__",)),
        "lgGAwKZUYXJnZXSRKpGrX190ZXN0X2lkX18=",
    ),
    (
        "InvocationWithMultipleStreams",
        Invocation("Target", stream_ids=("__test_id__", "__test_id2__")),
        "lgGAwKZUYXJnZXSQkqtfX3Rlc3RfaWRfX6xfX3Rlc3RfaWQyX18=",
    ),
    ("StreamItemWithNoHeadersAndIntItem", StreamItem("xyz", 42), "lAKAo3h5eio="),
    ("StreamItemWithNoHeadersAndStringItem", StreamItem("xyz", "string"), "lAKAo3h5eqZzdHJpbmc="),
    ("StreamItemWithNoHeadersAndBoolItem", StreamItem("xyz", True), "lAKAo3h5esM="),
    (
        "CompletionWithNoHeadersAndError",
        Completion.with_error("xyz", "Error not found!"),
        "lQOAo3h5egGwRXJyb3Igbm90IGZvdW5kIQ==",
    ),
    (
        "CompletionWithHeadersAndError",
        Completion("xyz", error="Error not found!", headers=HEADERS),
        "lQODo0Zvb6NCYXKyS2V5V2l0aApOZXcNCkxpbmVzq1N0aWxsIFdvcmtzsVZhbHVlV2l0aE5ld0xpbmVzsEFsc28KV29ya3MNCkZpbmWjeHl6AbBFcnJvciBub3QgZm91bmQh",
    ),
    ("CompletionWithNoHeadersAndNoResult", Completion.void("xyz"), "lAOAo3h5egI="),
    (
        "CompletionWithHeadersAndNoResult",
        Completion("xyz", headers=HEADERS),
        "lAODo0Zvb6NCYXKyS2V5V2l0aApOZXcNCkxpbmVzq1N0aWxsIFdvcmtzsVZhbHVlV2l0aE5ld0xpbmVzsEFsc28KV29ya3MNCkZpbmWjeHl6Ag==",
    ),
    ("CompletionWithNoHeadersAndIntResult", Completion.with_result("xyz", 42), "lQOAo3h5egMq"),
    (
        "CompletionWithNoHeadersAndStringResult",
        Completion.with_result("xyz", "string"),
        "lQOAo3h5egOmc3RyaW5n",
    ),
    (
        "CompletionWithNoHeadersAndBooleanResult",
        Completion.with_result("xyz", True),
        "lQOAo3h5egPD",
    ),
    (
        "StreamInvocationWithNoHeadersAndNoArgs",
        StreamInvocation("xyz", "method"),
        "lgSAo3h5eqZtZXRob2SQkA==",
    ),
    (
        "StreamInvocationWithNoHeadersAndIntArg",
        StreamInvocation("xyz", "method", (42,)),
        "lgSAo3h5eqZtZXRob2SRKpA=",
    ),
    (
        "StreamInvocationWithStreamArgument",
        StreamInvocation("xyz", "method", (), ("__test_id__",)),
        "lgSAo3h5eqZtZXRob2SQkatfX3Rlc3RfaWRfXw==",
    ),
    (
        "StreamInvocationWithStreamAndNormalArgument",
        StreamInvocation("xyz", "method", (42,), ("__test_id__",)),
        "lgSAo3h5eqZtZXRob2SRKpGrX190ZXN0X2lkX18=",
    ),
    (
        "StreamInvocationWithNoHeadersAndIntAndStringArgs",
        StreamInvocation("xyz", "method", (42, "string")),
        "lgSAo3h5eqZtZXRob2SSKqZzdHJpbmeQ",
    ),
    ("CancelInvocationWithNoHeaders", CancelInvocation("xyz"), "kwWAo3h5eg=="),
    (
        "CancelInvocationWithHeaders",
        CancelInvocation("xyz", HEADERS),
        "kwWDo0Zvb6NCYXKyS2V5V2l0aApOZXcNCkxpbmVzq1N0aWxsIFdvcmtzsVZhbHVlV2l0aE5ld0xpbmVzsEFsc28KV29ya3MNCkZpbmWjeHl6",
    ),
    ("Ping", HubPing(), "kQY="),
    ("CloseMessage", HubClose(), "kwfAwg=="),
    ("CloseMessage_HasError", HubClose("Error!"), "kwemRXJyb3Ihwg=="),
    ("CloseMessage_HasAllowReconnect", HubClose(None, allow_reconnect=True), "kwfAww=="),
    ("CloseMessage_HasErrorAndAllowReconnect", HubClose("Error!", True), "kwemRXJyb3Ihww=="),
]

MSGPACK_READ_ONLY: list[tuple[str, HubMessage, str]] = [
    ("StreamItemWithNoHeadersAndFloatItem", StreamItem("xyz", 42.0), "lAKAo3h5espCKAAA"),
    (
        "CompletionWithNoHeadersAndFloatResult",
        Completion.with_result("xyz", 42.0),
        "lQOAo3h5egPKQigAAA==",
    ),
]

# The byte-for-byte examples of HubProtocol.md
SPEC_EXAMPLES: list[tuple[str, HubMessage, str]] = [
    (
        "Invocation",
        Invocation("method", (42,), "xyz"),
        "96 01 80 a3 78 79 7a a6 6d 65 74 68 6f 64 91 2a 90",
    ),
    ("Non-Blocking", Invocation("method", (42,)), "96 01 80 c0 a6 6d 65 74 68 6f 64 91 2a 90"),
    (
        "StreamInvocation",
        StreamInvocation("xyz", "method", (42,)),
        "96 04 80 a3 78 79 7a a6 6d 65 74 68 6f 64 91 2a 90",
    ),
    ("StreamItem", StreamItem("xyz", 42), "94 02 80 a3 78 79 7a 2a"),
    (
        "Error Result",
        Completion.with_error("xyz", "Error"),
        "95 03 80 a3 78 79 7a 01 a5 45 72 72 6f 72",
    ),
    ("Void Result", Completion.void("xyz"), "94 03 80 a3 78 79 7a 02"),
    ("Non-Void Result", Completion.with_result("xyz", 42), "95 03 80 a3 78 79 7a 03 2a"),
    ("CancelInvocation", CancelInvocation("xyz"), "93 05 80 a3 78 79 7a"),
    ("Ping", HubPing(), "91 06"),
    (
        "Headers",
        Invocation("method", (42,), "xyz", headers={"x": "y", "z": "z"}),
        "96 01 82 a1 78 a1 79 a1 7a a1 7a a3 78 79 7a a6 6d 65 74 68 6f 64 91 2a 90",
    ),
]
SPEC_READ_ONLY: list[tuple[str, HubMessage, str]] = [
    # Close as the spec shows it (2 and 3 elements); .NET writes all 3.
    ("Close", HubClose("xyz"), "92 07 a3 78 79 7a"),
    ("Close that allows reconnect", HubClose("xyz", True), "93 07 a3 78 79 7a c3"),
]


def _unframe(framed: bytes) -> bytes:
    assert framed[: len(size_prefix(len(framed) - 1))]  # a prefix is there
    body = framed[1:] if framed[0] < 0x80 else framed[2:]
    assert size_prefix(len(body)) + body == framed
    return body


@pytest.mark.parametrize(
    ("name", "message", "binary"), MSGPACK_VECTORS, ids=_names(MSGPACK_VECTORS)
)
def test_msgpack_writes_what_aspnetcore_writes(name: str, message: HubMessage, binary: str) -> None:
    assert base64.b64encode(_unframe(MSGPACK.write(message))).decode() == binary


@pytest.mark.parametrize(
    ("name", "message", "binary"),
    MSGPACK_VECTORS + MSGPACK_READ_ONLY,
    ids=_names(MSGPACK_VECTORS + MSGPACK_READ_ONLY),
)
def test_msgpack_reads_what_aspnetcore_writes(name: str, message: HubMessage, binary: str) -> None:
    body = base64.b64decode(binary)
    assert MSGPACK.reader().feed(size_prefix(len(body)) + body) == [message]


@pytest.mark.parametrize(("name", "message", "hexed"), SPEC_EXAMPLES, ids=_names(SPEC_EXAMPLES))
def test_msgpack_spec_examples(name: str, message: HubMessage, hexed: str) -> None:
    assert _unframe(MSGPACK.write(message)).hex(" ") == hexed
    body = bytes.fromhex(hexed)
    assert MSGPACK.reader().feed(size_prefix(len(body)) + body) == [message]


@pytest.mark.parametrize(("name", "message", "hexed"), SPEC_READ_ONLY, ids=_names(SPEC_READ_ONLY))
def test_msgpack_spec_examples_read(name: str, message: HubMessage, hexed: str) -> None:
    body = bytes.fromhex(hexed)
    assert MSGPACK.reader().feed(size_prefix(len(body)) + body) == [message]


def test_msgpack_ping_is_always_exactly_0x91_0x06() -> None:
    assert MSGPACK.write(HubPing()) == b"\x02\x91\x06"


@pytest.mark.parametrize(
    ("message", "size"),
    [
        (Invocation("Target", (1,)), 15),
        (Invocation("Target", (1,), "1"), 16),
        (Invocation("Target", (1,), "1", ("2",)), 18),
        (HubClose(), 5),
        (HubClose("error"), 10),
        (StreamItem("1", None), 7),
        (StreamItem("1", 1), 7),
        (Completion.void("1"), 7),
        (Completion.with_result("1", 1), 8),
        (Completion.with_error("1", "error"), 13),
        (StreamInvocation("1", "target"), 15),
        (StreamInvocation("1", "target", (), ("2",)), 17),
        (CancelInvocation("1"), 6),
        (HubPing(), 3),
    ],
)
def test_msgpack_message_sizes(message: HubMessage, size: int) -> None:
    # MessageSizeData: the framed size .NET writes.
    assert len(MSGPACK.write(message)) == size


def test_msgpack_extra_elements_are_ignored() -> None:
    # ParseMessageWithExtraData: an 8-element Invocation.
    body = bytes([0x98, 1, 0x80, 0xA3, *b"xyz", 0xA6, *b"method", 0x90, 0x90, 0xC3, 0xA2, *b"ex"])
    assert MSGPACK.reader().feed(size_prefix(len(body)) + body) == [Invocation("method", (), "xyz")]


def test_msgpack_partial_data_is_not_consumed() -> None:
    # ParserDoesNotConsumePartialData: a prefix of 5 and one byte of the body.
    reader = MSGPACK.reader()
    assert reader.feed(b"\x05\x01") == []
    assert reader.buffered == 2


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (bytes([0x91, 0xA3, *b"foo"]), "type should be an integer, got a string"),
        (bytes([0x92, 1, 0xA3, *b"foo"]), "Invocation has 2 elements"),
        (
            bytes([0x96, 1, 0xA3, *b"foo", 0xC0, 0xA1, *b"t", 0x90, 0x90]),
            "'headers' should be a map",
        ),
        (
            bytes([0x96, 1, 0x81, 0x2A, 0xA1, *b"x", 0xC0, 0xA1, *b"t", 0x90, 0x90]),
            "'headers' should be a map of strings",
        ),
        (
            bytes([0x96, 1, 0x81, 0xA1, *b"x", 0x2A, 0xC0, 0xA1, *b"t", 0x90, 0x90]),
            "'headers' should be a map of strings",
        ),
        (
            bytes([0x96, 1, 0x80, 0xC2, 0xA1, *b"t", 0x90, 0x90]),
            "'invocationId' should be a string or nil",
        ),
        (bytes([0x96, 1, 0x80, 0xC0, 42, 0x90, 0x90]), "'target' should be a string"),
        (bytes([0x96, 1, 0x80, 0xC0, 0xA1, *b"t", 42, 0x90]), "'arguments' should be an array"),
        (
            bytes([0x96, 1, 0x80, 0xC0, 0xA1, *b"t", 0x90, 0x91, 1]),
            "'streamIds' should be an array of strings",
        ),
        (bytes([0x92, 4, 0x80]), "StreamInvocation has 2 elements"),
        (
            bytes([0x96, 4, 0x80, 0xC0, 0xA1, *b"t", 0x90, 0x90]),
            "'invocationId' should be a string",
        ),
        (bytes([0x92, 2, 0x80]), "StreamItem has 2 elements"),
        (bytes([0x94, 2, 0x80, 0xC2, 1]), "'invocationId' should be a string"),
        (bytes([0x92, 3, 0x80]), "Completion has 2 elements"),
        (bytes([0x94, 3, 0x80, 0xC2, 2]), "'invocationId' should be a string"),
        (bytes([0x94, 3, 0x80, 0xA3, *b"xyz", 0xA3, *b"xyz"]), "'resultKind' should be 1"),
        (bytes([0x94, 3, 0x80, 0xA3, *b"xyz", 42]), "'resultKind' should be 1"),
        (bytes([0x94, 3, 0x80, 0xA3, *b"xyz", 0xC3]), "'resultKind' should be 1"),
        (bytes([0x94, 3, 0x80, 0xA3, *b"xyz", 0x01]), "'error' should be a string, got nil"),
        (
            bytes([0x95, 3, 0x80, 0xA3, *b"xyz", 0x01, 42]),
            "'error' should be a string, got an integer",
        ),
        (bytes([0x94, 3, 0x80, 0xA3, *b"xyz", 0x03]), "'result' should be present"),
        (bytes([0x92, 7, 42]), "'error' should be a string or nil"),
        (bytes([0x93, 7, 0xC0, 1]), "'allowReconnect' should be a boolean"),
        (bytes([0x81, 1, 2]), "should be a non-empty array, got a map"),
        (bytes([0x90]), "should be a non-empty array, got an array"),
        (bytes([0xC1]), "not valid MessagePack"),
    ],
)
def test_msgpack_malformed_messages(body: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        MSGPACK.reader().feed(size_prefix(len(body)) + body)


def test_msgpack_skips_ack_sequence_and_unknown_types() -> None:
    frames = [
        bytes.fromhex("92 08 cc 24"),
        bytes.fromhex("92 09 cc 13"),
        bytes([0x91, 42]),
        bytes.fromhex("91 06"),
    ]
    stream = b"".join(size_prefix(len(f)) + f for f in frames)
    assert MSGPACK.reader().feed(stream) == [HubPing()]


def test_msgpack_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ProtocolError, match="cannot be written as MessagePack"):
        MSGPACK.write(StreamItem("1", object()))
    with pytest.raises(ProtocolError, match="lone surrogate"):
        MSGPACK.write(StreamItem("1", "\udc80"))
    with pytest.raises(ProtocolError, match="is not a hub-protocol message"):
        MSGPACK.write(object())  # type: ignore[arg-type]


# -- both protocols ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
ids = st.text(max_size=6)
headers = st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)


def _messages(values: st.SearchStrategy[Any]) -> st.SearchStrategy[HubMessage]:
    arguments = st.lists(values, max_size=3).map(tuple)
    stream_ids = st.lists(ids, max_size=2).map(tuple)
    return st.one_of(
        st.builds(Invocation, ids, arguments, st.none() | ids, stream_ids, headers),
        st.builds(StreamInvocation, ids, ids, arguments, stream_ids, headers),
        st.builds(StreamItem, ids, values, headers),
        st.builds(lambda i, v, h: Completion(i, v, None, True, h), ids, values, headers),
        st.builds(
            lambda i, e, h: Completion(i, None, e, False, h), ids, st.text(max_size=8), headers
        ),
        st.builds(lambda i, h: Completion(i, headers=h), ids, headers),
        st.builds(CancelInvocation, ids, headers),
        st.just(HubPing()),
        st.builds(HubClose, st.none() | st.text(max_size=8), st.booleans()),
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(_messages(json_values), min_size=1, max_size=4), st.data())
def test_json_round_trip_in_pieces(messages: list[HubMessage], data: st.DataObject) -> None:
    stream = b"".join(JSON.write(m) for m in messages)
    cut = data.draw(st.integers(0, len(stream)))
    reader = JSON.reader()
    assert reader.feed(stream[:cut]) + reader.feed(stream[cut:]) == messages


@settings(max_examples=150, deadline=None)
@given(st.lists(_messages(msgpack_values), min_size=1, max_size=4), st.data())
def test_msgpack_round_trip_in_pieces(messages: list[HubMessage], data: st.DataObject) -> None:
    stream = b"".join(MSGPACK.write(m) for m in messages)
    cut = data.draw(st.integers(0, len(stream)))
    reader = MSGPACK.reader()
    assert reader.feed(stream[:cut]) + reader.feed(stream[cut:]) == messages


def test_every_split_point_of_a_stream_in_both_protocols() -> None:
    messages: list[HubMessage] = [
        Invocation("send", ("hello", {"n": [1, 2]}), "1"),
        HubPing(),
        Completion.with_result("1", "x" * 150),
        HubClose("bye", True),
    ]
    for protocol in (JSON, MSGPACK):
        stream = b"".join(protocol.write(m) for m in messages)
        for cut in range(len(stream) + 1):
            reader = protocol.reader()
            assert reader.feed(stream[:cut]) + reader.feed(stream[cut:]) == messages


def _cost_in_pieces(protocol: HubProtocol, size: int, piece: int) -> float:
    """CPU seconds of this thread to read one message of about ``size`` bytes fed ``piece`` bytes
    at a time: the least of five runs, and the thread's own time, so that other processes on a
    busy machine (CI runs four suites at once) count as little as they can."""
    data = protocol.write(Invocation("send", ("x" * size,)))
    best = float("inf")
    for _ in range(5):
        reader = protocol.reader(max_message_size=len(data))
        started = time.thread_time()
        for start in range(0, len(data), piece):
            reader.feed(data[start : start + piece])
        best = min(best, time.thread_time() - started)
        assert reader.buffered == 0
    return best


@pytest.mark.parametrize("protocol", [JSON, MSGPACK], ids=["json", "messagepack"])
def test_a_message_in_small_pieces_costs_time_in_proportion_to_its_size(
    protocol: HubProtocol,
) -> None:
    """A client may send its message a few bytes at a time, and the pieces are read on the
    server connection's shared read loop: four times the bytes must cost about four times the
    time (the JSON reader searched the whole buffer for the separator at every piece: sixteen
    times). A ratio of two sizes measured in one run, not a time."""
    small = _cost_in_pieces(protocol, 1 << 20, 64)
    large = _cost_in_pieces(protocol, 4 << 20, 64)
    assert large / small < 8


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_random_bytes_raise_only_protocol_error(raw: bytes) -> None:
    for protocol in (JSON, MSGPACK):
        with contextlib.suppress(ProtocolError):
            protocol.reader(max_message_size=200).feed(raw)
    with contextlib.suppress(ProtocolError):
        parse_handshake_request(raw)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10), st.lists(msgpack_values, max_size=6))
def test_well_formed_msgpack_of_the_wrong_shape_raises_only_protocol_error(
    kind: int, fields: list[Any]
) -> None:
    body = msgpack.packb([kind, *fields])
    with contextlib.suppress(ProtocolError):
        MSGPACK.reader().feed(size_prefix(len(body)) + body)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 10),
    st.dictionaries(
        st.sampled_from(
            [
                "invocationId",
                "target",
                "arguments",
                "item",
                "result",
                "error",
                "headers",
                "streamIds",
                "allowReconnect",
            ]
        ),
        json_values,
        max_size=5,
    ),
)
def test_json_objects_of_the_wrong_shape_raise_only_protocol_error(
    kind: int, fields: dict[str, Any]
) -> None:
    record = json.dumps({"type": kind, **fields}).encode() + b"\x1e"
    with contextlib.suppress(ProtocolError):
        JSON.reader().feed(record)


# -- handshake, lookup, payload maps -------------------------------------------------------------


def test_handshake_request_and_what_follows_it() -> None:
    stream = b'{"protocol":"messagepack","version":1}\x1e' + MSGPACK.write(HubPing())
    assert parse_handshake_request(stream) == ("messagepack", 1, b"\x02\x91\x06")
    assert parse_handshake_request(stream[:10]) is None
    assert parse_handshake_request(b'{"protocol":"json","version":1}\x1e') == ("json", 1, b"")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"nope\x1e", "not JSON"),
        (b"[1]\x1e", "should be a JSON object"),
        (b'{"version":1}\x1e', "needs 'protocol'"),
        (b'{"protocol":"json"}\x1e', "needs 'version'"),
        (b'{"protocol":"json","version":"1"}\x1e', "needs 'version'"),
        (
            b'{"protocol":"json","version":1}' + b" " * 5000,
            "no handshake request in the first 4096",
        ),
        (b'{"protocol":"\xff","version":1}\x1e', "not JSON"),
    ],
)
def test_malformed_handshake_requests(raw: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        parse_handshake_request(raw)


def test_handshake_responses() -> None:
    assert handshake_response() == b"{}\x1e"
    assert handshake_response("Requested protocol 'x' is not available.") == (
        b'{"error":"Requested protocol \'x\' is not available."}\x1e'
    )


def test_protocol_lookup_is_case_insensitive() -> None:
    assert get_hub_protocol("MessagePack") is HUB_PROTOCOLS["messagepack"]
    assert get_hub_protocol("JSON") is HUB_PROTOCOLS["json"]
    assert get_hub_protocol("blazorpack") is None
    assert (JSON.name, JSON.is_binary, MSGPACK.name, MSGPACK.is_binary) == (
        "json",
        False,
        "messagepack",
        True,
    )


def test_payloads_for_writes_each_protocol_once() -> None:
    message = Invocation("newMessage", ("ann", "hi"))
    payloads = payloads_for(message, ["json", "messagepack", "JSON"])
    assert payloads == {"json": JSON.write(message), "messagepack": MSGPACK.write(message)}
    assert payloads_for(message, ["json"]) == {
        "json": b'{"type":1,"target":"newMessage","arguments":["ann","hi"]}\x1e'
    }
    assert payloads_for(message, []) == {}
    with pytest.raises(
        ProtocolError, match="'xml' is not a hub protocol; known: json, messagepack"
    ):
        payloads_for(message, ["xml"])
