"""The REST client against the emulator, with the real azure-identity: messages that really reach
WebSocket clients, group membership, existence checks, closing, the 403 that names the roles,
access-key mode, retries, and the shared HTTP client."""

from __future__ import annotations

import math
from contextlib import AsyncExitStack
from typing import Any, Literal
from urllib.parse import unquote

import anyio
import httpx2
import jwt
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from signalr_asgi_auth import (
    AuthenticationFailedError,
    HubClient,
    InvalidInputError,
    PermissionDeniedError,
    ServiceError,
    SignalRAuth,
    SignalRAuthMiddleware,
    SignalRContext,
)
from signalr_asgi_auth._rbac import DataAction
from signalr_asgi_auth.emulator import Emulator, Principal

from .emulator.helpers import TIMEOUT
from .emulator.hub_client import HubSocket, hub_socket, negotiate
from .support import FAST, auth_for, principal_with_role

pytestmark = pytest.mark.anyio


class Client:
    """A real client of the emulator's hub: the app's negotiate reply, the service's negotiate,
    the WebSocket and the handshake (``tests/emulator/hub_client.py``)."""

    def __init__(self, socket: HubSocket, connection_id: str) -> None:
        self.socket = socket
        self.connection_id = connection_id

    async def receive(self) -> dict[str, Any]:
        return await self.socket.receive()


class Clients:
    """Connects clients for a test, and closes them at the end of the ``async with`` block (inside
    the app's, as WebSocket sessions hold cancel scopes of the task that opened them)."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._stack = AsyncExitStack()
        self._http = httpx2.AsyncClient(timeout=TIMEOUT)

    async def __aenter__(self) -> Clients:
        await self._stack.__aenter__()
        await self._stack.enter_async_context(self._http)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._stack.__aexit__(*exc_info)

    async def connect(self, signalr: SignalRContext, user: str, hub: str = "chat") -> Client:
        reply = await signalr.negotiate(hub, user_id=user)
        base, _, query = reply["url"].partition("/client/?hub=")
        negotiated = (await negotiate(self._http, base, reply["accessToken"], hub=query)).json()
        socket = await self._stack.enter_async_context(
            hub_socket(
                self._http,
                base,
                reply["accessToken"],
                hub=query,
                connection_token=negotiated["connectionToken"],
            )
        )
        assert await socket.handshake() == {}
        connection_id = negotiated["connectionId"]
        # The emulator answers the handshake a moment before it registers the connection.
        with anyio.fail_after(TIMEOUT):
            while self._emulator.find_connection(connection_id) is None:  # noqa: ASYNC110 - the server's thread adds it
                await anyio.sleep(0.005)
        return Client(socket, connection_id)


@pytest.fixture
def sender(emulator: Emulator) -> Principal:
    """An identity that negotiates (App Server) and sends (REST API Owner)."""
    principal = principal_with_role(emulator, "SignalR App Server")
    emulator.assign(principal, "SignalR REST API Owner")
    return principal


@pytest.fixture
def auth(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], sender: Principal
) -> SignalRAuth:
    return auth_for(emulator, emulator_url, sender)


def message(target: str, *arguments: Any) -> dict[str, Any]:
    return {"type": 1, "target": target, "arguments": list(arguments)}


async def test_sends_reach_the_clients(emulator: Emulator, auth: SignalRAuth) -> None:
    async with auth as signalr, Clients(emulator) as clients:
        alice = await clients.connect(signalr, "alice")
        bob = await clients.connect(signalr, "bob")
        hub = signalr.hub("Chat")

        await hub.send_to_all("news", "hello", {"n": 1}, [True, None], excluded=[bob.connection_id])
        await hub.send_to_user("bob", "direct", 2)
        await hub.send_to_connection(alice.connection_id, "just-you")
        await hub.send_to_all("last")

        assert await alice.receive() == message("news", "hello", {"n": 1}, [True, None])
        assert await alice.receive() == message("just-you")
        assert await alice.receive() == message("last")
        assert await bob.receive() == message("direct", 2)
        assert await bob.receive() == message("last")
    # Each call was one request, authenticated by the Entra token of the one identity.
    entries = emulator.log.entries("signalr.rest")
    assert [(e.method, e.path, e.status) for e in entries] == [
        ("POST", "/api/hubs/chat/:send", 202),
        ("POST", "/api/hubs/chat/users/bob/:send", 202),
        ("POST", f"/api/hubs/chat/connections/{alice.connection_id}/:send", 202),
        ("POST", "/api/hubs/chat/:send", 202),
    ]
    assert entries[0].query == {"api-version": "2022-06-01", "excluded": bob.connection_id}
    assert all(
        entry.principal_oid == emulator.log.entries("signalr.access_key")[0].principal_oid
        for entry in entries
    )


async def test_connection_groups(emulator: Emulator, auth: SignalRAuth) -> None:
    async with auth as signalr, Clients(emulator) as clients:
        alice = await clients.connect(signalr, "alice")
        bob = await clients.connect(signalr, "bob")
        hub = signalr.hub("chat")
        assert not await hub.group_exists("room")

        await hub.add_connection_to_group("room", alice.connection_id)
        await hub.add_connection_to_group("room", bob.connection_id)
        assert await hub.group_exists("room")
        await hub.send_to_group("room", "in-room", 1, excluded=[bob.connection_id])
        await hub.remove_connection_from_group("room", alice.connection_id)
        await hub.send_to_group("room", "in-room", 2)
        await hub.remove_connection_from_group("room", "gone-already")  # no error
        await hub.send_to_all("end")

        assert await alice.receive() == message("in-room", 1)
        assert await alice.receive() == message("end")
        assert await bob.receive() == message("in-room", 2)
        assert await bob.receive() == message("end")
        with pytest.raises(ServiceError, match="'gone' is not connected to hub 'chat'") as caught:
            await hub.add_connection_to_group("room", "gone")
        assert caught.value.status == 404


async def test_user_groups_and_existence(emulator: Emulator, auth: SignalRAuth) -> None:
    async with auth as signalr, Clients(emulator) as clients:
        hub = signalr.hub("chat")
        await hub.add_user_to_group("vip", "carol", ttl=600)
        assert await hub.user_in_group("vip", "carol")
        assert not await hub.user_exists("carol")
        assert not await hub.group_exists("vip")  # no connection in it yet

        carol = await clients.connect(signalr, "carol")  # joins "vip" as she connects
        assert await hub.user_exists("carol")
        assert await hub.connection_exists(carol.connection_id)
        assert not await hub.connection_exists("nobody")
        assert await hub.group_exists("vip")
        await hub.send_to_group("vip", "welcome")
        assert await carol.receive() == message("welcome")

        await hub.remove_user_from_group("vip", "carol")
        assert not await hub.user_in_group("vip", "carol")
        assert not await hub.group_exists("vip")
    query = emulator.log.entries("signalr.rest")[0].query
    assert query == {"api-version": "2022-06-01", "ttl": "600"}


async def test_close_connection(emulator: Emulator, auth: SignalRAuth) -> None:
    async with auth as signalr, Clients(emulator) as clients:
        dave = await clients.connect(signalr, "dave")
        hub = signalr.hub("chat")

        await hub.close_connection(dave.connection_id, reason="maintenance")

        assert await dave.receive() == {"type": 7, "error": "maintenance", "allowReconnect": False}
        with anyio.fail_after(TIMEOUT):
            while await hub.connection_exists(dave.connection_id):  # noqa: ASYNC110 - asking the service
                await anyio.sleep(0.02)


async def test_odd_names_are_quoted(emulator: Emulator, auth: SignalRAuth) -> None:
    user, group = "Ann Lee #1?é%&", "a/b c"
    async with auth as signalr, Clients(emulator) as clients:
        ann = await clients.connect(signalr, user)
        hub = signalr.hub("chat")
        await hub.send_to_user(user, "hi")
        await hub.add_user_to_group(group, user)
        await hub.send_to_group(group, "group-hi")
        assert await hub.user_in_group(group, user)

        assert await ann.receive() == message("hi")
        assert await ann.receive() == message("group-hi")
    path = unquote(emulator.log.entries("signalr.rest")[0].path)
    assert path == f"/api/hubs/chat/users/{user}/:send"


async def test_application_name_prefixes_the_hub(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    sender: Principal,
) -> None:
    auth = auth_for(emulator, emulator_url, sender, application_name="Shop")
    async with auth as signalr, Clients(emulator) as clients:
        erin = await clients.connect(signalr, "erin", hub="Orders")
        hub = signalr.hub("Orders")
        assert hub.name == "shop_orders"
        await hub.send_to_all("order", 7)
        assert await erin.receive() == message("order", 7)
    [entry] = emulator.log.entries("signalr.rest")
    assert entry.path == "/api/hubs/orders/:send"
    assert entry.query == {"api-version": "2022-06-01", "application": "shop"}


async def test_app_server_alone_may_not_send(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    principal = principal_with_role(emulator, "SignalR App Server")
    async with auth_for(emulator, emulator_url, principal) as signalr:
        with pytest.raises(PermissionDeniedError, match="SignalR REST API Owner") as caught:
            await signalr.hub("chat").send_to_all("news")
    error = caught.value
    assert error.action == DataAction.HUB_SEND
    assert DataAction.HUB_SEND in str(error)
    assert error.roles == ("SignalR REST API Owner", "SignalR Service Owner")
    assert error.principal_id == principal.object_id
    assert "send to all connections in hub 'chat'" in str(error)
    assert emulator.log.count("signalr.rest") == 1  # a 403 is not retried


async def test_rest_api_reader_may_check_but_not_write(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    principal = principal_with_role(emulator, "SignalR App Server")
    emulator.assign(principal, "SignalR REST API Reader")
    async with auth_for(emulator, emulator_url, principal) as signalr:
        hub = signalr.hub("chat")
        assert not await hub.user_exists("nobody")
        with pytest.raises(PermissionDeniedError, match="user/write") as caught:
            await hub.add_user_to_group("g", "nobody")
    assert caught.value.roles == ("SignalR REST API Owner", "SignalR Service Owner")


async def test_access_key_mode(emulator: Emulator, emulator_url: str) -> None:
    bearers: list[str] = []

    async def capture(request: httpx2.Request) -> None:
        bearers.append(request.headers["authorization"].removeprefix("Bearer "))

    async with httpx2.AsyncClient(event_hooks={"request": [capture]}) as http:
        connection_string = emulator.connection_string(emulator_url, auth_type=None)
        auth = SignalRAuth.from_connection_string(connection_string, http_client=http)
        async with auth as signalr, Clients(emulator) as clients:
            frank = await clients.connect(signalr, "frank")
            hub = signalr.hub("chat")
            await hub.send_to_user("frank", "keyed")
            assert await hub.user_exists("frank")
            assert await frank.receive() == message("keyed")
        assert not http.is_closed  # the caller's client stays open

    # No managed identity, no temporary key: only the client's requests and the two REST calls.
    routes = {entry.route for entry in emulator.log}
    assert routes == {"client.negotiate", "client.websocket", "signalr.rest"}
    send, check = bearers
    claims = jwt.decode(
        send,
        emulator.access_keys[0],
        algorithms=["HS256"],
        audience=f"{emulator_url}/api/hubs/chat/users/frank/:send",
    )
    assert claims["exp"] - claims["iat"] == 300
    assert jwt.decode(check, options={"verify_signature": False})["aud"].endswith("/users/frank")


async def test_wrong_access_key_is_named(emulator: Emulator, emulator_url: str) -> None:
    auth = SignalRAuth(endpoint=emulator_url, access_key="not-the-key-" * 4)
    async with auth as signalr:
        with pytest.raises(AuthenticationFailedError, match="AccessKey is a current key"):
            await signalr.hub("chat").send_to_all("x")


async def test_idempotent_calls_are_retried(emulator: Emulator, auth: SignalRAuth) -> None:
    async with auth as signalr:
        hub = signalr.hub("chat")
        emulator.inject("signalr.rest", status=503, times=1)
        await hub.add_user_to_group("g", "gina")
        emulator.inject("signalr.rest", status=408, times=2)
        assert await hub.user_in_group("g", "gina")
        statuses = [entry.status for entry in emulator.log.entries("signalr.rest")]
        assert statuses == [503, 200, 408, 408, 200]

        emulator.log.clear()
        emulator.inject("signalr.rest", status=500)  # until removed
        with pytest.raises(ServiceError, match="500") as caught:
            await hub.remove_user_from_group("g", "gina")
        assert caught.value.status == 500
        assert emulator.log.count("signalr.rest") == 3  # at most three attempts
        emulator.clear_faults()


async def test_sends_are_never_retried(emulator: Emulator, auth: SignalRAuth) -> None:
    async with auth as signalr:
        emulator.inject("signalr.rest", status=503, times=1)
        with pytest.raises(ServiceError, match="503") as caught:
            await signalr.hub("chat").send_to_all("once")
        assert caught.value.status == 503
        assert emulator.log.count("signalr.rest") == 1
        assert emulator.faults == []


async def test_a_long_retry_after_is_not_waited_for(emulator: Emulator, auth: SignalRAuth) -> None:
    async with auth as signalr:
        emulator.inject("signalr.rest", status=503, headers={"Retry-After": "30"}, times=1)
        with pytest.raises(ServiceError) as caught:
            await signalr.hub("chat").group_exists("g")
    assert caught.value.retry_after == 30
    assert emulator.log.count("signalr.rest") == 1


async def test_the_entra_token_is_reused_and_asked_for_again_after_401(
    emulator: Emulator, auth: SignalRAuth
) -> None:
    async with auth as signalr:
        assert auth._runtime is not None
        keeper = auth._runtime.entra
        assert keeper is not None
        hub = signalr.hub("chat")
        fetched, asked = emulator.log.count("identity.app_service"), keeper.attempts.fetches
        for index in range(5):
            await hub.send_to_all("tick", index)
            assert not await hub.user_exists("nobody")
        assert emulator.log.count("identity.app_service") == fetched  # no Entra request per call
        assert keeper.attempts.fetches == asked

        emulator.inject("signalr.rest", status=401, times=1)
        with pytest.raises(AuthenticationFailedError, match="401"):
            await hub.send_to_all("tick")
        await hub.send_to_all("tick")
        # The rejected token was dropped, so the credential was asked again (azure-identity may
        # answer from its own cache: the emulator has nothing against the token itself).
        assert keeper.attempts.fetches == asked + 1


async def test_one_http_client_shared_and_closed_at_shutdown(auth: SignalRAuth) -> None:
    async with auth as signalr:
        runtime = auth._runtime
        assert runtime is not None
        first, second = signalr.hub("chat"), auth.context.hub("other")
        assert first._rest is second._rest
        assert first._rest._http is runtime.http  # the access-key keeper's client too
        await first.send_to_all("x")
    assert runtime.http.is_closed
    with pytest.raises(RuntimeError, match="SignalRAuth has shut down"):
        await first.send_to_all("x")


async def test_invalid_input_sends_nothing(emulator: Emulator, auth: SignalRAuth) -> None:
    async with auth as signalr:
        hub = signalr.hub("chat")
        cases: list[tuple[Any, str]] = [
            (hub.send_to_all("", 1), "target"),
            (hub.send_to_all(5), "target"),  # type: ignore[arg-type]
            (hub.send_to_all("t", {1, 2}), "cannot be sent as JSON"),
            (hub.send_to_all("t", math.nan), "cannot be sent as JSON"),
            (hub.send_to_all("t", "x" * (1024 * 1024)), "at most 1048576"),
            (hub.send_to_all("t", excluded="abc"), "excluded must be a list"),
            (hub.send_to_all("t", excluded=[""]), "excluded connection id"),
            (hub.send_to_user("", "t"), "user_id must be a non-empty string"),
            (hub.send_to_group("a\nb", "t"), "control characters"),
            (hub.send_to_connection(None, "t"), "connection_id"),  # type: ignore[arg-type]
            (hub.add_user_to_group("g", "u", ttl=-1), "ttl must be zero or more"),
            (hub.close_connection("c", reason=""), "reason"),
            (hub.user_in_group("g", "u" * 1025), "at most 1024"),
        ]
        for call, fragment in cases:
            with pytest.raises(InvalidInputError, match=fragment):
                await call
        with pytest.raises(InvalidInputError, match="Invalid hub name"):
            signalr.hub("1chat")
    assert emulator.log.count("signalr.rest") == 0


async def test_ttl_is_whole_seconds_rounded_up(emulator: Emulator, auth: SignalRAuth) -> None:
    from datetime import timedelta

    async with auth as signalr:
        await signalr.hub("chat").add_user_to_group("g", "u", ttl=0.2)
        await signalr.hub("chat").add_user_to_group("g", "u", ttl=timedelta(minutes=2))
        await signalr.hub("chat").add_user_to_group("g", "u", ttl=0)
    ttls = [entry.query["ttl"] for entry in emulator.log.entries("signalr.rest")]
    assert ttls == ["1", "120", "0"]


def test_hub_client_in_a_request_handler(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    sender: Principal,
    anyio_backend: Literal["asyncio", "trio"],
) -> None:
    auth = auth_for(emulator, emulator_url, sender)

    async def broadcast(request: Request) -> Response:
        hub: HubClient = request.state.signalr.hub("chat")
        await hub.send_to_all("news", request.query_params["text"])
        return JSONResponse({"sent": repr(hub)})

    app = Starlette(
        routes=[Route("/broadcast", broadcast, methods=["POST"])],
        middleware=[Middleware(SignalRAuthMiddleware, auth=auth)],
    )
    with TestClient(app, backend=anyio_backend) as client:
        response = client.post("/broadcast", params={"text": "hi"})
    assert response.status_code == 200
    assert response.json() == {"sent": f"HubClient('chat', endpoint={emulator_url!r})"}
    assert emulator.log.count("signalr.rest") == 1


async def test_negotiation_makes_no_request(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], sender: Principal
) -> None:
    async with auth_for(emulator, emulator_url, sender, **FAST) as signalr:
        before = len(emulator.log)
        signalr.hub("chat")
        await signalr.negotiate("chat", user_id="x")
        assert len(emulator.log) == before
