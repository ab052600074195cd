"""``SignalRAuth(hubs=[...])``: Default mode in the app's lifespan, health and negotiation."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import jwt
import pytest
from azure.identity import ManagedIdentityCredential
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from signalr_asgi_auth import (
    ConfigurationError,
    NotReadyError,
    SignalRAuth,
    SignalRAuthMiddleware,
    negotiate_endpoint,
)
from signalr_asgi_auth.emulator import Emulator
from signalr_asgi_auth.protocol import Ping
from signalr_asgi_auth.server import STOP_TIMEOUT

from ..faults import keeper_tasks, running_app
from ..support import principal_with_role
from .fake_service import FakeService
from .support import ACCESS_KEY, EchoHub, wait_for

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {"retry_initial_delay": 0.02, "retry_max_delay": 0.1}


def key_auth(url: str, *hubs: EchoHub, **options: Any) -> SignalRAuth:
    return SignalRAuth(endpoint=url, access_key=ACCESS_KEY, hubs=list(hubs), **{**FAST, **options})


@pytest.mark.parametrize(
    ("hubs", "message"),
    [
        ("chat", "hubs must be a list of hub objects"),
        ([object()], "Each of hubs must be a hub object with a name and attach"),
        ([EchoHub("1chat")], "Invalid hub name '1chat'"),
        ([EchoHub("Chat"), EchoHub("chat")], "two hubs named 'Chat' and 'chat'"),
    ],
)
def test_hubs_are_checked(hubs: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SignalRAuth(endpoint="https://x.service.signalr.net", access_key="k", hubs=hubs)
    with pytest.raises(ConfigurationError, match=message):
        SignalRAuth.from_connection_string(
            "Endpoint=https://x.service.signalr.net;AccessKey=k;Version=1.0;", hubs=hubs
        )


@pytest.mark.parametrize("count", [0, 101, True, 2.0, "5", None])
def test_server_connection_count_is_checked(count: object) -> None:
    with pytest.raises(ConfigurationError, match="server_connection_count must be a whole number"):
        SignalRAuth(
            endpoint="https://x.service.signalr.net",
            access_key="k",
            server_connection_count=count,  # type: ignore[arg-type]
        )


async def test_the_lifespan_opens_and_closes_every_hubs_connections(fake: FakeService) -> None:
    chat, news = EchoHub("Chat"), EchoHub("news")
    auth = key_auth(fake.url, chat, news, application_name="App", server_connection_count=2)
    async with auth as signalr:
        # startup waited for a connection per hub; the others follow at once
        await wait_for(
            lambda: sum(h["up"] for h in auth.health()["server_connections"].values()) == 4
        )
        health = auth.health()
        assert health["status"] == "ok"
        assert {hub: h["up"] for hub, h in health["server_connections"].items()} == {
            "app_chat": 2,
            "app_news": 2,
        }
        assert sorted(a.query["hub"] for a in fake.attempts) == ["app_chat"] * 2 + ["app_news"] * 2
        assert chat.running
        assert news.running
        assert "signalr_asgi_auth.ServerConnections" in keeper_tasks()
        reply = await signalr.negotiate("chat", user_id="u")
        assert reply["url"].endswith("/client/?hub=app_chat")
    assert keeper_tasks() == []
    assert not chat.running
    assert all(Ping(("shutdown", "fin:0")) in c.received for c in fake.connections)
    await fake.wait_until(lambda: fake.open_now == 0)
    assert auth.health()["status"] == "stopped"


async def test_negotiation_answers_503_while_a_hubs_connections_are_down(
    fake: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    fake.behaviour, fake.refuse_status = "refuse", 403
    auth = key_auth(fake.url, EchoHub("chat"), startup_timeout=2)
    app = Starlette(
        routes=[
            Route("/chat/negotiate", negotiate_endpoint("chat")),
            Route("/other/negotiate", negotiate_endpoint("other")),
        ],
        middleware=[Middleware(SignalRAuthMiddleware, auth=auth)],
    )
    async with running_app(app) as client:
        assert "Starting without a server connection for hub 'chat'" in caplog.text
        response = await client.post("/chat/negotiate")
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        error = response.json()["error"]
        assert "No server connection to SignalR Service is up for hub 'chat'" in error
        assert "refused to open a server connection for hub 'chat' (403 Forbidden)" in error
        assert (await client.post("/other/negotiate")).status_code == 200  # not a hubs= hub
        assert auth.health()["status"] == "unavailable"
        fake.behaviour = "accept"
        await wait_for(lambda: auth.health()["status"] == "ok")
        assert (await client.post("/chat/negotiate")).status_code == 200
    with pytest.raises(RuntimeError):
        auth.context  # noqa: B018 - stopped


async def test_entra_token_of_the_keeper_is_the_bearer(
    fake: FakeService,
    emulator: Emulator,
    app_service_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    principal = principal_with_role(emulator)
    credential = ManagedIdentityCredential(client_id=principal.client_id)
    fake.behaviour, fake.refuse_status = "refuse", 403
    try:
        auth = SignalRAuth(
            endpoint=fake.url,
            credential=credential,
            mode="service",  # no access-key calls to the fake
            hubs=[EchoHub("chat")],
            server_connection_count=3,
            startup_timeout=2,
            **FAST,
        )
        async with auth as signalr:
            with pytest.raises(NotReadyError) as refused:
                await signalr.negotiate("chat")
            await wait_for(lambda: len(fake.attempts) >= 4)
            fake.behaviour = "accept"
            await wait_for(lambda: auth.health()["server_connections"]["chat"]["up"] == 3)
            identity_calls = [e for e in emulator.log if e.route == "identity.app_service"]
    finally:
        credential.close()
    bearers = {a.headers["authorization"].removeprefix("Bearer ") for a in fake.attempts}
    assert len(bearers) == 1  # one token, held by the keeper, for every attempt
    (bearer,) = bearers
    claims = jwt.decode(bearer, options={"verify_signature": False})
    assert claims["aud"] == "https://signalr.azure.com"
    assert claims["oid"] == principal.object_id
    assert len(identity_calls) == 1  # no extra identity calls for the server connections
    message = str(refused.value)
    assert f"principal (object id) {principal.object_id}" in message
    assert "'SignalR App Server' or 'SignalR Service Owner'" in message
    assert bearer not in caplog.text


async def test_stop_is_within_five_seconds_when_the_service_never_says_finack(
    fake: FakeService,
) -> None:
    fake.answer_finack = False
    auth = key_auth(fake.url, EchoHub("chat"), server_connection_count=2)
    async with auth:
        started = anyio.current_time()
    took = anyio.current_time() - started
    # It waited for finack a while (3 s of the 5), and then stopped: the bound plus room for a
    # loaded machine to close the sockets, far below the 15 s handshake or an endless wait.
    assert 2.0 <= took < STOP_TIMEOUT + 3.0
    assert keeper_tasks() == []
    await fake.wait_until(lambda: fake.open_now == 0)


async def test_health_without_hubs_has_no_server_connections() -> None:
    auth = SignalRAuth(endpoint="https://x.service.signalr.net", access_key="k")
    async with auth:
        assert "server_connections" not in auth.health()
        assert keeper_tasks() == []


async def test_a_client_uses_its_server_connection_end_to_end(fake: FakeService) -> None:
    hub = EchoHub("chat")
    async with key_auth(fake.url, hub, server_connection_count=1):
        from signalr_asgi_auth.protocol import ConnectionData, OpenConnection

        service = fake.live()[0]
        await service.send(OpenConnection("c1"), ConnectionData("c1", b"hi"))
        await service.wait_for(lambda got: ConnectionData("c1", b"echo:hi") in got)
    # The hub was told of the client, then got its bytes; its answer went back on the
    # connection that carries the client (waited for above).
    assert [opened.connection_id for _, opened in hub.opened] == ["c1"]
    assert hub.data == [ConnectionData("c1", b"hi")]


async def test_a_second_entry_while_the_first_starts_is_refused(fake: FakeService) -> None:
    auth = key_auth(fake.url, EchoHub("chat"), server_connection_count=2)
    outcomes: list[str] = []

    async def enter() -> None:
        try:
            async with auth:
                await wait_for(lambda: auth.health()["server_connections"]["chat"]["up"] == 2)
                outcomes.append("ran")
        except RuntimeError as exc:
            outcomes.append(str(exc))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(enter)
            tasks.start_soon(enter)
    assert len(outcomes) == 2
    assert "ran" in outcomes
    (refusal,) = [outcome for outcome in outcomes if outcome != "ran"]
    assert "already starting or running" in refusal
    assert len(fake.attempts) == 2  # one start: not twice the server connections
    assert keeper_tasks() == []
    assert auth.health()["status"] == "stopped"
    async with auth:  # the refusal left nothing behind: it starts again
        assert auth.health()["status"] != "stopped"
