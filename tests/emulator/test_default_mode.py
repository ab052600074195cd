"""The emulator's Default mode over real sockets: app servers' connections at ``/server/`` (auth,
handshake, pings, timeouts), clients routed through them (JSON and MessagePack), every send message
an app server writes, group membership and existence checks with acks, closes, client invocations
between two servers, and the REST API reaching clients that app servers carry."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from httpx2.websockets import WebSocketDisconnect, WebSocketUpgradeError

from signalr_asgi_auth.emulator import Emulator, serve_in_thread

from .helpers import TIMEOUT, wait_until
from .hub_client import RS, HubSocket, MessagePackHubSocket, hub_socket
from .service_client import ServerSocket, encode, server_socket

pytestmark = pytest.mark.anyio

server_side = pytest.mark.parametrize("anyio_backend", ["asyncio"])
"""What the emulator decides alone: the test's own event loop plays no part in it."""

NO_SERVER = "However app servers are not connected."
SUBSCRIPTION = "/subscriptions/00000000-0000-0000-0000-0000000000a1"


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(service_mode="default", server_ping_interval=0.2)


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
        yield http


def entra_token(
    emulator: Emulator, role: str | None = "SignalR App Server", scope: str | None = None
) -> str:
    principal = emulator.add_principal(f"server-{len(emulator.principals)}")
    if role is not None:
        emulator.assign(principal, role, scope)
    return emulator.issue_entra_token(principal)


def key_token(emulator: Emulator, audience: str, **claims: Any) -> str:
    payload = {"aud": audience, "exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, emulator.access_keys[0], algorithm="HS256")


def client_token(
    emulator: Emulator, user: str | None = "alice", hub: str = "chat", **claims: Any
) -> str:
    if user is not None:
        claims["asrs.s.uid"] = user
    return key_token(emulator, f"http://127.0.0.1/client/?hub={hub}", **claims)


@asynccontextmanager
async def connected_server(
    client: httpx2.AsyncClient, url: str, token: str, **options: Any
) -> AsyncIterator[ServerSocket]:
    async with server_socket(client, url, token, **options) as server:
        assert await server.handshake() == [2, "", {}, None]
        yield server


async def open_client(server: ServerSocket, ws: HubSocket | MessagePackHubSocket) -> list[Any]:
    """Answer the handshake the client sent through ``server``; the OpenConnection message."""
    opened = await server.receive_type(4)
    data = await server.receive_type(6)
    assert data[1] == opened[1]
    assert data[2].startswith(b'{"protocol":')
    await server.send([6, opened[1], b"{}" + RS.encode(), {}])
    return opened


async def upgrade_refused(
    client: httpx2.AsyncClient, url: str, token: str | None, hub: str = "chat"
) -> httpx2.Response:
    """A WebSocket upgrade request made by hand, so that the refusal's body can be read."""
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = await client.get(f"{url}/server/", params={"hub": hub, "cid": "c"}, headers=headers)
    assert response.status_code != 101
    return response


# -- server connections ------------------------------------------------------------------------


async def test_a_server_connects_and_answers_pings(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    token = entra_token(emulator)
    async with server_socket(client, emulator_url, token, hub="Chat", cid="c1") as server:
        assert await server.handshake() == [2, "", {}, None]
        assert await server.receive(skip_pings=False) == [3]  # the service pings

        [connection] = emulator.server_connections
        assert (connection.hub, connection.connection_id, connection.server_id) == (
            "chat",
            "c1",
            "server-1",
        )
        assert connection.kind == "default"

        await server.send([3, "echo", "hello"])
        assert await server.receive() == [3, "echo", "hello"]
        await server.send([3, "status", "1"])
        assert await server.receive() == [3, "status", "0"]
        await server.send([3, "servers", ""])
        reply = await server.receive()
        assert reply[:2] == [3, "servers"]
        assert reply[2].endswith(":server-1")
        await server.send([3, "shutdown", "fin:2"])
        assert await server.receive() == [3, "shutdown", "finack"]
        assert not connection.accepting

    [entry] = emulator.log.entries("server.connect")
    assert (entry.status, entry.headers["authorization"]) == (101, "[redacted]")
    assert entry.principal_oid is not None
    await wait_until(lambda: not emulator.server_connections, "the connection to be forgotten")


@server_side
async def test_a_handshake_of_another_version_is_refused(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    async with server_socket(client, emulator_url, entra_token(emulator)) as server:
        reply = await server.handshake(version=2)
        assert reply[0] == 2
        assert "Protocol version 2 is not supported" in reply[1]
        with pytest.raises(WebSocketDisconnect):
            await server.receive()
    assert emulator.server_connections == []


@server_side
async def test_serverless_mode_refuses_server_connections(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    emulator.service_mode = "serverless"
    async with server_socket(client, emulator_url, entra_token(emulator)) as server:
        reply = await server.handshake()
        assert reply[0] == 2
        assert "Serverless mode" in reply[1]
        assert "--service-mode Default" in reply[1]
        with pytest.raises(WebSocketDisconnect):
            await server.receive()


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        ("SignalR App Server", None),
        ("SignalR App Server", f"{SUBSCRIPTION}/resourceGroups/rg-signalr"),
        ("SignalR App Server", SUBSCRIPTION),
        ("SignalR Service Owner", None),
    ],
)
@server_side
async def test_entra_roles_that_open_server_connections(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient, role: str, scope: str | None
) -> None:
    async with server_socket(client, emulator_url, entra_token(emulator, role, scope)) as server:
        assert await server.handshake() == [2, "", {}, None]


@server_side
async def test_a_rest_api_owner_is_forbidden_and_told_which_roles_would_do(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    token = entra_token(emulator, "SignalR REST API Owner")
    response = await upgrade_refused(client, emulator_url, token)
    assert response.status_code == 403
    message = response.json()["message"]
    assert "serverConnection/write" in message
    assert "SignalR App Server or SignalR Service Owner" in message
    assert emulator.log.entries("server.connect")[0].status == 403


@pytest.mark.parametrize(
    ("token", "status", "says"),
    [
        (None, 401, "no 'Authorization: Bearer"),
        ("not-a-jwt", 401, "not a well-formed JWT"),
        ("key:http://127.0.0.1/client/?hub=chat", 401, "audience"),
        ("key:http://127.0.0.1/server/?hub=other", 401, "audience"),
        ("entra-no-role", 403, "does not have authorization"),
    ],
)
@server_side
async def test_server_connections_refused_before_the_upgrade(
    emulator: Emulator,
    emulator_url: str,
    client: httpx2.AsyncClient,
    token: str | None,
    status: int,
    says: str,
) -> None:
    if token == "entra-no-role":
        token = entra_token(emulator, None)
    elif token is not None and token.startswith("key:"):
        token = key_token(emulator, token.removeprefix("key:"))
    response = await upgrade_refused(client, emulator_url, token)
    assert response.status_code == status
    assert says in response.text


@server_side
async def test_a_key_signed_server_token(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    token = key_token(emulator, "http://127.0.0.1/server/?hub=app_chat", nameid="server-1")
    async with server_socket(client, emulator_url, token, hub="App_Chat") as server:
        assert await server.handshake() == [2, "", {}, None]
    [entry] = emulator.log.entries("server.connect")
    assert entry.principal_oid is None

    # The audience names the host without its port, as the SDK builds it.
    host = emulator_url.removeprefix("http://")
    with_port = key_token(emulator, f"http://{host}/server/?hub=chat")
    response = await upgrade_refused(client, emulator_url, with_port)
    assert response.status_code == 401
    assert "audience" in response.text


@pytest.mark.parametrize(("status", "close"), [(401, None), (403, None), (500, None), (None, 1011)])
@server_side
async def test_faults_on_the_server_route(
    emulator: Emulator,
    emulator_url: str,
    client: httpx2.AsyncClient,
    status: int | None,
    close: int | None,
) -> None:
    emulator.inject("server.connect", status=status, close=close, delay=0.05, times=1)
    token = entra_token(emulator)
    if status is not None:
        with pytest.raises(WebSocketUpgradeError) as refused:
            async with server_socket(client, emulator_url, token):
                pass  # pragma: no cover
        assert refused.value.response.status_code == status
    else:
        async with server_socket(client, emulator_url, token) as server:
            with pytest.raises(WebSocketDisconnect):
                await server.handshake()
    # The fault applied once: the next connection is served.
    async with server_socket(client, emulator_url, token) as server:
        assert await server.handshake() == [2, "", {}, None]


# -- clients through a server --------------------------------------------------------------------


@server_side
async def test_a_client_of_a_hub_no_server_serves_is_refused(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    async with (
        connected_server(client, emulator_url, entra_token(emulator), hub="other"),
        hub_socket(client, emulator_url, client_token(emulator)) as ws,
    ):
        reply = await ws.handshake()
        assert NO_SERVER in reply["error"]
        with pytest.raises(WebSocketDisconnect):
            await ws.receive()
    assert emulator.connections == []


async def test_a_json_client_through_a_server(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    token = client_token(emulator, role=["a", "b"])
    async with connected_server(client, emulator_url, entra_token(emulator)) as server:
        async with hub_socket(client, emulator_url, token, token_in_query=True) as ws:
            await ws.session.send_text(json.dumps({"protocol": "json", "version": 1}) + RS)
            opened = await server.receive_type(4)
            connection_id, claims, headers, query, ext = opened[1:]
            assert ext == {3: "json"}
            assert ("role", "a") in claims
            assert ("role", "b") in claims
            assert ("asrs.s.uid", "alice") in claims
            assert "X-Forwarded-For" in headers
            assert query == "?hub=chat"  # no access_token: the app server never sees it
            data = await server.receive_type(6)
            assert data[1] == connection_id
            assert data[2] == b'{"protocol": "json", "version": 1}' + RS.encode()

            # The server answers the handshake and writes a message in the same payload.
            invocation = {"type": 1, "target": "hello", "arguments": ["x"]}
            payload = b"{}" + RS.encode() + json.dumps(invocation).encode() + RS.encode()
            await server.send([6, connection_id, payload, {}])
            assert await ws.receive(skip_pings=False) == {}
            assert await ws.receive(skip_pings=False) == invocation
            [connection] = emulator.connections
            assert (connection.protocol, connection.user_id) == ("json", "alice")
            assert connection.server is emulator.server_connections[0]

            sent = {"type": 1, "target": "send", "arguments": [1], "invocationId": "1"}
            await ws.send(sent)
            forwarded = await server.receive_type(6)
            assert forwarded[1] == connection_id
            assert json.loads(forwarded[2].rstrip(RS.encode())) == sent

        # The client left: its server hears of it.
        assert await server.receive_type(5) == [5, connection_id, "", {}, {}]
    assert emulator.log.entries("client.websocket")[0].status == 101


async def test_a_messagepack_client_through_a_server(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    async with (
        connected_server(client, emulator_url, entra_token(emulator)) as server,
        hub_socket(client, emulator_url, client_token(emulator)) as json_ws,
    ):
        await json_ws.session.send_text(json.dumps({"protocol": "json", "version": 1}) + RS)
        await open_client(server, json_ws)
        assert await json_ws.receive(skip_pings=False) == {}
        async with hub_socket(client, emulator_url, client_token(emulator, "bob")) as raw:
            ws = MessagePackHubSocket(raw.session)
            handshake = ws.handshake()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(open_client_and_check, server, "messagepack")
                assert await handshake == {}
            invocation = encode_hub([1, {}, None, "hello", ["bin"]])
            # One multicast, a payload per protocol; the names compared without regard to case.
            await server.send(
                [
                    10,
                    [],
                    {
                        "MessagePack": invocation,
                        "JSON": b'{"type":1,"target":"hello","arguments":["text"]}\x1e',
                    },
                    {},
                ]
            )
            assert await ws.receive() == [1, {}, None, "hello", ["bin"]]
            assert await json_ws.receive() == {"type": 1, "target": "hello", "arguments": ["text"]}

            await ws.send([1, {}, "7", "send", [1]])
            forwarded = await server.receive_type(6)
            assert forwarded[2] == encode_hub([1, {}, "7", "send", [1]])


async def open_client_and_check(server: ServerSocket, protocol: str) -> None:
    opened = await server.receive_type(4)
    assert opened[5] == {3: protocol}
    await server.receive_type(6)
    await server.send([6, opened[1], b"{}" + RS.encode(), {}])


def encode_hub(fields: list[Any]) -> bytes:
    return encode(fields)


# -- what servers send ---------------------------------------------------------------------------

HANDSHAKE = json.dumps({"protocol": "json", "version": 1}) + RS


@asynccontextmanager
async def routed_clients(
    client: httpx2.AsyncClient, url: str, emulator: Emulator, server: ServerSocket, *users: str
) -> AsyncIterator[list[tuple[str, HubSocket]]]:
    """JSON clients of ``users`` connected through ``server``: (connection id, socket) each."""
    async with AsyncExitStack() as stack:
        routed = []
        for user in users:
            token = client_token(emulator, user)
            ws = await stack.enter_async_context(hub_socket(client, url, token))
            await ws.session.send_text(HANDSHAKE)
            opened = await open_client(server, ws)
            assert await ws.receive(skip_pings=False) == {}
            routed.append((opened[1], ws))
        yield routed


def payload(n: int | str) -> dict[str, bytes]:
    return {"json": json.dumps({"type": 1, "target": "m", "arguments": [n]}).encode() + RS.encode()}


async def received_until_end(ws: HubSocket) -> list[Any]:
    arguments = []
    while (message := await ws.receive())["arguments"] != ["end"]:
        arguments.append(message["arguments"][0])
    return arguments


async def test_every_send_reaches_the_clients_it_names(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    async with (
        connected_server(client, emulator_url, entra_token(emulator)) as server,
        routed_clients(client, emulator_url, emulator, server, "alice", "bob", "carol") as routed,
    ):
        (a, alice), (b, bob), (c, carol) = routed
        await server.send(
            [7, [a, c], payload(1), {}],
            [8, "bob", payload(2), {}],
            [9, ["alice", "bob"], payload(3), {}],
            [10, [b], payload(4), {}],
            [18, a, "g", 1, {}],
            [18, "nobody", "g", 2, {}],
        )
        assert await server.receive_type(20) == [20, 1, 1, "", {}]
        assert await server.receive_type(20) == [20, 2, 2, "", {}]  # NotFound
        await server.send(
            [11, b, "g", {}],
            [11, c, "g", {}],
            [13, "g", [b], payload(5), {}, ["carol"], None],  # excluded: bob's id, carol
            [19, c, "g", 3, {}],
            [11, b, "h", {}],
            [14, ["g", "h"], payload(6), {}],  # bob is in both: once
            [26, "carol", "ug", 4, {2: 60}],
            [13, "ug", [], payload(7), {}],  # the shorter form of older servers
            [21, "carol", "ug", 5, {}],
            [27, "carol", None, 6, {}],  # no group: out of every group
            [13, "ug", [], payload(8), {}],
            [16, "alice", "ug2", {}],
            [17, "alice", "ug2", {}],
            [13, "ug2", [], payload(9), {}],
            [12, a, "g", {}],
            [13, "g", [], payload(10), {}],
        )
        acks = [await server.receive_type(20) for _ in range(4)]
        assert [ack[1:3] for ack in acks] == [[3, 1], [4, 1], [5, 1], [6, 1]]
        await server.send(
            [21, "carol", "ug", 7, {}],
            [23, "g", 8, {}],
            [23, "none", 9, {}],
            [24, a, 10, {}],
            [24, "none", 11, {}],
            [25, "bob", 12, {}],
            [25, "dave", 13, {}],
            [10, [], payload("end"), {}],
        )
        acks = [await server.receive_type(20) for _ in range(7)]
        assert [ack[1:3] for ack in acks] == [
            [7, 2],
            [8, 1],
            [9, 2],
            [10, 1],
            [11, 2],
            [12, 1],
            [13, 2],
        ]
        assert await received_until_end(alice) == [1, 3, 4, 5, 6]
        assert await received_until_end(bob) == [2, 3, 6, 10]
        assert await received_until_end(carol) == [1, 4, 7]


async def test_closes_asked_by_servers(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    users = ("alice", "bob", "carol", "dave")
    async with (
        connected_server(client, emulator_url, entra_token(emulator)) as server,
        routed_clients(client, emulator_url, emulator, server, *users) as routed,
    ):
        (a, alice), (b, bob), (c, carol), (d, dave) = routed
        await server.send([11, c, "g", {}], [11, d, "g", {}])
        await server.send([32, "bob", "bye", 1, [], {}])
        assert await bob.receive() == {"type": 7, "error": "bye", "allowReconnect": False}
        assert await server.receive_type(20) == [20, 1, 1, "", {}]
        assert await server.receive_type(5) == [5, b, "", {}, {}]  # the service closed it

        await server.send([33, "g", "", 2, [d], {}])
        assert await carol.receive() == {"type": 7, "allowReconnect": False}
        assert await server.receive_type(20) == [20, 2, 1, "", {}]
        assert await server.receive_type(5) == [5, c, "", {}, {}]

        # The server closes alice itself: its hub's Close message, then CloseConnection.
        close = encode_json({"type": 7, "error": "done"})
        await server.send([6, a, close, {}], [5, a, "done", {}, {}])
        assert await alice.receive() == {"type": 7, "error": "done"}  # once: the hub's
        with pytest.raises(WebSocketDisconnect):
            await alice.receive()
        await server.send([24, a, 3, {}])
        assert await server.receive_type(20) == [20, 3, 2, "", {}]  # no CloseConnection back
        assert [conn.connection_id for conn in emulator.connections] == [d]
        del dave


@pytest.mark.parametrize("how", ["service restart", "server leaves"])
async def test_clients_are_closed_when_their_server_connection_drops(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient, how: str
) -> None:
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(
            connected_server(client, emulator_url, entra_token(emulator))
        )
        routed = await stack.enter_async_context(
            routed_clients(client, emulator_url, emulator, server, "alice", "bob")
        )
        if how == "service restart":
            assert emulator.drop_server_connections("CHAT") == 1
            assert await server.closed() == 1011
        else:
            await server.session.close()
        for _, ws in routed:
            close = await ws.receive()
            assert close["type"] == 7
            assert close["allowReconnect"] is True
            assert close["error"].startswith("ServerOffline")
        await wait_until(lambda: not emulator.connections, "the clients to be gone")
        assert emulator.server_connections == []


@server_side
async def test_a_client_invocation_reaches_the_client_and_its_completion_the_caller(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    async with (
        connected_server(
            client, emulator_url, entra_token(emulator), cid="b1", server_id="server-b"
        ) as server_b,
        routed_clients(client, emulator_url, emulator, server_b, "alice") as routed,
    ):
        [(connection_id, alice)] = routed
        async with connected_server(
            client, emulator_url, entra_token(emulator), cid="a1", server_id="server-a"
        ) as server_a:
            question = {"type": 1, "target": "confirm", "arguments": [], "invocationId": "i1"}
            invocation = [
                34,
                "i1",
                connection_id,
                "server-a",
                {"json": encode_json(question)},
                {},
            ]
            await server_a.send(invocation)
            assert await alice.receive() == question
            assert await server_b.receive_type(34) == invocation  # where to route the answer
            assert await server_a.receive_type(37) == [37, "i1", connection_id, "emulator", {}]

            await alice.send({"type": 3, "invocationId": "i1", "result": 42})
            forwarded = await server_b.receive_type(6)
            assert json.loads(forwarded[2].rstrip(RS.encode()))["result"] == 42
            completion = [35, "i1", connection_id, "server-a", "json", forwarded[2], {}]
            await server_b.send(completion)
            assert await server_a.receive_type(35) == completion

            await server_a.send([34, "i2", "gone", "server-a", {"json": b""}, {}])
            error = await server_a.receive_type(36)
            assert error[:4] == [36, "i2", "gone", "server-a"]
            assert "not connected" in error[4]

            await server_a.send(
                [34, "i3", connection_id, "server-a", {"json": encode_json(question)}, {}]
            )
            await server_b.receive_type(34)
            await server_a.receive_type(37)
            await alice.session.close()
            error = await server_a.receive_type(36)
            assert error[:4] == [36, "i3", connection_id, "server-a"]
            assert "disconnected" in error[4]


def encode_json(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + RS.encode()


@server_side
async def test_the_rest_api_reaches_clients_that_servers_carry(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    rest_token = entra_token(emulator, "SignalR REST API Owner")
    async with (
        connected_server(client, emulator_url, entra_token(emulator)) as server,
        routed_clients(client, emulator_url, emulator, server, "alice") as routed,
    ):
        [(connection_id, alice)] = routed
        async with hub_socket(client, emulator_url, client_token(emulator, "bob")) as raw:
            bob = MessagePackHubSocket(raw.session)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(open_client_and_check, server, "messagepack")
                assert await bob.handshake() == {}
            sent = await client.post(
                f"{emulator_url}/api/hubs/chat/:send",
                params={"api-version": "2022-06-01"},
                json={"target": "news", "arguments": ["hi"]},
                headers={"Authorization": f"Bearer {rest_token}"},
            )
            assert sent.status_code == 202
            assert await alice.receive() == {"type": 1, "target": "news", "arguments": ["hi"]}
            assert await bob.receive() == [1, {}, None, "news", ["hi"]]

            closed = await client.delete(
                f"{emulator_url}/api/hubs/chat/connections/{connection_id}",
                params={"api-version": "2022-06-01", "reason": "rest"},
                headers={"Authorization": f"Bearer {rest_token}"},
            )
            assert closed.status_code == 200
            assert (await alice.receive())["error"] == "rest"
            assert await server.receive_type(5) == [5, connection_id, "", {}, {}]


@server_side
async def test_a_silent_server_is_closed_and_clients_get_no_pings_from_the_service(
    client: httpx2.AsyncClient,
) -> None:
    emulator = Emulator(service_mode="default", server_timeout=0.5, ping_interval=0.05)
    with serve_in_thread(emulator.app) as url:
        async with server_socket(client, url, entra_token(emulator)) as server:
            assert await server.handshake() == [2, "", {}, None]
            async with routed_clients(client, url, emulator, server, "alice") as routed:
                [(_, alice)] = routed
                with anyio.move_on_after(0.3):
                    message = await alice.receive(skip_pings=False)
                    pytest.fail(f"The service wrote to a Default-mode client: {message!r}")
                assert await server.closed() == 1000
                close = await alice.receive()
                assert close["error"].startswith("ServerOffline")
        [entry] = emulator.log.entries("server.connect")
        assert entry.status == 101


@server_side
async def test_a_user_group_membership_with_a_ttl_ends(
    emulator: Emulator, emulator_url: str, client: httpx2.AsyncClient
) -> None:
    async with (
        connected_server(client, emulator_url, entra_token(emulator)) as server,
        routed_clients(client, emulator_url, emulator, server, "alice") as routed,
    ):
        [(_, alice)] = routed
        await server.send([16, "alice", "short", {2: 30}], [16, "alice", "long", {}])
        await server.send([21, "alice", "short", 1, {}], [21, "alice", "long", 2, {}])
        assert [(await server.receive_type(20))[2] for _ in range(2)] == [1, 1]
        emulator.clock.advance(31)
        await server.send([21, "alice", "short", 3, {}], [21, "alice", "long", 4, {}])
        assert [(await server.receive_type(20))[2] for _ in range(2)] == [2, 1]
        await server.send(
            [13, "short", [], payload("short"), {}],
            [13, "long", [], payload("long"), {}],
            [10, [], payload("end"), {}],
        )
        assert await received_until_end(alice) == ["long"]
