"""The independent service (tests/independent_service) against the library's codec.

The service shares no code with ``signalr_asgi_auth.protocol``; here a bare server connection built
on that codec talks to it. Each side agreeing with the other, and the codec agreeing with .NET's
golden vectors (tests/protocol), is what lets other tests trust the service as a judge.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio
import anyio.abc
import jwt
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    RejectData,
    Request,
)

from signalr_asgi_auth.protocol import (
    Ack,
    BroadcastData,
    CheckGroupExistenceWithAck,
    Completion,
    ConnectionData,
    GroupBroadcastData,
    HandshakeRequest,
    HandshakeResponse,
    Invocation,
    JoinGroupWithAck,
    JsonHubProtocol,
    LeaveGroupWithAck,
    MessagePackHubProtocol,
    OpenConnection,
    Ping,
    ServiceMessage,
    ServiceMessageReader,
    UserData,
    frame_service_message,
    handshake_response,
    parse_handshake_request,
    payloads_for,
)
from tests.independent_service import IndependentService

pytestmark = pytest.mark.anyio

KEY = "independent-service-test-key-0123456789"


class BareServerConnection:
    """The app's end of one server connection, in the fewest lines: wsproto over a TCP stream."""

    def __init__(self, stream: anyio.abc.ByteStream, ws: WSConnection) -> None:
        self.stream = stream
        self.ws = ws
        self.reader = ServiceMessageReader()
        self.received: list[ServiceMessage] = []

    async def send(self, *messages: ServiceMessage) -> None:
        data = b"".join(frame_service_message(m) for m in messages)
        await self.stream.send(self.ws.send(BytesMessage(data=data)))

    async def next(self, kind: type, within: float = 5.0) -> ServiceMessage:
        """The next message of ``kind`` (others are kept in ``received``)."""
        with anyio.fail_after(within):
            while True:
                for index, message in enumerate(self.received):
                    if isinstance(message, kind):
                        return self.received.pop(index)
                await self._read()

    async def _read(self) -> None:
        self.ws.receive_data(await self.stream.receive())
        for event in self.ws.events():
            if isinstance(event, BytesMessage):
                self.received += self.reader.feed(event.data)
            elif isinstance(event, CloseConnection):
                raise anyio.EndOfStream


@asynccontextmanager
async def server_connection(
    url: str, hub: str = "chat", *, token: str | None = None, cid: str = "cid-1"
) -> AsyncIterator[BareServerConnection | tuple[int, bytes]]:
    """An open, not yet handshaken server connection; or (status, body) if the upgrade is refused."""
    host = urlsplit(url).netloc
    stream = await anyio.connect_tcp("127.0.0.1", int(host.rsplit(":", 1)[1]))
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        headers = [(b"x-asrs-server-id", b"test-server")]
        if token is not None:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        await stream.send(
            ws.send(
                Request(host=host, target=f"/server/?hub={hub}&cid={cid}", extra_headers=headers)
            )
        )
        status, body = 0, b""
        while True:
            ws.receive_data(await stream.receive())
            events = list(ws.events())
            for event in events:
                if isinstance(event, AcceptConnection):
                    yield BareServerConnection(stream, ws)
                    return
                if isinstance(event, RejectConnection):
                    status = event.status_code
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        yield status, body
                        return


def server_token(audience: str, key: str = KEY) -> str:
    now = int(time.time())
    claims = {"aud": audience, "nameid": "test-server", "iat": now, "nbf": now, "exp": now + 600}
    return jwt.encode(claims, key.encode(), algorithm="HS256", headers={"kid": "k"})


async def handshaken(connection: BareServerConnection | tuple[int, bytes]) -> BareServerConnection:
    assert isinstance(connection, BareServerConnection), connection
    await connection.send(HandshakeRequest())
    assert await connection.next(HandshakeResponse) == HandshakeResponse("")
    return connection


async def test_handshake_pings_and_headers(anyio_backend: str) -> None:
    async with IndependentService.running() as service:
        service.faults.ping_interval = 0.05
        async with server_connection(service.url) as opened:
            connection = await handshaken(opened)
            assert await connection.next(Ping) == Ping()
            await connection.send(Ping(("shutdown", "fin:0")))
            assert await connection.next(Ping) in (Ping(("shutdown", "finack")), Ping())
        await service.wait_for(lambda: service.connections[0].closed)
    assert service.attempts[0].headers["x-asrs-server-id"] == "test-server"
    assert service.connections[0].handshake == [1, 1, 0, "", 0, {}]
    assert service.connections[0].received[1] == [3, "shutdown", "fin:0"]


async def test_server_tokens_are_checked_as_azure_checks_them(anyio_backend: str) -> None:
    async with IndependentService.running(access_key=KEY) as service:
        good = server_token("http://127.0.0.1/server/?hub=chat")
        async with server_connection(service.url, token=good) as opened:
            await handshaken(opened)
        assert service.attempts[-1].auth == "access-key"
        with_port = server_token(f"{service.url}/server/?hub=chat")
        for token in (
            with_port,
            server_token(
                "http://127.0.0.1/server/?hub=chat", "another-key-of-enough-length-0123456789"
            ),
            None,
        ):
            async with server_connection(service.url, token=token) as refused:
                assert isinstance(refused, tuple)
                assert refused[0] == 401
        assert [a.status for a in service.attempts] == [101, 401, 401, 401]
        assert service.attempts[1].auth == "access-key: InvalidAudienceError"
        assert service.attempts[2].auth == "access-key: InvalidSignatureError"
        assert service.attempts[3].auth == "no bearer"


async def test_a_json_client_round_trip(anyio_backend: str) -> None:
    json_hub = JsonHubProtocol()
    async with IndependentService.running() as service, server_connection(service.url) as opened:
        connection = await handshaken(opened)
        async with anyio.create_task_group() as tasks:

            async def hub() -> None:
                opened_client = await connection.next(OpenConnection)
                assert isinstance(opened_client, OpenConnection)
                assert opened_client.claims == (
                    ("asrs.s.uid", "ann"),
                    ("role", "a"),
                    ("role", "b"),
                )
                assert opened_client.ext.protocol == "json"
                assert opened_client.query_string == "x=1"
                first = await connection.next(ConnectionData)
                assert isinstance(first, ConnectionData)
                parsed = parse_handshake_request(first.payload)
                assert parsed is not None
                assert parsed[:2] == ("json", 1)
                (invocation,) = json_hub.reader().feed(parsed[2])
                assert invocation == Invocation("send", ("hi",), "7")
                reply = handshake_response() + json_hub.write(Completion.with_result("7", "ok"))
                await connection.send(ConnectionData(opened_client.connection_id, reply))

            tasks.start_soon(hub)
            client = await service.connect_client(
                "chat",
                user_id="ann",
                claims=[("role", "a"), ("role", "b")],
                query="x=1",
                then=[{"type": 1, "invocationId": "7", "target": "send", "arguments": ["hi"]}],
            )
        assert client.handshake == {}
        await client.wait_for(lambda c: bool(c.received))
        assert client.received == [{"type": 3, "invocationId": "7", "result": "ok"}]
        assert service.connections[0].errors == []


async def test_sends_reach_the_clients_they_name_in_their_protocol(anyio_backend: str) -> None:
    async with IndependentService.running() as service, server_connection(service.url) as opened:
        connection = await handshaken(opened)
        clients = {}
        for name, protocol in (("ann", "json"), ("bob", "messagepack")):
            async with anyio.create_task_group() as tasks:

                async def hub() -> None:
                    opened_client = await connection.next(OpenConnection)
                    assert isinstance(opened_client, OpenConnection)
                    await connection.next(ConnectionData)
                    await connection.send(
                        ConnectionData(opened_client.connection_id, handshake_response())
                    )

                tasks.start_soon(hub)
                clients[name] = await service.connect_client(
                    "chat", protocol=protocol, user_id=name
                )

        message = Invocation("newMessage", ("ann", "hello", b"\x01"))
        payloads = payloads_for(message, ["json", "messagepack"])
        await connection.send(BroadcastData(payloads=payloads))
        await connection.send(
            UserData("bob", {"MessagePack": MessagePackHubProtocol().write(Invocation("toBob"))})
        )
        ann, bob = clients["ann"], clients["bob"]
        await bob.wait_for(lambda c: len(c.received) == 2)
        await ann.wait_for(lambda c: len(c.received) == 1)
        assert ann.received == [
            {"type": 1, "target": "newMessage", "arguments": ["ann", "hello", "AQ=="]}
        ]
        assert bob.received == [
            [1, {}, None, "newMessage", ["ann", "hello", b"\x01"], []],
            [1, {}, None, "toBob", [], []],
        ]

        # groups, with the acks the service answers
        await connection.send(JoinGroupWithAck(ann.connection_id, "room", 11))
        assert await connection.next(Ack) == Ack(11, 1)
        await connection.send(CheckGroupExistenceWithAck("nobody-here", 12))
        assert await connection.next(Ack) == Ack(12, 2)
        await connection.send(
            GroupBroadcastData(
                "room", payloads=payloads_for(Invocation("inRoom"), ["json", "messagepack"])
            )
        )
        await ann.wait_for(lambda c: len(c.received) == 2)
        await connection.send(LeaveGroupWithAck(ann.connection_id, "room", 13))
        assert await connection.next(Ack) == Ack(13, 1)
        assert ann.groups == set()
        assert len(bob.received) == 2
        await service.close_client(bob)
        assert bob.closed == ""


async def test_faults_refuse_fail_the_handshake_split_and_drop(anyio_backend: str) -> None:
    async with IndependentService.running() as service:
        service.faults.refuse_status = 403
        async with server_connection(service.url) as refused:
            assert refused == (403, b'{"message": "refused by the test"}')
        service.faults.refuse_status = None
        service.faults.handshake_error = "Hub is not allowed"
        async with server_connection(service.url) as opened:
            assert isinstance(opened, BareServerConnection)
            await opened.send(HandshakeRequest())
            assert await opened.next(HandshakeResponse) == HandshakeResponse("Hub is not allowed")
            with pytest.raises(anyio.EndOfStream):
                await opened.next(Ping, within=2)
        service.faults.handshake_error = None
        service.faults.ping_interval = None
        async with server_connection(service.url) as opened:
            connection = await handshaken(opened)
            remote = service.up("chat")[0]
            await remote.send([3, "echo", "x" * 300], [3, "a", "b"], [3], pieces=9)
            assert [await connection.next(Ping) for _ in range(3)] == [
                Ping(("echo", "x" * 300)),
                Ping(("a", "b")),
                Ping(),
            ]
            await remote.drop_mid_message([6, "c", b"y" * 100, {}])
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await connection.next(ConnectionData, within=2)
            assert 0 < connection.reader.buffered < 110


async def test_what_it_cannot_read_is_recorded_and_ends_the_connection(anyio_backend: str) -> None:
    async with IndependentService.running() as service, server_connection(service.url) as opened:
        connection = await handshaken(opened)
        await connection.stream.send(connection.ws.send(BytesMessage(data=b"\x02\xc1\xc1")))
        with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await connection.next(Ping, within=2)
        (remote,) = service.connections
        assert remote.errors
        assert remote.errors[0].startswith(
            ("FormatError", "ValueError", "UnpackValueError", "ExtraData")
        )
