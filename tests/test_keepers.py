"""The background keepers against the emulator, with short intervals: nothing on the request path,
refresh on schedule, the last good key through failures, 503 after expiry, recovery by itself."""

from __future__ import annotations

import itertools
import logging

import anyio
import httpx2
import jwt
import pytest

from signalr_asgi_auth import NotReadyError, SignalRAuth
from signalr_asgi_auth._negotiate import error_response
from signalr_asgi_auth.emulator import Emulator, serve_in_thread

from .support import auth_for, principal_with_role, verify_client_token

pytestmark = pytest.mark.anyio

AUDIENCE = "http://127.0.0.1/client/?hub=chat"
SHORT = {"key_refresh_interval": 0.4, "key_lifetime": 1.5, "key_expiry_margin": 0.3}


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def test_negotiations_make_no_requests(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    async with auth_for(emulator, emulator_url, principal_with_role(emulator)) as signalr:
        before = len(emulator.log)
        tokens = [
            (await signalr.negotiate("chat", user_id=f"user{n}"))["accessToken"] for n in range(100)
        ]
        after = len(emulator.log)
    assert after == before
    assert emulator.log.count("identity.app_service") == 1
    assert emulator.log.count("signalr.access_key") == 1
    assert len(set(tokens)) == 100
    for token in tokens[::10]:
        verify_client_token(token, emulator, audience=AUDIENCE)


async def test_the_key_is_refreshed_after_the_interval(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    async with auth_for(emulator, emulator_url, principal_with_role(emulator), **SHORT) as signalr:
        first = await signalr.client_token("chat")
        # Two refreshes, however long a busy machine takes for them (the schedule is judged by
        # when the service issued each key, not by counting within a fixed real-time sleep).
        with anyio.fail_after(10):
            while True:
                second = await signalr.client_token("chat")
                if kid(second) in {key.key_id for key in emulator.issued_keys[2:]}:
                    break
                await anyio.sleep(0.02)
    issued = emulator.issued_keys
    gaps = [later.issued_at - earlier.issued_at for earlier, later in itertools.pairwise(issued)]
    assert min(gaps) >= SHORT["key_refresh_interval"], gaps  # not sooner than the interval
    assert kid(first) == issued[0].key_id
    verify_client_token(second, emulator, audience=AUDIENCE)
    # The Entra token (24 h) was fetched once and reused for every key request.
    assert emulator.log.count("identity.app_service") == 1


async def test_a_failed_refresh_keeps_the_last_key(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator), **SHORT)
    async with auth as signalr:
        first = await signalr.client_token("chat")
        emulator.inject("signalr.access_key", status=500)
        await anyio.sleep(0.7)
        during = await signalr.client_token("chat")
        health = auth.health()
    assert kid(during) == kid(first)
    verify_client_token(during, emulator, audience=AUDIENCE)
    assert health["status"] == "degraded"
    assert health["access_key"]["last_error"]["current"] is True
    assert "500" in health["access_key"]["last_error"]["message"]


async def test_after_the_last_key_expires_negotiation_fails_then_recovers(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator), **SHORT)
    async with auth as signalr:
        await signalr.client_token("chat")
        emulator.inject("signalr.access_key", status=500)
        await anyio.sleep(1.4)  # past the 1.2 s the key may be used
        with pytest.raises(NotReadyError, match="expired") as caught:
            await signalr.negotiate("chat")
        assert "500" in str(caught.value)
        assert auth.health()["status"] == "unavailable"
        emulator.clear_faults()
        with anyio.fail_after(2):  # one backoff step (at most 0.2 s here) plus the request
            while True:
                try:
                    reply = await signalr.negotiate("chat")
                    break
                except NotReadyError:
                    await anyio.sleep(0.02)
    verify_client_token(reply["accessToken"], emulator, audience=AUDIENCE)


async def test_concurrent_first_requests_share_one_refresh(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    from signalr_asgi_auth import SignalRAuthMiddleware, negotiate_endpoint

    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    app = Starlette(
        routes=[Route("/chat/negotiate", negotiate_endpoint("chat"))],
        middleware=[Middleware(SignalRAuthMiddleware, auth=auth)],
    )
    statuses: list[int] = []
    with serve_in_thread(app) as app_url:  # no lifespan: all 20 requests find nothing started
        async with httpx2.AsyncClient(timeout=10) as client:

            async def negotiate() -> None:
                statuses.append((await client.post(f"{app_url}/chat/negotiate")).status_code)

            async with anyio.create_task_group() as group:
                for _ in range(20):
                    group.start_soon(negotiate)
    assert statuses == [200] * 20
    assert emulator.log.count("identity.app_service") == 1
    assert emulator.log.count("signalr.access_key") == 1


async def test_startup_waits_at_most_startup_timeout(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    emulator.inject("signalr.access_key", delay=3)
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator), startup_timeout=0.3)
    started = anyio.current_time()
    async with auth as signalr:
        elapsed = anyio.current_time() - started
        with pytest.raises(NotReadyError, match="under way"):
            await signalr.negotiate("chat")
    assert 0.25 < elapsed < 2.5  # not the 3 s the key takes (room for a busy machine)


async def test_a_hung_identity_endpoint_is_blamed_not_the_service(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    emulator.inject("identity.app_service", delay=3)
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator), startup_timeout=0.3)
    async with auth as signalr:
        with pytest.raises(NotReadyError) as caught:
            await signalr.negotiate("chat")
    message = str(caught.value)
    assert "Microsoft Entra token" in message
    assert "ManagedIdentityCredential" in message
    assert emulator_url not in message  # the service has not been asked anything yet
    assert emulator.log.count("signalr.access_key") == 0


async def test_an_expired_key_is_warned_once_however_often_refreshing_fails(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "signalr_asgi_auth")
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator), **SHORT)
    answers: list[int] = []
    async with auth as signalr:
        await signalr.client_token("chat")
        emulator.inject("signalr.access_key", status=500)
        await anyio.sleep(1.4)  # past the 1.2 s the key may be used
        failed_before = auth.health()["access_key"]["consecutive_failures"]
        for _ in range(40):  # 0.8 s: several refreshes fail meanwhile (backoff at most 0.2 s)
            try:
                await signalr.negotiate("chat")
            except NotReadyError as exc:
                answers.append(error_response(exc).status_code)
            await anyio.sleep(0.02)
        failed_after = auth.health()["access_key"]["consecutive_failures"]
    assert answers == [503] * 40
    assert failed_after > failed_before
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.getMessage().startswith("Negotiation failed")
    ]
    assert len(warned) == 1, warned
    assert "The SignalR access key expired at" in warned[0]


async def test_a_shutdown_cancels_the_keepers_promptly(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    emulator.inject("signalr.access_key", delay=5)
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator), startup_timeout=0.1)
    with anyio.fail_after(2):
        async with auth:
            pass
    assert auth.health()["status"] == "stopped"
    assert isinstance(auth, SignalRAuth)
