"""Service-issued client tokens (``POST :generateToken``): ``mode="service"``, the cache and its
single flight, ``mode="auto"`` falling back on a 403 and switching back, ``mode="key"`` never
falling back, and how the service's errors reach the negotiate endpoint.

The real azure-identity gets its tokens from the emulator, on asyncio and trio.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from signalr_asgi_auth import (
    ConfigurationError,
    InvalidInputError,
    NotReadyError,
    PermissionDeniedError,
    ServiceError,
    SignalRAuth,
    SignalRAuthMiddleware,
    negotiate_endpoint,
)
from signalr_asgi_auth.emulator import Emulator, Principal

from .emulator.helpers import service_token_claims
from .faults import keeper_tasks, running_app
from .support import (
    FAST,
    auth_for,
    principal_with_role,
    verify_client_token,
    wait_for_a_refused_key,
)

pytestmark = pytest.mark.anyio

AUDIENCE = "http://127.0.0.1/client/?hub=chat"
REST_API_OWNER = "SignalR REST API Owner"


def service_calls(emulator: Emulator) -> int:
    return len(emulator.log.entries("signalr.generate_token"))


async def client_negotiate(url: str, reply: dict[str, str]) -> httpx2.Response:
    """What a real client does with the app's negotiate reply: the service's negotiate."""
    async with httpx2.AsyncClient(timeout=5) as http:
        return await http.post(
            f"{reply['url']}&negotiateVersion=1".replace("/client/?", "/client/negotiate?"),
            headers={"Authorization": f"Bearer {reply['accessToken']}"},
        )


class SteppedClock:
    """The real clock plus an offset that the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


@asynccontextmanager
async def negotiate_app(auth: SignalRAuth, **keywords: Any) -> AsyncIterator[httpx2.AsyncClient]:
    app = Starlette(
        routes=[Route("/chat/negotiate", negotiate_endpoint("chat", **keywords))],
        middleware=[Middleware(SignalRAuthMiddleware, auth=auth)],
    )
    async with running_app(app) as client:
        yield client


@pytest.fixture
def owner(emulator: Emulator) -> Principal:
    return principal_with_role(emulator, REST_API_OWNER)


# -- mode="service" ------------------------------------------------------------------------------


async def test_service_mode_negotiates_with_a_token_the_service_accepts(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    auth = auth_for(emulator, emulator_url, owner, mode="service")
    async with auth as signalr:
        assert keeper_tasks() == ["signalr_asgi_auth.EntraTokenKeeper"]
        reply = await signalr.negotiate("Chat", user_id="alice", lifetime=600)
        health = auth.health()

    assert reply["url"] == f"{emulator_url}/client/?hub=chat"
    claims = service_token_claims(reply["accessToken"], emulator, AUDIENCE)
    assert claims["asrs.s.uid"] == claims["nameid"] == "alice"
    assert claims["exp"] - claims["iat"] == 600
    negotiated = await client_negotiate(emulator_url, reply)
    assert negotiated.status_code == 200, negotiated.text
    [call] = emulator.log.entries("signalr.generate_token")
    assert call.path == "/api/hubs/chat/:generateToken"
    assert call.query == {"api-version": "2023-07-01", "userId": "alice", "minutesToExpire": "10"}
    assert call.principal_oid == owner.object_id
    assert emulator.log.entries("signalr.access_key") == []
    assert emulator.issued_keys == []
    assert health["status"] == "ok"
    assert health["signing"] == "service"
    assert health["client_tokens"] == "service"
    assert "access_key" not in health
    assert health["service_tokens"]["requests"] == 1


async def test_a_hundred_negotiations_for_one_user_cost_one_service_call(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    auth = auth_for(emulator, emulator_url, owner, mode="service")
    async with auth as signalr:
        replies = [await signalr.negotiate("chat", user_id="alice") for _ in range(100)]
        others = [await signalr.negotiate("chat", user_id=f"user-{n}") for n in range(3)]
        anonymous = await signalr.client_token("chat")
        stats = auth.health()["service_tokens"]

    assert len({reply["accessToken"] for reply in replies}) == 1
    assert len({reply["accessToken"] for reply in others}) == 3
    assert "nameid" not in service_token_claims(anonymous, emulator, AUDIENCE)
    assert service_calls(emulator) == 1 + 3 + 1
    users = [entry.query.get("userId") for entry in emulator.log.entries("signalr.generate_token")]
    assert users == ["alice", "user-0", "user-1", "user-2", None]
    assert (stats["hits"], stats["misses"], stats["requests"]) == (99, 5, 5)
    assert stats["cached"] == 5


async def test_a_thousand_concurrent_cold_negotiations_share_one_service_call(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    auth = auth_for(emulator, emulator_url, owner, mode="service")
    tokens: list[str] = []
    async with auth as signalr:
        # The service answers slowly, so that every negotiation arrives while the call is out.
        emulator.inject("signalr.generate_token", delay=0.3)

        async def negotiate() -> None:
            tokens.append((await signalr.negotiate("chat", user_id="crowd"))["accessToken"])

        async with anyio.create_task_group() as group:
            for _ in range(1000):
                group.start_soon(negotiate)
        stats = auth.health()["service_tokens"]

    assert len(tokens) == 1000
    assert len(set(tokens)) == 1
    assert service_calls(emulator) == 1
    assert (stats["misses"], stats["requests"]) == (1000, 1)
    assert service_token_claims(tokens[0], emulator, AUDIENCE)["nameid"] == "crowd"


async def test_a_token_is_reused_for_the_configured_fraction_of_its_lifetime(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    clock = SteppedClock()
    auth = auth_for(
        emulator,
        emulator_url,
        owner,
        mode="service",
        clock=clock,
        service_token_cache_fraction=0.25,
    )
    async with auth as signalr:
        first = await signalr.client_token("chat", user_id="alice", lifetime=timedelta(hours=1))
        clock.offset = 14 * 60
        assert await signalr.client_token("chat", user_id="alice") == first
        assert service_calls(emulator) == 1
        clock.offset = 15 * 60 + 1
        await signalr.client_token("chat", user_id="alice")
        assert service_calls(emulator) == 2


async def test_no_reuse_with_a_zero_fraction_but_still_one_call_at_a_time(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    auth = auth_for(emulator, emulator_url, owner, mode="service", service_token_cache_fraction=0)
    async with auth as signalr:
        await signalr.client_token("chat", user_id="alice")
        await signalr.client_token("chat", user_id="alice")
        assert service_calls(emulator) == 2
        emulator.inject("signalr.generate_token", delay=0.2)
        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(lambda: signalr.client_token("chat", user_id="alice"))
        assert service_calls(emulator) == 3
        assert auth.health()["service_tokens"]["cached"] == 0


async def test_the_lifetime_is_part_of_the_key_in_whole_minutes_rounded_up(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    auth = auth_for(emulator, emulator_url, owner, mode="service", token_lifetime=59)
    async with auth as signalr:
        for lifetime in (None, 1, 60, 61, 119, 120, timedelta(hours=2), 3 * 3600):
            await signalr.client_token("chat", user_id="alice", lifetime=lifetime)

    minutes = [
        entry.query["minutesToExpire"] for entry in emulator.log.entries("signalr.generate_token")
    ]
    assert minutes == ["1", "2", "120", "180"]


async def test_a_service_token_is_not_reused_past_the_lifetime_the_service_gave_it(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    # A service that caps lifetimes at one minute, whatever was asked: reuse follows the token.
    now = int(emulator.clock.now())
    capped = jwt.encode(
        {"aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 60}, emulator.access_keys[0]
    )
    emulator.inject("signalr.generate_token", body=f'{{"token": "{capped}"}}', times=1)
    clock = SteppedClock()
    auth = auth_for(emulator, emulator_url, owner, mode="service", clock=clock)
    async with auth as signalr:
        assert await signalr.client_token("chat", user_id="alice") == capped
        clock.offset = 31
        assert await signalr.client_token("chat", user_id="alice") != capped
    assert service_calls(emulator) == 2


async def test_the_cache_is_bounded_and_evicts_the_least_recently_used(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    auth = auth_for(emulator, emulator_url, owner, mode="service", service_token_cache_size=3)
    async with auth as signalr:
        for user in ("u0", "u1", "u2", "u0", "u3"):  # u1 is the least recently used then
            await signalr.client_token("chat", user_id=user)
        assert service_calls(emulator) == 4
        stats = auth.health()["service_tokens"]
        assert (stats["cached"], stats["max_size"], stats["evictions"]) == (3, 3, 1)
        await signalr.client_token("chat", user_id="u0")
        assert service_calls(emulator) == 4
        await signalr.client_token("chat", user_id="u1")
        assert service_calls(emulator) == 5


@pytest.mark.parametrize(
    "extra",
    [{"claims": {"tier": "gold"}}, {"roles": ["admin"]}, {"claims": {"nameid": "bob"}}],
    ids=["claims", "roles", "nameid-without-user"],
)
async def test_claims_and_roles_cannot_travel_through_the_service(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    owner: Principal,
    extra: dict[str, Any],
) -> None:
    auth = auth_for(emulator, emulator_url, owner, mode="service")
    async with auth as signalr:
        with pytest.raises(InvalidInputError, match="cannot travel through") as caught:
            await signalr.negotiate("chat", **extra)
        assert await signalr.negotiate("chat", user_id="bob", claims={"nameid": "bob"})
    message = str(caught.value)
    assert ":generateToken" in message
    assert "mode='service'" in message
    assert "'SignalR App Server'" in message
    assert service_calls(emulator) == 1


async def test_service_mode_with_an_access_key_is_a_configuration_error(
    emulator: Emulator,
) -> None:
    connection_string = emulator.connection_string("http://127.0.0.1:1", auth_type=None)
    with pytest.raises(ConfigurationError, match="mode='service' asks SignalR Service"):
        SignalRAuth.from_connection_string(connection_string, mode="service")


async def test_an_application_name_reaches_the_service(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    auth = auth_for(emulator, emulator_url, owner, mode="service", application_name="Shop")
    async with auth as signalr:
        reply = await signalr.negotiate("Chat", user_id="alice")

    [call] = emulator.log.entries("signalr.generate_token")
    assert (call.path, call.query["application"]) == ("/api/hubs/chat/:generateToken", "shop")
    service_token_claims(reply["accessToken"], emulator, "http://127.0.0.1/client/?hub=shop_chat")
    assert (await client_negotiate(emulator_url, reply)).status_code == 200


# -- errors from :generateToken ------------------------------------------------------------------


async def test_a_missing_role_is_a_503_naming_the_roles_that_grant_client_tokens(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    app_server = principal_with_role(emulator, "SignalR App Server")
    auth = auth_for(emulator, emulator_url, app_server, mode="service")
    async with negotiate_app(auth) as client:
        with pytest.raises(PermissionDeniedError) as caught:
            await auth.context.negotiate("chat", user_id="alice")
        answer = await client.post("/chat/negotiate")
        health = auth.health()

    assert caught.value.roles == (REST_API_OWNER, "SignalR Service Owner")
    assert caught.value.principal_id == app_server.object_id
    assert answer.status_code == 503
    assert int(answer.headers["retry-after"]) >= 1
    body = answer.json()
    assert body["code"] == "service_error"
    for fact in (
        "refused to get a client token for hub 'chat' (403 Forbidden)",
        "auth/clientToken/action",
        f"'{REST_API_OWNER}' or 'SignalR Service Owner'",
        app_server.object_id,
    ):
        assert fact in body["error"]
    assert health["status"] == "unavailable"
    assert health["service_tokens"]["last_error"]["type"] == "PermissionDeniedError"


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ({"status": 500}, "answered 500 Internal Server Error while trying to get a client token"),
        ({"status": 503, "headers": {"Retry-After": "7"}}, "answered 503"),
        ({"status": 401}, "rejected the Microsoft Entra token while trying to get a client token"),
        ({"status": 403}, "refused to get a client token for hub 'chat' (403 Forbidden)"),
        ({"body": "<html>gateway</html>"}, "reply that is not a JSON object"),
        ({"body": '{"token": 42}'}, "reply that has no token string"),
        ({"delay": 3.0}, "did not answer within 1 s while trying to get a client token"),
    ],
    ids=["500", "503", "401", "403", "html", "no-token", "timeout"],
)
async def test_service_errors_answer_503_and_clear_up(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    owner: Principal,
    fault: dict[str, Any],
    words: str,
) -> None:
    clock = SteppedClock()
    # request_timeout: short of the injected delay, with room for the answers that should come.
    auth = auth_for(emulator, emulator_url, owner, mode="service", request_timeout=1.0, clock=clock)
    # After a 403, or an answer with Retry-After, the service is not asked again for a while.
    waits = fault.get("status") == 403 or "headers" in fault
    async with negotiate_app(auth, user_id=lambda request: request.query_params["user"]) as client:
        injected = emulator.inject("signalr.generate_token", **fault)
        failed = await client.post("/chat/negotiate?user=alice")
        emulator.remove_fault(injected)
        calls = service_calls(emulator)
        second = await client.post("/chat/negotiate?user=bob")
        if waits:
            clock.offset += 11
            recovered = await client.post("/chat/negotiate?user=bob")
        else:
            recovered = second

    assert failed.status_code == 503, failed.text
    assert failed.json()["code"] == "service_error"
    assert words in failed.json()["error"]
    expected_retry = "7" if fault.get("headers") else "5"
    assert failed.headers["retry-after"] == expected_retry
    if waits:
        assert second.status_code == 503
        assert second.json() == failed.json()
        assert service_calls(emulator) == calls + 1  # only the one after the wait
    assert recovered.status_code == 200, recovered.text
    service_token_claims(recovered.json()["accessToken"], emulator, AUDIENCE)


async def test_after_a_403_the_service_is_not_asked_again_whoever_negotiates(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    app_server = principal_with_role(emulator, "SignalR App Server")  # no client-token role
    clock = SteppedClock()
    auth = auth_for(emulator, emulator_url, app_server, mode="service", clock=clock)
    async with negotiate_app(auth, user_id=lambda request: request.query_params["user"]) as client:
        first = await client.post("/chat/negotiate?user=u0")
        calls = service_calls(emulator)
        held = [await client.post(f"/chat/negotiate?user=u{n}") for n in range(1, 50)]
        emulator.assign(app_server, REST_API_OWNER)  # fixed: noticed once the wait is over
        still_held = await client.post("/chat/negotiate?user=late")
        clock.offset += 10.5
        recovered = await client.post("/chat/negotiate?user=late")
        health = auth.health()["service_tokens"]

    assert first.status_code == 503
    assert "refused to get a client token for hub 'chat' (403 Forbidden)" in first.json()["error"]
    assert [answer.json() for answer in [*held, still_held]] == [first.json()] * 50
    assert calls >= 1
    assert recovered.status_code == 200, recovered.text
    assert service_calls(emulator) == calls + 1
    assert health["held_back"] == 50
    assert health["not_asking_until"] is None


async def test_retry_after_is_obeyed_and_then_one_request_asks_for_everyone(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    clock = SteppedClock()
    auth = auth_for(emulator, emulator_url, owner, mode="service", clock=clock)
    async with negotiate_app(auth, user_id=lambda request: request.query_params["user"]) as client:
        await client.post("/chat/negotiate?user=warm")
        injected = emulator.inject(
            "signalr.generate_token", status=429, headers={"Retry-After": "30"}, delay=0.3
        )
        before = service_calls(emulator)
        during = [await client.post(f"/chat/negotiate?user=a{n}") for n in range(20)]
        during_calls = service_calls(emulator) - before
        clock.offset += 29
        late = await client.post("/chat/negotiate?user=b")
        clock.offset += 2  # the wait is over; still throttled
        answers: list[httpx2.Response] = []

        async def negotiate(user: str) -> None:
            answers.append(await client.post(f"/chat/negotiate?user={user}"))

        async with anyio.create_task_group() as tasks:
            for n in range(20):
                tasks.start_soon(negotiate, f"c{n}")
        after_wait_calls = service_calls(emulator) - before
        emulator.remove_fault(injected)
        clock.offset += 31
        recovered = await client.post("/chat/negotiate?user=d")

    assert during_calls == 1
    assert {answer.status_code for answer in during} == {503}
    assert {answer.headers["retry-after"] for answer in during} == {"30"}
    assert (
        "throttling requests to get a client token for hub 'chat' (429" in during[0].json()["error"]
    )
    assert late.status_code == 503
    assert after_wait_calls == 2  # one request for the twenty, the others answered at once
    assert {answer.status_code for answer in answers} == {503}
    assert recovered.status_code == 200, recovered.text


@pytest.mark.parametrize(
    ("headers", "wait"), [({}, 5.0), ({"Retry-After": "86400"}, 300.0)], ids=["none", "a-day"]
)
async def test_a_429_waits_five_seconds_without_retry_after_and_at_most_five_minutes(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    owner: Principal,
    headers: dict[str, str],
    wait: float,
) -> None:
    clock = SteppedClock()
    auth = auth_for(emulator, emulator_url, owner, mode="service", clock=clock)
    async with negotiate_app(auth, user_id=lambda request: request.query_params["user"]) as client:
        await client.post("/chat/negotiate?user=warm")
        emulator.inject("signalr.generate_token", status=429, headers=headers, times=1)
        throttled = await client.post("/chat/negotiate?user=a")
        clock.offset += wait - 0.5
        held = await client.post("/chat/negotiate?user=b")
        clock.offset += 1.0
        asked = await client.post("/chat/negotiate?user=b")

    assert (throttled.status_code, held.status_code) == (503, 503)
    assert held.json() == throttled.json()
    assert asked.status_code == 200, asked.text


async def test_auto_without_either_role_does_not_ask_the_service_per_user(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    nobody = emulator.add_principal("nobody")
    auth = auth_for(emulator, emulator_url, nobody, startup_timeout=0.5)
    async with negotiate_app(auth, user_id=lambda request: request.query_params["user"]) as client:
        answers = [await client.post(f"/chat/negotiate?user=u{n}") for n in range(30)]

    assert {answer.status_code for answer in answers} == {503}
    assert {answer.json()["code"] for answer in answers} == {"not_ready"}
    assert service_calls(emulator) <= 2  # the startup probe, and perhaps one after its wait


async def test_no_secret_in_reprs_health_or_errors(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    owner: Principal,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = auth_for(emulator, emulator_url, owner, mode="service")
    async with auth as signalr:
        token = await signalr.client_token("chat", user_id="alice")
        emulator.inject("signalr.generate_token", status=500, times=1)
        with pytest.raises(ServiceError) as caught:
            await signalr.client_token("chat", user_id="bob")
        shown = " ".join([repr(auth), repr(signalr), str(auth.health()), str(caught.value)])
    shown += " ".join(record.getMessage() for record in caplog.records)
    for secret in (token, token.split(".")[2], emulator.access_keys[0], emulator.access_keys[1]):
        assert secret not in shown


# -- mode="auto" ---------------------------------------------------------------------------------


async def test_auto_falls_back_to_the_service_and_back_to_local_signing(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    owner: Principal,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "signalr_asgi_auth")
    auth = auth_for(emulator, emulator_url, owner, startup_timeout=10)
    started = anyio.current_time()
    async with auth as signalr:
        # No wait for the whole startup_timeout: the service path works.
        assert anyio.current_time() - started < 5
        replies = [await signalr.negotiate("chat", user_id="alice") for _ in range(5)]
        health = auth.health()
        with pytest.raises(InvalidInputError, match="falls back to it") as caught:
            await signalr.negotiate("chat", user_id="alice", roles=["admin"])
        calls_before = service_calls(emulator)

        emulator.assign(owner, "SignalR App Server")
        with anyio.fail_after(5):
            while auth.health()["signing"] != "local":  # noqa: ASYNC110 - polling a snapshot
                await anyio.sleep(0.02)
        local = await signalr.negotiate("chat", user_id="alice", roles=["admin"])
        more = [await signalr.negotiate("chat", user_id=f"u{n}") for n in range(5)]
        after = auth.health()

    assert "SignalR App Server" in str(caught.value)
    assert len({reply["accessToken"] for reply in replies}) == 1
    service_token_claims(replies[0]["accessToken"], emulator, AUDIENCE)
    assert (await client_negotiate(emulator_url, replies[0])).status_code == 200
    assert health["signing"] == "service"
    assert health["status"] == "degraded"
    assert health["client_tokens"] == "auto"
    assert health["access_key"]["last_error"]["type"] == "PermissionDeniedError"
    # The startup probe and one negotiation; none once the key is there.
    assert calls_before == 2
    assert service_calls(emulator) == calls_before
    claims = verify_client_token(local["accessToken"], emulator, audience=AUDIENCE)
    assert claims["role"] == "admin"
    assert all(verify_client_token(r["accessToken"], emulator, audience=AUDIENCE) for r in more)
    assert (after["signing"], after["status"], after["service_tokens"]["cached"]) == (
        "local",
        "ok",
        0,
    )
    warnings = [
        record
        for record in caplog.records
        if record.levelno >= logging.WARNING and "SignalR App Server" in record.getMessage()
    ]
    assert len(warnings) == 1, [record.getMessage() for record in warnings]
    message = warnings[0].getMessage()
    assert "refused to get a temporary access key (403 Forbidden)" in message
    assert "client tokens come from SignalR Service" in message
    assert "retried in the background" in message
    assert any("signed locally again" in record.getMessage() for record in caplog.records)


async def test_auto_with_the_key_makes_no_service_call_and_no_network_call_to_negotiate(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    async with auth as signalr:
        logged = len(emulator.log)
        for n in range(50):
            await signalr.negotiate("chat", user_id=f"u{n}", claims={"tier": "gold"})
        assert len(emulator.log) == logged
        assert auth.health()["signing"] == "local"
    assert service_calls(emulator) == 0


async def test_key_mode_negotiates_without_network_calls(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator), mode="key")
    async with auth as signalr:
        logged = len(emulator.log)
        for n in range(50):
            await signalr.negotiate("chat", user_id=f"u{n}")
        assert len(emulator.log) == logged
        health = auth.health()
    assert "service_tokens" not in health
    assert health["signing"] == "local"


async def test_key_mode_never_falls_back(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    auth = auth_for(emulator, emulator_url, owner, mode="key", startup_timeout=0.3)
    async with negotiate_app(auth) as client:
        await wait_for_a_refused_key(auth)
        answer = await client.post("/chat/negotiate")
        health = auth.health()

    assert answer.status_code == 503
    assert answer.json()["code"] == "not_ready"
    assert "'SignalR App Server'" in answer.json()["error"]
    assert owner.object_id in answer.json()["error"]
    assert int(answer.headers["retry-after"]) >= 1
    assert service_calls(emulator) == 0
    assert (health["status"], health["signing"]) == ("unavailable", "local")


async def test_auto_without_either_role_waits_for_the_key_and_names_both_paths(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "signalr_asgi_auth")
    nobody = emulator.add_principal("nobody")
    # Startup waits all of startup_timeout here (no key comes): long enough for both refusals
    # to be back on a busy machine, short enough not to slow the suite much.
    auth = auth_for(emulator, emulator_url, nobody, startup_timeout=3)
    async with auth as signalr:
        await wait_for_a_refused_key(auth)
        with pytest.raises(NotReadyError) as caught:
            await signalr.negotiate("chat")
        health = auth.health()
    assert isinstance(caught.value.cause, PermissionDeniedError)
    message = str(caught.value)
    assert "refused to get a temporary access key (403 Forbidden)" in message
    assert "'SignalR App Server'" in message
    assert "Asking SignalR Service for the client token instead failed too" in message
    assert "refused to get a client token" in message
    assert health["status"] == "unavailable"
    startup = [r.getMessage() for r in caplog.records if "Starting without" in r.getMessage()]
    assert len(startup) == 1
    assert "does not issue client tokens to it either" in startup[0]


async def test_auto_fallback_errors_are_503_not_ready(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    auth = auth_for(emulator, emulator_url, owner)
    async with negotiate_app(auth) as client:
        emulator.inject("signalr.generate_token", status=500, times=1)
        failed = await client.post("/chat/negotiate")
        recovered = await client.post("/chat/negotiate")

    assert failed.status_code == 503
    assert failed.json()["code"] == "not_ready"
    error = failed.json()["error"]
    assert "refused to get a temporary access key (403 Forbidden)" in error
    assert "answered 500 Internal Server Error while trying to get a client token" in error
    assert recovered.status_code == 200


async def test_the_negotiate_endpoint_works_in_service_mode(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    auth = auth_for(emulator, emulator_url, owner, mode="service")
    async with negotiate_app(auth, user_id=lambda request: request.query_params["user"]) as client:
        answers = [await client.post("/chat/negotiate?user=alice") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert service_calls(emulator) == 1
    reply = answers[0].json()
    assert service_token_claims(reply["accessToken"], emulator, AUDIENCE)["nameid"] == "alice"
    assert (await client_negotiate(emulator_url, reply)).status_code == 200


# -- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"mode": "serverless"}, "mode must be 'auto', 'key' or 'service'"),
        ({"service_token_cache_fraction": 1}, "service_token_cache_fraction must be"),
        ({"service_token_cache_fraction": -0.1}, "service_token_cache_fraction must be"),
        ({"service_token_cache_fraction": float("nan")}, "service_token_cache_fraction must be"),
        ({"service_token_cache_fraction": True}, "service_token_cache_fraction must be"),
        ({"service_token_cache_size": 0}, "service_token_cache_size must be"),
        ({"service_token_cache_size": 1.5}, "service_token_cache_size must be"),
        ({"service_token_cache_size": True}, "service_token_cache_size must be"),
    ],
)
async def test_options_are_checked(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        SignalRAuth(endpoint="https://x.service.signalr.net", access_key="k" * 43, **options)


async def test_option_defaults() -> None:
    auth = SignalRAuth(endpoint="https://x.service.signalr.net", access_key="k" * 43, **FAST)
    assert auth.options.mode == "auto"
    assert auth.options.service_token_cache_fraction == 0.5
    assert auth.options.service_token_cache_size == 10_000
