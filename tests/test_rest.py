"""The REST client against the emulator, with the real azure-identity: messages that really reach
WebSocket clients, group membership, existence checks, closing, the 403 that names the roles,
access-key mode, retries, and the shared HTTP client."""

from __future__ import annotations

import math
from contextlib import AsyncExitStack
from pathlib import Path
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
    EndpointsHubClient,
    HubClient,
    InvalidInputError,
    PartialSendError,
    PermissionDeniedError,
    ServiceError,
    SignalRAuth,
    SignalRAuthMiddleware,
    SignalRContext,
)
from signalr_asgi_auth._rbac import DataAction, roles_granting
from signalr_asgi_auth._rest import MAX_ATTEMPTS
from signalr_asgi_auth.emulator import Emulator, Principal

from .emulator.helpers import TIMEOUT
from .emulator.hub_client import HubSocket, hub_socket, negotiate
from .faults import closed_port_url
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
        emulator.inject("signalr.rest", status=500, times=1)
        await hub.close_group_connections("g")  # a POST, but closing twice closes nothing more
        statuses = [entry.status for entry in emulator.log.entries("signalr.rest")]
        assert statuses == [503, 200, 408, 408, 200, 500, 204]

        emulator.log.clear()
        emulator.inject("signalr.rest", status=500)  # until removed
        with pytest.raises(ServiceError, match="500") as caught:
            await hub.remove_user_from_group("g", "gina")
        assert caught.value.status == 500
        assert emulator.log.count("signalr.rest") == MAX_ATTEMPTS == 3  # two retries
        emulator.clear_faults()


async def test_sends_are_retried_when_the_service_cannot_have_processed_them(
    emulator: Emulator, auth: SignalRAuth
) -> None:
    async with auth as signalr, Clients(emulator) as clients:
        alice = await clients.connect(signalr, "alice")
        hub = signalr.hub("chat")
        emulator.log.clear()
        emulator.inject("signalr.rest", status=429, times=1)
        await hub.send_to_user("alice", "after-429")
        emulator.inject("signalr.rest", status=503, headers={"Retry-After": "1"}, times=1)
        await hub.send_to_all("after-503")
        emulator.inject("signalr.rest", status=429, times=2)
        await hub.send_to_groups(["nobody-here"], "after-two-429s")
        await hub.send_to_all("end")

        # Each message arrives once: the refused attempts delivered nothing.
        assert await alice.receive() == message("after-429")
        assert await alice.receive() == message("after-503")
        assert await alice.receive() == message("end")
    statuses = [entry.status for entry in emulator.log.entries("signalr.rest")]
    assert statuses == [429, 202, 503, 202, 429, 429, 202, 202]


async def test_sends_are_not_retried_once_they_may_have_been_delivered(
    emulator: Emulator, auth: SignalRAuth
) -> None:
    async with auth as signalr:
        hub = signalr.hub("chat")
        for status in (500, 502, 503, 504, 408):  # 503 without Retry-After
            emulator.log.clear()
            emulator.inject("signalr.rest", status=status, times=1)
            with pytest.raises(ServiceError, match=f"answered {status}") as caught:
                await hub.send_to_all("once")
            assert caught.value.status == status
            assert "It was not retried: the service may have delivered it." in str(caught.value)
            assert emulator.log.count("signalr.rest") == 1
        assert emulator.faults == []


async def test_a_send_that_timed_out_is_not_retried(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], sender: Principal
) -> None:
    auth = auth_for(emulator, emulator_url, sender, request_timeout=0.5)
    async with auth as signalr:
        hub = signalr.hub("chat")
        emulator.inject("signalr.rest", delay=1.5, times=1)  # answers, but too late
        with pytest.raises(ServiceError, match=r"did not answer within 0\.5 s") as caught:
            await hub.send_to_user("alice", "once")
        assert "may have delivered it" in str(caught.value)
        # An idempotent call that times out is tried again (and the service answers in time).
        emulator.inject("signalr.rest", delay=1.5, times=1)
        await hub.remove_user_from_all_groups("alice")
        with anyio.fail_after(TIMEOUT):
            while emulator.log.count("signalr.rest") < 3:  # noqa: ASYNC110 - the server's thread logs late answers
                await anyio.sleep(0.05)
    requests = sorted((e.method, e.path) for e in emulator.log.entries("signalr.rest"))
    assert requests == [
        ("DELETE", "/api/hubs/chat/users/alice/groups"),
        ("DELETE", "/api/hubs/chat/users/alice/groups"),
        ("POST", "/api/hubs/chat/users/alice/:send"),
    ]


async def test_a_refused_connection_is_retried_even_for_sends(emulator: Emulator) -> None:
    attempts: list[str] = []

    async def count(request: httpx2.Request) -> None:
        attempts.append(request.url.path)

    async with httpx2.AsyncClient(event_hooks={"request": [count]}) as http:
        auth = SignalRAuth(
            endpoint=closed_port_url(), access_key=emulator.access_keys[0], http_client=http, **FAST
        )
        async with auth as signalr:
            hub = signalr.hub("chat")
            with pytest.raises(
                ServiceError, match=r"Could not reach .* \(ConnectError\)"
            ) as caught:
                await hub.send_to_all("news")
            assert "not retried" not in str(caught.value)  # it was: nothing can have arrived
            assert attempts == ["/api/hubs/chat/:send"] * MAX_ATTEMPTS
            attempts.clear()
            with pytest.raises(ServiceError, match="Could not reach"):
                await hub.close_all_connections()
            assert len(attempts) == MAX_ATTEMPTS


def test_the_readme_states_the_number_of_attempts() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    words = {3: "three", 4: "four", 5: "five"}
    section = readme.partition("## Sending from the server")[2].partition("\n## ")[0]
    assert f"at most {words[MAX_ATTEMPTS]} attempts in all" in section
    assert "retried up to" not in readme


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
        keeper = auth._runtime.endpoints.home.entra
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
        assert isinstance(first, HubClient)
        assert isinstance(second, HubClient)
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
            (hub.send_to_users("alice", "t"), "user ids must be a list of user ids"),
            (hub.send_to_users(None, "t"), "user ids must be a list"),  # type: ignore[arg-type]
            (hub.send_to_users(["a", ""], "t"), "Each user id must be a non-empty string"),
            (hub.send_to_users(["a"], ""), "target"),
            (hub.send_to_users(["a"], "t", {1}), "cannot be sent as JSON"),
            (hub.send_to_groups(b"g", "t"), "groups must be a list of groups"),  # type: ignore[arg-type]
            (hub.send_to_groups(["g", 1], "t"), "Each group must be"),  # type: ignore[list-item]
            (hub.send_to_groups(["g\x85"], "t"), "control characters"),
            (hub.send_to_groups(["g"], "t", excluded="c"), "excluded must be a list"),
            (hub.close_all_connections(excluded="abc"), "excluded must be a list"),
            (hub.close_all_connections(reason=""), "reason"),
            (hub.close_all_connections(excluded=[None]), "excluded connection id"),  # type: ignore[list-item]
            (hub.close_group_connections(""), "group must be a non-empty string"),
            (hub.close_user_connections("u", reason="a\nb"), "control characters"),
            (hub.close_user_connections("u" * 1025), "at most 1024"),
            (hub.remove_connection_from_all_groups(""), "connection_id"),
            (hub.remove_user_from_all_groups(7), "user_id"),  # type: ignore[arg-type]
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


# -- closing many connections, leaving every group ------------------------------------------------


def closed(reason: str | None = None) -> dict[str, Any]:
    """The close message a client gets when the service closes it."""
    return {"type": 7, **({"error": reason} if reason else {}), "allowReconnect": False}


async def gone(hub: HubClient | EndpointsHubClient, client: Client) -> None:
    """Wait until the service no longer has ``client``'s connection."""
    with anyio.fail_after(TIMEOUT):
        while await hub.connection_exists(client.connection_id):  # noqa: ASYNC110 - asking the service
            await anyio.sleep(0.02)


async def test_close_all_connections(emulator: Emulator, auth: SignalRAuth) -> None:
    async with auth as signalr, Clients(emulator) as clients:
        alice = await clients.connect(signalr, "alice")
        bob = await clients.connect(signalr, "bob")
        carol = await clients.connect(signalr, "carol")
        other = await clients.connect(signalr, "dan", hub="other")
        hub = signalr.hub("chat")

        await hub.close_all_connections(excluded=[bob.connection_id], reason="maintenance")

        assert await alice.receive() == closed("maintenance")
        assert await carol.receive() == closed("maintenance")
        await gone(hub, alice)
        await gone(hub, carol)
        await hub.send_to_all("still-here")
        await signalr.hub("other").send_to_all("still-here")
        assert await bob.receive() == message("still-here")
        assert await other.receive() == message("still-here")
        await hub.close_all_connections()
        assert await bob.receive() == closed()
    first = emulator.log.entries("signalr.rest")[0]
    assert (first.method, first.path, first.status) == (
        "POST",
        "/api/hubs/chat/:closeConnections",
        204,
    )
    assert first.query == {
        "api-version": "2022-06-01",
        "excluded": bob.connection_id,
        "reason": "maintenance",
    }


async def test_close_a_groups_and_a_users_connections(
    emulator: Emulator, auth: SignalRAuth
) -> None:
    async with auth as signalr, Clients(emulator) as clients:
        alice = await clients.connect(signalr, "alice")
        alice_too = await clients.connect(signalr, "alice")
        bob = await clients.connect(signalr, "bob")
        carol = await clients.connect(signalr, "carol")
        hub = signalr.hub("chat")
        for client in (alice, bob, carol):
            await hub.add_connection_to_group("room", client.connection_id)

        await hub.close_group_connections("room", excluded=[carol.connection_id], reason="closed")
        assert await alice.receive() == closed("closed")
        assert await bob.receive() == closed("closed")
        await gone(hub, bob)

        await hub.close_user_connections("carol", reason="banned")
        assert await carol.receive() == closed("banned")
        await hub.close_user_connections("alice", excluded=[alice_too.connection_id])
        await hub.close_group_connections("empty")  # nobody to close: no error
        await hub.send_to_all("after")
        assert await alice_too.receive() == message("after")
    paths = [entry.path for entry in emulator.log.entries("signalr.rest")]
    assert "/api/hubs/chat/groups/room/:closeConnections" in paths
    assert "/api/hubs/chat/users/carol/:closeConnections" in paths


async def test_remove_a_connection_from_all_groups(emulator: Emulator, auth: SignalRAuth) -> None:
    async with auth as signalr, Clients(emulator) as clients:
        alice = await clients.connect(signalr, "alice")
        bob = await clients.connect(signalr, "bob")
        hub = signalr.hub("chat")
        for group in ("red", "blue"):
            await hub.add_connection_to_group(group, alice.connection_id)
        await hub.add_connection_to_group("red", bob.connection_id)

        await hub.remove_connection_from_all_groups(alice.connection_id)
        await hub.remove_connection_from_all_groups("gone-already")  # in no group: no error

        await hub.send_to_group("red", "red")
        await hub.send_to_group("blue", "blue")
        await hub.send_to_all("end")
        assert await alice.receive() == message("end")  # no group send reached her
        assert await bob.receive() == message("red")
        assert not await hub.group_exists("blue")
    entry = emulator.log.entries("signalr.rest")[3]
    assert (entry.method, entry.path, entry.status) == (
        "DELETE",
        f"/api/hubs/chat/connections/{alice.connection_id}/groups",
        200,
    )


async def test_remove_a_user_from_all_groups(emulator: Emulator, auth: SignalRAuth) -> None:
    async with auth as signalr, Clients(emulator) as clients:
        hub = signalr.hub("chat")
        for group in ("vip", "news"):
            await hub.add_user_to_group(group, "carol")
        await hub.add_user_to_group("news", "dave")
        carol = await clients.connect(signalr, "carol")
        dave = await clients.connect(signalr, "dave")

        await hub.remove_user_from_all_groups("carol")

        assert not await hub.user_in_group("vip", "carol")
        assert not await hub.user_in_group("news", "carol")
        carol_later = await clients.connect(signalr, "carol")  # joins none of them either
        await hub.send_to_groups(["vip", "news"], "group-news")
        await hub.send_to_all("end")
        assert await carol.receive() == message("end")
        assert await carol_later.receive() == message("end")
        assert await dave.receive() == message("group-news")
    entry = emulator.log.entries("signalr.rest")[3]
    assert (entry.method, entry.path, entry.status) == (
        "DELETE",
        "/api/hubs/chat/users/carol/groups",
        204,
    )


# -- several users or groups: one request each ---------------------------------------------------


async def test_send_to_several_users_and_groups(emulator: Emulator, auth: SignalRAuth) -> None:
    async with auth as signalr, Clients(emulator) as clients:
        alice = await clients.connect(signalr, "alice")
        bob = await clients.connect(signalr, "bob")
        carol = await clients.connect(signalr, "carol")
        hub = signalr.hub("chat")
        await hub.add_connection_to_group("red", alice.connection_id)
        await hub.add_connection_to_group("blue", bob.connection_id)
        await hub.add_connection_to_group("blue", carol.connection_id)
        emulator.log.clear()

        await hub.send_to_users(["alice", "bob", "alice"], "users", 1)  # alice once
        await hub.send_to_groups(("red", "blue"), "groups", 2, excluded=[carol.connection_id])
        await hub.send_to_users([], "nobody")
        await hub.send_to_groups(iter(()), "nobody")
        await hub.send_to_all("end")

        assert await alice.receive() == message("users", 1)
        assert await alice.receive() == message("groups", 2)
        assert await alice.receive() == message("end")
        assert await bob.receive() == message("users", 1)
        assert await bob.receive() == message("groups", 2)
        assert await carol.receive() == message("end")
    entries = emulator.log.entries("signalr.rest")
    assert sorted(entry.path for entry in entries[:2]) == [
        "/api/hubs/chat/users/alice/:send",
        "/api/hubs/chat/users/bob/:send",
    ]
    assert sorted(entry.path for entry in entries[2:4]) == [
        "/api/hubs/chat/groups/blue/:send",
        "/api/hubs/chat/groups/red/:send",
    ]
    assert all(entry.query["excluded"] == carol.connection_id for entry in entries[2:4])
    assert len(entries) == 5  # the empty lists made no request


async def test_a_send_to_several_users_that_partly_fails(
    emulator: Emulator, auth: SignalRAuth
) -> None:
    async with auth as signalr, Clients(emulator) as clients:
        users = {name: await clients.connect(signalr, name) for name in ("ann", "ben", "cat")}
        hub = signalr.hub("chat")
        emulator.inject("signalr.rest", status=500, times=1)  # whichever request comes first

        with pytest.raises(PartialSendError, match="500") as caught:
            await hub.send_to_users(list(users), "news")

        error = caught.value
        [(failed, cause)] = error.failed.items()
        assert sorted((*error.sent, failed)) == ["ann", "ben", "cat"]
        assert error.status == cause.status == 500
        assert f"'news' was sent to 2 of 3 users in hub 'chat'. It failed for {failed!r}" in str(
            error
        )
        assert "not retried: the service may have delivered it" in str(cause)
        await hub.send_to_all("end")
        for name, client in users.items():
            expected = [message("end")] if name == failed else [message("news"), message("end")]
            assert [await client.receive() for _ in expected] == expected
    assert emulator.log.count("signalr.rest") == 4  # a 500 is not retried for a send


async def test_a_send_to_several_groups_that_fails_for_all(
    emulator: Emulator, auth: SignalRAuth
) -> None:
    async with auth as signalr:
        emulator.inject("signalr.rest", status=502)  # until removed
        with pytest.raises(ServiceError, match="502") as caught:
            await signalr.hub("chat").send_to_groups(["a", "b", "c"], "news")
        emulator.clear_faults()
    # Nothing reached anyone: the first group's error itself.
    assert type(caught.value) is ServiceError
    assert "send to group 'a' in hub 'chat'" in str(caught.value)
    assert emulator.log.count("signalr.rest") == 3


# -- who may do it -------------------------------------------------------------------------------

NEW_OPERATIONS: dict[str, tuple[str, Any]] = {
    "close_all_connections": (
        DataAction.CONNECTION_WRITE,
        lambda hub: hub.close_all_connections(excluded=["c"], reason="r"),
    ),
    "close_group_connections": (
        DataAction.CONNECTION_WRITE,
        lambda hub: hub.close_group_connections("g", reason="r"),
    ),
    "close_user_connections": (
        DataAction.CONNECTION_WRITE,
        lambda hub: hub.close_user_connections("u", excluded=["c"]),
    ),
    "remove_connection_from_all_groups": (
        DataAction.GROUP_WRITE,
        lambda hub: hub.remove_connection_from_all_groups("c"),
    ),
    "remove_user_from_all_groups": (
        DataAction.USER_WRITE,
        lambda hub: hub.remove_user_from_all_groups("u"),
    ),
    "send_to_users": (DataAction.USER_SEND, lambda hub: hub.send_to_users(["u", "v"], "t")),
    "send_to_groups": (DataAction.GROUP_SEND, lambda hub: hub.send_to_groups(["g", "h"], "t")),
}


@pytest.mark.parametrize("role", ["SignalR REST API Owner", "SignalR Service Owner"])
async def test_owner_roles_may_call_the_new_operations(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], role: str
) -> None:
    principal = principal_with_role(emulator, role)
    async with auth_for(emulator, emulator_url, principal) as signalr:
        hub = signalr.hub("chat")
        for _, call in NEW_OPERATIONS.values():
            await call(hub)
    entries = emulator.log.entries("signalr.rest")
    assert len(entries) == len(NEW_OPERATIONS) + 2  # the two sends to two recipients
    assert {entry.principal_oid for entry in entries} == {principal.object_id}


@pytest.mark.parametrize("name", NEW_OPERATIONS)
async def test_rest_api_reader_may_not_call_the_new_operations(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], name: str
) -> None:
    principal = principal_with_role(emulator, "SignalR REST API Reader")
    action, call = NEW_OPERATIONS[name]
    # mode="service": startup needs only the Entra token, not the key the Reader may not fetch.
    async with auth_for(emulator, emulator_url, principal, mode="service") as signalr:
        with pytest.raises(PermissionDeniedError, match="SignalR REST API Owner") as caught:
            await call(signalr.hub("chat"))
    error = caught.value
    assert error.action == action
    assert error.roles == tuple(role.name for role in roles_granting(action))
    assert error.roles[-2:] == ("SignalR REST API Owner", "SignalR Service Owner")
    assert error.principal_id == principal.object_id
    assert action in str(error)
    assert emulator.log.count("signalr.rest") == 1  # not retried, and no second recipient tried


async def test_app_server_may_close_connections_but_not_change_groups_or_send(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    principal = principal_with_role(emulator, "SignalR App Server")
    async with auth_for(emulator, emulator_url, principal) as signalr:
        hub = signalr.hub("chat")
        for action, call in NEW_OPERATIONS.values():
            if action == DataAction.CONNECTION_WRITE:
                await call(hub)  # the role grants clientConnection/write
                continue
            with pytest.raises(PermissionDeniedError) as caught:
                await call(hub)
            assert caught.value.roles == ("SignalR REST API Owner", "SignalR Service Owner")
            assert caught.value.action == action
    statuses = [entry.status for entry in emulator.log.entries("signalr.rest")]
    assert statuses == [204, 204, 204, 403, 403, 403, 403]
