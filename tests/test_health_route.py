"""The ready-made health route: 200 while tokens can be issued (ok, degraded), 503 while they cannot
(starting, unavailable, stopped), JSON without secrets, never cached; in Starlette and FastAPI."""

from __future__ import annotations

import json

import httpx2
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from signalr_asgi_auth import (
    SignalRAuth,
    SignalRAuthMiddleware,
    health_endpoint,
    negotiate_endpoint,
)
from signalr_asgi_auth.emulator import Emulator

from .faults import running_app
from .support import auth_for, principal_with_role, wait_for_status, wait_until

pytestmark = pytest.mark.anyio

SHORT = {"key_refresh_interval": 0.4, "key_lifetime": 1.5, "key_expiry_margin": 0.3}


def app_with_health(auth: SignalRAuth, *, explicit: bool = False) -> Starlette:
    return Starlette(
        routes=[
            Route("/healthz", health_endpoint(auth if explicit else None)),
            Route("/chat/negotiate", negotiate_endpoint("chat", user_id="alice")),
        ],
        middleware=[Middleware(SignalRAuthMiddleware, auth=auth)],
    )


def check_answer(answer: httpx2.Response, status: int, verdict: str) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-type"] == "application/json"
    body: dict[str, object] = answer.json()
    assert body["status"] == verdict
    assert next(iter(body)) == "status"  # first, for whoever reads the probe log
    return body


async def test_ok_is_200_with_the_snapshot_and_no_secret(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    async with running_app(app_with_health(auth)) as client:
        answer = await client.get("/healthz")
        head = await client.head("/healthz")
        token = (await client.post("/chat/negotiate")).json()["accessToken"]
    body = check_answer(answer, 200, "ok")
    assert {"endpoint", "access_key", "entra_token"} <= set(body)
    assert (head.status_code, head.content) == (200, b"")
    assert emulator.issued_keys[0].access_key not in answer.text
    assert token not in answer.text
    assert app_service_env["IDENTITY_HEADER"] not in answer.text


async def test_degraded_is_200(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator), **SHORT)
    async with running_app(app_with_health(auth)) as client:
        emulator.inject("signalr.access_key", status=500)
        await wait_for_status(auth, "degraded")
        answer = await client.get("/healthz")
        emulator.clear_faults()
    body = check_answer(answer, 200, "degraded")
    assert "500" in json.dumps(body["access_key"])


async def test_starting_is_503(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator), startup_timeout=0.1)
    emulator.inject("signalr.access_key", delay=3, times=1)  # no key yet, no failure yet
    async with running_app(app_with_health(auth)) as client:
        answer = await client.get("/healthz")
        await wait_for_status(auth, "ok", within=10)
        recovered = await client.get("/healthz")
    check_answer(answer, 503, "starting")
    check_answer(recovered, 200, "ok")


async def test_unavailable_is_503_with_the_cause(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    principal = emulator.add_principal("no-role")
    auth = auth_for(emulator, emulator_url, principal, startup_timeout=0.1, mode="key")
    async with running_app(app_with_health(auth)) as client:
        await wait_until(lambda: auth.health()["status"] == "unavailable")
        answer = await client.get("/healthz")
    body = check_answer(answer, 503, "unavailable")
    assert "SignalR App Server" in json.dumps(body)


async def test_stopped_is_503(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    route = Starlette(routes=[Route("/healthz", health_endpoint(auth))])  # no middleware: not run
    transport = httpx2.ASGITransport(route)
    async with httpx2.AsyncClient(transport=transport, base_url="http://app") as client:
        answer = await client.get("/healthz")
    check_answer(answer, 503, "stopped")


async def test_without_the_middleware_it_answers_503_and_says_why() -> None:
    app = Starlette(routes=[Route("/healthz", health_endpoint())])
    transport = httpx2.ASGITransport(app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://app") as client:
        answer = await client.get("/healthz")
    body = check_answer(answer, 503, "unavailable")
    assert "SignalRAuthMiddleware" in str(body["error"])


async def test_other_methods_are_405() -> None:
    app = Starlette(routes=[Route("/healthz", health_endpoint())])
    transport = httpx2.ASGITransport(app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://app") as client:
        answer = await client.post("/healthz")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD"}


async def test_in_fastapi_with_add_route(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    app = FastAPI()
    app.add_middleware(SignalRAuthMiddleware, auth=auth)
    app.add_route("/healthz", health_endpoint(), include_in_schema=False)
    async with running_app(app) as client:
        answer = await client.get("/healthz")
        explicit = FastAPI()
        explicit.add_route("/healthz", health_endpoint(auth))
        transport = httpx2.ASGITransport(explicit)
        async with httpx2.AsyncClient(transport=transport, base_url="http://app") as other:
            outside = await other.get("/healthz")  # the route outside the middleware, auth given
    check_answer(answer, 200, "ok")
    check_answer(outside, 200, "ok")


def test_a_wrong_auth_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="auth must be a SignalRAuth or None, not str"):
        health_endpoint("Endpoint=...")  # type: ignore[arg-type]


async def test_unknown_status_is_never_taken_for_healthy(emulator: Emulator) -> None:
    # A status a later version might add is 503 until this route learns it: a probe must not
    # take an unknown state for a healthy one.
    class Odd(SignalRAuth):
        def health(self) -> dict[str, object]:
            return {"status": "draining"}

    odd = Odd.from_connection_string(emulator.connection_string("http://127.0.0.1:9"))
    transport = httpx2.ASGITransport(Starlette(routes=[Route("/h", health_endpoint(odd))]))
    async with httpx2.AsyncClient(transport=transport, base_url="http://app") as client:
        answer = await client.get("/h")
    check_answer(answer, 503, "draining")
