"""The service codec on generated input: round trips of every message type, streams cut at every
point, and bytes that are not the protocol, which must give ProtocolError and nothing else."""

from __future__ import annotations

import contextlib
import dataclasses
import struct
import threading
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalr_asgi_auth.protocol import (
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
    ConnectionDataTooLarge,
    ConnectionReconnect,
    ErrorCompletion,
    Ext,
    FrameReader,
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
    ProtocolError,
    ServiceErrorMessage,
    ServiceEvent,
    ServiceMapping,
    ServiceMessage,
    ServiceMessageReader,
    UserData,
    UserJoinGroup,
    UserJoinGroupWithAck,
    UserLeaveGroup,
    UserLeaveGroupWithAck,
    decode_service_message,
    encode_service_message,
    frame_service_message,
    size_prefix,
    write_frame,
)

text = st.text(max_size=12)
optional_text = st.none() | text
int32 = st.integers(-(2**31), 2**31 - 1)
strings = st.lists(text, max_size=3).map(tuple)
payload = st.binary(max_size=40)
payloads = st.dictionaries(st.sampled_from(["json", "messagepack", "JSON"]), payload, max_size=2)
headers = st.dictionaries(text, strings, max_size=3)
claims = st.lists(st.tuples(st.sampled_from(["role", "sub", "name"]), text), max_size=4).map(tuple)
ext = st.builds(
    Ext,
    tracing_id=st.none() | st.integers(0, 2**64 - 1),
    ttl=st.none() | int32,
    protocol=optional_text,
    filter=optional_text,
    data_message_type=st.none() | st.integers(0, 4),
    is_partial=st.none() | st.booleans(),
)
ext_without_protocol = ext.map(lambda e: dataclasses.replace(e, protocol=None))

# One strategy per message type: every field drawn from its whole domain.
MESSAGES: dict[Any, st.SearchStrategy[Any]] = {
    HandshakeRequest: st.builds(
        HandshakeRequest, int32, int32, text, int32, ext, st.none() | st.booleans()
    ),
    HandshakeResponse: st.builds(HandshakeResponse, text, ext, optional_text),
    Ping: st.builds(Ping, strings),
    OpenConnection: st.builds(OpenConnection, text, claims, headers, text, ext),
    CloseConnection: st.builds(CloseConnection, text, text, headers, ext),
    ConnectionData: st.builds(ConnectionData, text, payload, ext),
    MultiConnectionData: st.builds(MultiConnectionData, strings, payloads, ext),
    UserData: st.builds(UserData, text, payloads, ext),
    MultiUserData: st.builds(MultiUserData, strings, payloads, ext),
    BroadcastData: st.builds(BroadcastData, strings, payloads, ext),
    JoinGroup: st.builds(JoinGroup, text, text, ext),
    LeaveGroup: st.builds(LeaveGroup, text, text, ext),
    GroupBroadcastData: st.builds(
        GroupBroadcastData, text, strings, payloads, ext, strings, optional_text
    ),
    MultiGroupBroadcastData: st.builds(MultiGroupBroadcastData, strings, payloads, ext),
    ServiceErrorMessage: st.builds(ServiceErrorMessage, text),
    UserJoinGroup: st.builds(UserJoinGroup, text, text, ext),
    UserLeaveGroup: st.builds(UserLeaveGroup, text, optional_text, ext),
    JoinGroupWithAck: st.builds(JoinGroupWithAck, text, text, int32, ext),
    LeaveGroupWithAck: st.builds(LeaveGroupWithAck, text, text, int32, ext),
    Ack: st.builds(Ack, int32, int32, text, ext, st.none() | payload),
    CheckUserInGroupWithAck: st.builds(CheckUserInGroupWithAck, text, text, int32, ext),
    ServiceEvent: st.builds(ServiceEvent, int32, text, int32, text, ext),
    CheckGroupExistenceWithAck: st.builds(CheckGroupExistenceWithAck, text, int32, ext),
    CheckConnectionExistenceWithAck: st.builds(CheckConnectionExistenceWithAck, text, int32, ext),
    CheckUserExistenceWithAck: st.builds(CheckUserExistenceWithAck, text, int32, ext),
    UserJoinGroupWithAck: st.builds(UserJoinGroupWithAck, text, text, int32, ext),
    UserLeaveGroupWithAck: st.builds(UserLeaveGroupWithAck, text, optional_text, int32, ext),
    AccessKeyRequest: st.builds(AccessKeyRequest, text, optional_text, ext),
    AccessKeyResponse: st.builds(
        AccessKeyResponse, optional_text, optional_text, optional_text, optional_text, ext
    ),
    CloseConnectionWithAck: st.builds(CloseConnectionWithAck, text, optional_text, int32, ext),
    CloseConnectionsWithAck: st.builds(CloseConnectionsWithAck, optional_text, int32, strings, ext),
    CloseUserConnectionsWithAck: st.builds(
        CloseUserConnectionsWithAck, text, optional_text, int32, strings, ext
    ),
    CloseGroupConnectionsWithAck: st.builds(
        CloseGroupConnectionsWithAck, text, optional_text, int32, strings, ext
    ),
    ClientInvocation: st.builds(ClientInvocation, text, text, text, payloads, ext),
    # ClientCompletion's protocol is one property in .NET, written in the array and in the ext.
    ClientCompletion: st.builds(
        ClientCompletion, text, text, text, text, payload, ext_without_protocol
    ),
    ErrorCompletion: st.builds(ErrorCompletion, text, text, text, text, ext),
    ServiceMapping: st.builds(ServiceMapping, text, text, text, ext),
    ConnectionReconnect: st.builds(ConnectionReconnect, text, ext),
}
any_message = st.one_of(*MESSAGES.values())


def test_every_message_type_has_a_strategy() -> None:
    assert len(MESSAGES) == 38
    assert sorted(cls.TYPE for cls in MESSAGES) == list(range(1, 39))


@pytest.mark.parametrize("cls", list(MESSAGES), ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip(cls: Any, data: st.DataObject) -> None:
    message = data.draw(MESSAGES[cls])
    encoded = encode_service_message(message)
    assert decode_service_message(encoded) == message
    # The wire form is a plain MessagePack array whose first element is the type number.
    array = msgpack.unpackb(encoded, raw=False, strict_map_key=False)
    assert array[0] == cls.TYPE


@settings(max_examples=40, deadline=None)
@given(st.lists(any_message, min_size=1, max_size=5), st.data())
def test_a_stream_cut_anywhere_reads_the_same(
    messages: list[ServiceMessage], data: st.DataObject
) -> None:
    stream = b"".join(frame_service_message(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    reader = ServiceMessageReader()
    got: list[ServiceMessage] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        got += reader.feed(stream[start:cut])
        start = cut
    assert got == messages
    assert reader.buffered == 0


def test_every_split_point_of_a_multi_message_buffer() -> None:
    messages: list[ServiceMessage] = [
        HandshakeResponse(),
        Ping(("echo", "1")),
        OpenConnection("c1", (("role", "a"), ("role", "b")), ext=Ext(protocol="json")),
        ConnectionData("c1", b'{"protocol":"json","version":1}\x1e' + b"x" * 200),
        Ack(7, 1),
    ]
    stream = b"".join(frame_service_message(m) for m in messages)
    assert any(b >= 0x80 for b in stream[:300])  # a 2-byte prefix among them
    for cut in range(len(stream) + 1):
        reader = ServiceMessageReader()
        assert reader.feed(stream[:cut]) + reader.feed(stream[cut:]) == messages, cut
    # and byte by byte
    reader = ServiceMessageReader()
    got = [m for i in range(len(stream)) for m in reader.feed(stream[i : i + 1])]
    assert got == messages


def test_unknown_message_types_are_skipped_in_a_stream() -> None:
    future = write_frame(msgpack.packb([41, "conn", {}, b"\x01"]))
    stream = frame_service_message(Ping()) + future + frame_service_message(Ping(("a", "b")))
    assert ServiceMessageReader().feed(stream) == [Ping(), Ping(("a", "b"))]
    assert decode_service_message(msgpack.packb([99])) is None


def test_unknown_ext_keys_are_skipped_and_known_ones_kept() -> None:
    raw = msgpack.packb([6, "c", b"x", {7: "new", 1: 5, "k": [1, 2], 6: True, -1: None}])
    assert decode_service_message(raw) == ConnectionData(
        "c", b"x", Ext(tracing_id=5, is_partial=True)
    )


def test_longer_arrays_of_newer_services_are_read() -> None:
    assert decode_service_message(msgpack.packb([1, 1, 0, "", 0, {}, True, "later"])) == (
        HandshakeRequest(allow_stateful_reconnects=True)
    )
    assert decode_service_message(msgpack.packb([20, 3, 1, "", {}, b"result", 0])) == Ack(
        3, 1, payload=b"result"
    )
    assert decode_service_message(msgpack.packb([38, "c", {}, "later"])) == ConnectionReconnect("c")


def test_client_completion_reads_the_protocol_from_the_ext_as_dotnet_does() -> None:
    raw = msgpack.packb([35, "i", "c", "s", "json", b"x", {3: "messagepack", 1: 9}])
    assert decode_service_message(raw) == ClientCompletion(
        "i", "c", "s", "messagepack", b"x", Ext(tracing_id=9)
    )


def test_writes_only_ext_keys_one_to_six() -> None:
    full = Ext(1, 2, "json", "f", 3, True)
    array = msgpack.unpackb(
        encode_service_message(ConnectionData("c", b"", full)), strict_map_key=False
    )
    assert list(array[3]) == [1, 2, 3, 4, 5, 6]


# -- the size prefix -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "prefix"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "80 01"),
        (0x1480, "80 29"),
        (16383, "ff 7f"),
        (16384, "80 80 01"),
        (2**31 - 1, "ff ff ff ff 07"),
    ],
)
def test_size_prefix(size: int, prefix: str) -> None:
    assert size_prefix(size).hex(" ") == prefix
    reader = FrameReader(max_message_size=2**31 - 1)
    assert reader.feed(size_prefix(size)) == ([b""] if size == 0 else [])
    assert reader.buffered == (0 if size == 0 else len(size_prefix(size)))


def test_size_prefix_refuses_sizes_it_cannot_write() -> None:
    with pytest.raises(ProtocolError, match="too big"):
        size_prefix(2**31)
    with pytest.raises(ProtocolError, match="negative"):
        size_prefix(-1)


def test_a_prefix_longer_than_five_bytes_breaks_the_stream() -> None:
    reader = FrameReader()
    with pytest.raises(ProtocolError, match="longer than 5 bytes"):
        reader.feed(b"\x80\x80\x80\x80\x80\x01")
    with pytest.raises(ProtocolError, match="cannot be read further"):
        reader.feed(frame_service_message(Ping()))


def test_a_message_over_the_limit_breaks_a_frame_reader() -> None:
    reader = FrameReader(max_message_size=100)
    assert reader.feed(size_prefix(50) + b"x" * 50) == [b"x" * 50]
    with pytest.raises(ProtocolError, match="101 bytes is over the limit of 100"):
        reader.feed(size_prefix(101))
    with pytest.raises(ProtocolError, match="cannot be read further"):
        reader.feed(b"x")


def test_a_service_message_over_the_limit_that_no_client_wrote_ends_the_stream() -> None:
    reader = ServiceMessageReader(max_message_size=100)
    big = frame_service_message(BroadcastData((), {"json": b"x" * 200}))
    with pytest.raises(ProtocolError, match=r"a service message of 2\d\d bytes is over the limit"):
        reader.feed(big)


def _in_pieces(reader: ServiceMessageReader, data: bytes, piece: int) -> list[ServiceMessage]:
    """What ``reader`` reads from ``data`` fed ``piece`` bytes at a time, checking that it never
    holds more than the limit's worth (the oversized message is let go by, not held)."""
    messages: list[ServiceMessage] = []
    for start in range(0, len(data), piece):
        messages += reader.feed(data[start : start + piece])
        assert reader.buffered <= 1000
    return messages


@pytest.mark.parametrize("piece", [1, 7, 4096, 1 << 20])
def test_a_clients_data_over_the_limit_goes_by_unread_and_names_its_client(piece: int) -> None:
    """One client's message too big for the reader costs that client alone: the reader lets it
    go by without holding it, says whose it was, and reads what follows it."""
    reader = ServiceMessageReader(max_message_size=1000)
    before = ConnectionData("ann", b"small")
    after: list[ServiceMessage] = [ConnectionData("ann", b"next"), Ping(("echo", "1"))]
    big = ConnectionData("bob", b"x" * 100_000, Ext(is_partial=True))
    stream = b"".join(frame_service_message(m) for m in [before, big, *after])
    size = len(encode_service_message(big))
    assert _in_pieces(reader, stream, piece) == [
        before,
        ConnectionDataTooLarge("bob", size),
        *after,
    ]


def test_a_clients_answer_over_the_limit_fails_the_invocation_that_waits_for_it() -> None:
    reader = ServiceMessageReader(max_message_size=1000)
    big = ClientCompletion("inv-1", "bob", "server-1", "json", b"x" * 5000)
    size = len(encode_service_message(big))
    assert reader.feed(frame_service_message(big) + frame_service_message(Ping())) == [
        ErrorCompletion(
            "inv-1",
            "bob",
            "server-1",
            f"The client's result of {size} bytes is over the limit of 1000 bytes.",
        ),
        Ping(),
    ]


def test_an_oversized_client_message_whose_id_cannot_be_read_ends_the_stream() -> None:
    reader = ServiceMessageReader(max_message_size=1000)
    cut_off = ConnectionData("c" * 2000, b"x")  # its id runs past the head the reader keeps
    with pytest.raises(ProtocolError, match="over the limit of 1000 bytes"):
        reader.feed(frame_service_message(cut_off))


def test_the_limit_must_make_sense() -> None:
    with pytest.raises(ValueError, match="max_message_size"):
        FrameReader(max_message_size=0)


def test_a_big_message_crosses_many_feeds() -> None:
    # WriteAndParseLargeData in the .NET tests: 70,000 bytes, a 3-byte prefix.
    message = ConnectionData("abc", b"a" * 70000)
    framed = frame_service_message(message)
    reader = ServiceMessageReader()
    got = [m for i in range(0, len(framed), 4096) for m in reader.feed(framed[i : i + 4096])]
    assert got == [message]


# -- malformed input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "not valid MessagePack"),
        (b"\xc1", "not valid MessagePack"),  # a byte MessagePack never uses
        (b"\x95\x06", "not valid MessagePack"),  # the array is cut short
        (msgpack.packb({"a": 1}), "should be a MessagePack array, got a map"),
        (msgpack.packb([]), "got an empty array"),
        (msgpack.packb(["6"]), "type should be an integer, got a string"),
        (msgpack.packb([6, "c"]), "ConnectionData has 2 elements; it needs at least 3"),
        (msgpack.packb([6, 1, b""]), "ConnectionData: 'connectionId' should be a string"),
        (msgpack.packb([6, "c", "text"]), "'payload' should be binary, got a string"),
        (msgpack.packb([6, "c", b"", []]), "'ext' should be a map, got a array"),
        (msgpack.packb([6, "c", b"", {1: -1}]), r"ext\[TracingId\]"),
        (msgpack.packb([6, "c", b"", {6: 1}]), r"ext\[IsPartial\]' should be a boolean"),
        (msgpack.packb([18, "c", "g", 2**31]), "'ackId' should be a 32-bit integer"),
        (msgpack.packb([18, "c", "g", True]), "'ackId' should be a 32-bit integer, got a boolean"),
        (msgpack.packb([4, "c", {"role": 1}]), "'claims' should be a map of strings"),
        (msgpack.packb([4, "c", {}, {"h": "v"}, ""]), "'headers' should be a map of names"),
        (msgpack.packb([7, "c", {}]), "'connectionList' should be an array of strings"),
        (msgpack.packb([7, [1], {}]), r"'connectionList\[\]' should be a string"),
        (msgpack.packb([10, [], {"json": "x"}]), "'payloads' should be a map of protocol names"),
        (msgpack.packb([3, 1.5]), r"Ping: 'messages\[0\]' should be a string, got a float"),
        (msgpack.packb([1, 1, 0, "", 0, {}, "yes"]), "'allowStatefulReconnects' should be a"),
        # a map whose key is an array (cannot be a dict key)
        (b"\x93\x04\xa1c\x81\x91\x01\x02", "not valid MessagePack"),
    ],
)
def test_malformed_messages_say_what_is_wrong(raw: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode_service_message(raw)


def test_errors_do_not_repeat_the_payload() -> None:
    secret = "eyJhbGciOi-secret-token"
    with pytest.raises(ProtocolError) as caught:
        decode_service_message(msgpack.packb([28, 12345, secret, {}]))
    assert secret not in str(caught.value)
    with pytest.raises(ProtocolError) as caught:
        decode_service_message(msgpack.packb([6, "c", secret]))
    assert secret not in str(caught.value)


def test_secrets_stay_out_of_reprs() -> None:
    assert "tok" not in repr(AccessKeyRequest("tok-secret"))
    assert "key-secret" not in repr(AccessKeyResponse("kid", "key-secret"))


def test_encoding_a_value_msgpack_cannot_hold_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="JoinGroupWithAck cannot be written"):
        encode_service_message(JoinGroupWithAck("c", "g", 2**70))
    with pytest.raises(ProtocolError, match="is not a service-protocol message"):
        encode_service_message(object())  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_protocol_error(raw: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_service_message(raw)
    reader = ServiceMessageReader(max_message_size=1000)
    with contextlib.suppress(ProtocolError):
        reader.feed(raw)


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | st.binary(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.integers(0, 8) | st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=600, deadline=None)
@given(st.integers(0, 40), st.lists(_values, max_size=8))
def test_well_formed_msgpack_of_the_wrong_shape_raises_only_protocol_error(
    kind: int, fields: list[Any]
) -> None:
    """Arrays that start with a known type number and go on with anything at all."""
    with contextlib.suppress(ProtocolError):
        decode_service_message(msgpack.packb([kind, *fields]))


@settings(max_examples=200, deadline=None)
@given(any_message, st.data())
def test_a_corrupted_message_raises_only_protocol_error(
    message: ServiceMessage, data: st.DataObject
) -> None:
    encoded = bytearray(encode_service_message(message))
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ProtocolError):
        decode_service_message(bytes(encoded))


def test_an_ext_key_that_is_not_an_integer_is_skipped() -> None:
    raw = b"\x94\x06\xa1c\xc4\x00\x81\xcb" + struct.pack(">d", 1.0) + b"\x01"
    assert decode_service_message(raw) == ConnectionData("c", b"")


def test_a_failed_write_leaves_the_writer_usable() -> None:
    with pytest.raises(ProtocolError):
        encode_service_message(JoinGroupWithAck("c", "g", 2**70))
    assert encode_service_message(Ping()) == b"\x91\x03"
    with pytest.raises(ProtocolError):
        encode_service_message(ConnectionData("c", b"x", Ext(tracing_id=2**70)))
    assert encode_service_message(ConnectionData("c", b"x")) == msgpack.packb([6, "c", b"x", {}])


def test_threads_write_and_read_at_once() -> None:
    # Each thread has its own packer; the fast paths must give every thread its own messages.
    failures: list[str] = []

    def work(number: int) -> None:
        for index in range(300):
            message = ConnectionData(f"c{number}", bytes([number]) * (index % 50))
            if decode_service_message(encode_service_message(message)) != message:
                failures.append(f"{number}/{index}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_small_limit_holds_for_a_whole_message_in_one_piece() -> None:
    """A limit under 128 bytes holds for a message with a one-byte prefix that arrives whole."""
    with pytest.raises(ProtocolError, match="120 bytes is over the limit of 100"):
        FrameReader(max_message_size=100).feed(size_prefix(120) + b"x" * 120)
    assert FrameReader(max_message_size=100).feed(size_prefix(100) + b"x" * 100) == [b"x" * 100]
