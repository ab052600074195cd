"""Upstream requests of clients on the MessagePack hub protocol: the service POSTs their invocation
as ``application/x-msgpack`` (the array without its size prefix) and relays the size-prefixed
MessagePack completion the app answers with (``docs/design/serverless-messagepack.md``). Bodies
are built and answers read with ``msgpack`` itself, not the package's codec."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import msgpack
import pytest
from starlette.datastructures import Headers

from signalr_asgi_auth import UpstreamRequest, upstream_response
from signalr_asgi_auth._errors import InvalidInputError
from signalr_asgi_auth._upstream import UpstreamVerifier
from signalr_asgi_auth._upstream_request import read_body, read_head
from signalr_asgi_auth.emulator import Emulator

from .test_upstream import Post, Recorder, app_client, asrs, assert_malformed, sign

anyio_tests = pytest.mark.anyio
MSGPACK = "application/x-msgpack"


def packed(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def invocation(
    target: str = "add", arguments: list[Any] | None = None, invocation_id: str | None = "7"
) -> bytes:
    """The client's invocation array as the service forwards it: no size prefix, no streamIds."""
    return packed([1, {}, invocation_id, target, [2, 3] if arguments is None else arguments])


def unprefixed(body: bytes) -> list[Any]:
    """The one MessagePack message of ``body``, after its size prefix (7 bits a byte)."""
    size, shift, used = 0, 0, 0
    for used, byte in enumerate(body, start=1):  # noqa: B007
        size |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    assert len(body) == used + size, body
    message: list[Any] = msgpack.unpackb(body[used:], raw=False)
    return message


def completion(response: httpx2.Response) -> list[Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MSGPACK
    return unprefixed(response.content)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def signed_post(emulator: Emulator, recorder: Recorder) -> AsyncIterator[Post]:
    async with app_client(UpstreamVerifier(access_keys=emulator.access_keys), recorder) as client:

        async def send(headers: dict[str, str], body: bytes = b"") -> httpx2.Response:
            return await client.post("/upstream/event", headers=headers, content=body)

        yield send


def msgpack_headers(emulator: Emulator, **extra: str) -> dict[str, str]:
    return asrs(X_ASRS_Signature=sign(emulator.access_keys[0]), Content_Type=MSGPACK, **extra)


# -- read and answered --------------------------------------------------------------------------


@anyio_tests
async def test_an_invocation_is_read_and_answered_in_messagepack(
    signed_post: Post, recorder: Recorder, emulator: Emulator
) -> None:
    response = await signed_post(msgpack_headers(emulator), invocation(arguments=[40, 2]))

    assert completion(response) == [3, {}, "7", 3, 42]  # resultKind 3: a result
    [call] = recorder.calls
    assert (call.protocol, call.event, call.invocation_id) == ("messagepack", "add", "7")
    assert call.arguments == (40, 2)


@anyio_tests
async def test_messagepack_values_reach_the_handler_as_msgpack_reads_them(
    signed_post: Post, recorder: Recorder, emulator: Emulator
) -> None:
    arguments = [b"\x00\xff", {"a": [1.5, None, True]}, "é", -(2**40)]
    headers = msgpack_headers(emulator, X_ASRS_Event="echo")
    # A streamIds element after the arguments (as ASP.NET Core clients write it) is ignored.
    body = packed([1, {"h": "v"}, None, "echo", arguments, []])

    response = await signed_post(headers, body)

    assert response.status_code == 204  # no invocationId: a send, nothing awaited
    assert recorder.calls[0].arguments == tuple(arguments)
    assert recorder.calls[0].invocation_id is None


@anyio_tests
async def test_a_hub_method_error_fails_the_messagepack_invocation(
    signed_post: Post, emulator: Emulator
) -> None:
    headers = msgpack_headers(emulator, X_ASRS_Event="fail")

    response = await signed_post(headers, invocation(target="fail", invocation_id="42"))

    assert completion(response) == [3, {}, "42", 1, "the room is full"]  # resultKind 1: error


@anyio_tests
async def test_the_content_type_may_carry_parameters(
    signed_post: Post, recorder: Recorder, emulator: Emulator
) -> None:
    headers = msgpack_headers(emulator)
    headers["Content-Type"] = "Application/X-MsgPack; charset=binary"

    response = await signed_post(headers, invocation())

    assert completion(response) == [3, {}, "7", 3, 5]
    assert recorder.calls[0].protocol == "messagepack"


@anyio_tests
async def test_a_json_invocation_is_still_answered_in_json(
    signed_post: Post, recorder: Recorder, emulator: Emulator
) -> None:
    headers = asrs(X_ASRS_Signature=sign(emulator.access_keys[0]))
    body = b'{"type":1,"invocationId":"7","target":"add","arguments":[2,3]}\x1e'

    response = await signed_post(headers, body)

    assert response.headers["content-type"].startswith("application/json")
    assert response.text == '{"type":3,"invocationId":"7","result":5}\x1e'
    assert recorder.calls[0].protocol == "json"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        pytest.param(None, [3, {}, "7", 3, None], id="none-is-a-result"),
        pytest.param(b"\x01", [3, {}, "7", 3, b"\x01"], id="bytes"),
        pytest.param(float("nan"), None, id="nan"),  # MessagePack holds NaN; JSON does not
        pytest.param(
            object(),
            [3, {}, "7", 1, "The server's result could not be written as MessagePack."],
            id="not-messagepack",
        ),
    ],
)
def test_upstream_response_for_a_messagepack_client(result: object, expected: Any) -> None:
    call = UpstreamRequest(
        hub="chat",
        category="messages",
        event="echo",
        connection_id="c1",
        invocation_id="7",
        authenticated_by="signature",
        protocol="messagepack",
    )

    response = upstream_response(call, result)

    assert response.headers["content-type"] == MSGPACK
    message = unprefixed(bytes(response.body))
    if expected is None:
        assert message[:4] == [3, {}, "7", 3]
        assert message[4] != message[4]
    else:
        assert message == expected


# -- malformed ----------------------------------------------------------------------------------


@anyio_tests
@pytest.mark.parametrize(
    ("change", "body", "reason"),
    [
        pytest.param({}, b"", "the body is empty", id="empty"),
        pytest.param({}, b"\xc1", "not a MessagePack invocation", id="not-messagepack"),
        pytest.param({}, invocation()[:-3], "not a MessagePack invocation", id="truncated"),
        pytest.param({}, packed({"type": 1}), "should be a non-empty array, got a map", id="map"),
        pytest.param({}, packed([]), "should be a non-empty array", id="empty-array"),
        pytest.param(
            {},
            bytes([len(invocation())]) + invocation(),
            "should be a non-empty array, got an integer",
            id="size-prefixed",
        ),
        pytest.param({}, packed(["1", {}]), "type should be an integer", id="type-not-int"),
        pytest.param({}, packed([1, {}, None, "add"]), "has 4 elements", id="too-short"),
        pytest.param(
            {}, packed([1, {}, None, 7, []]), "'target' should be a string", id="target-not-text"
        ),
        pytest.param(
            {}, packed([1, {}, None, "add", {"a": 1}]), "'arguments' should be an array", id="args"
        ),
        pytest.param(
            {}, packed([1, {}, 7, "add", []]), "'invocationId' should be a string", id="id-not-text"
        ),
        pytest.param({}, packed([1, [], None, "add", []]), "'headers' should be a map", id="hdrs"),
        pytest.param(
            {}, invocation(target="delete"), "target 'delete' is not the event 'add'", id="target"
        ),
        pytest.param({}, packed([6]), "not an invocation message \\(type 6\\)", id="ping"),
        pytest.param(
            {},
            packed([4, {}, "1", "add", [], []]),
            "not an invocation message \\(type 4\\)",
            id="stream-invocation",
        ),
        pytest.param({}, packed([99, {}]), "not an invocation message", id="unknown-type"),
        pytest.param(
            {"X_ASRS_Category": "connections", "X_ASRS_Event": "connected"},
            packed([10]),
            "a connection event's body is MessagePack",
            id="connection-event",
        ),
    ],
)
async def test_malformed_messagepack_bodies_get_400(
    signed_post: Post,
    recorder: Recorder,
    emulator: Emulator,
    change: dict[str, str],
    body: bytes,
    reason: str,
) -> None:
    response = await signed_post(msgpack_headers(emulator, **change), body)

    assert_malformed(response, recorder, reason)


@anyio_tests
async def test_a_messagepack_body_over_the_limit_gets_413(
    emulator: Emulator, recorder: Recorder
) -> None:
    verifier = UpstreamVerifier(access_keys=emulator.access_keys, max_body_size=1000)
    async with app_client(verifier, recorder) as client:
        big = invocation(arguments=["x" * 2000])
        response = await client.post(
            "/upstream/add", headers=msgpack_headers(emulator), content=big
        )
        small = await client.post(
            "/upstream/add", headers=msgpack_headers(emulator), content=invocation()
        )

    assert response.status_code == 413, response.text
    assert "1000 bytes" in response.json()["error"]
    assert completion(small) == [3, {}, "7", 3, 5]
    assert len(recorder.calls) == 1


def test_the_body_reader_alone_raises_only_invalid_input() -> None:
    headers = Headers({"content-type": MSGPACK})
    head = read_head(
        Headers(
            {
                "x-asrs-connection-id": "c1",
                "x-asrs-hub": "chat",
                "x-asrs-category": "messages",
                "x-asrs-event": "add",
            }
        )
    )
    # Nested past any sensible depth, and a string that is not UTF-8.
    for body in (b"\x91" * 100_000 + b"\xc0", packed([1, {}, None, "add", []])[:-1] + b"\xa1\xff"):
        with pytest.raises(InvalidInputError, match=r"^Malformed upstream request: "):
            read_body(body, headers, head)
    read = read_body(invocation(), headers, head)
    assert (read.protocol, read.arguments, read.invocation_id) == ("messagepack", (2, 3), "7")
