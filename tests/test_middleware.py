"""The middleware in real Starlette and FastAPI apps: lifespan ownership, context injection, the
negotiate endpoint's answers, and servers that run no lifespan."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import anyio
import anyio.abc
import httpx2
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from signalr_asgi_auth import (
    SignalRAuth,
    SignalRAuthMiddleware,
    get_context,
    negotiate_endpoint,
)
from signalr_asgi_auth.emulator import Emulator, serve_in_thread
from signalr_asgi_auth.fastapi import SignalR, add_exception_handler

from .support import FAST, auth_for, principal_with_role, verify_client_token

Backend = Literal["asyncio", "trio"]
BACKENDS: list[Backend] = ["asyncio", "trio"]
AUDIENCE = "http://127.0.0.1/client/?hub=chat"


def starlette_app(auth: SignalRAuth, events: list[str]) -> Starlette:
    async def whoami(request: Request) -> Response:
        context = request.state.signalr
        return JSONResponse(
            {"type": type(context).__name__, "same": context is get_context(request)}
        )

    async def health(request: Request) -> Response:
        return JSONResponse(auth.health())

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(type(websocket.state.signalr).__name__)
        await websocket.close()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append(f"app startup, signalr {auth.health()['status']}")
        yield
        events.append(f"app shutdown, signalr {auth.health()['status']}")

    return Starlette(
        routes=[
            Route(
                "/chat/negotiate",
                negotiate_endpoint(
                    "chat", user_id=lambda request: request.query_params.get("user")
                ),
            ),
            Route("/empty/negotiate", negotiate_endpoint("chat", user_id=lambda request: "")),
            Route(
                "/huge/negotiate",
                negotiate_endpoint("chat", claims=lambda request: {"blob": "x" * 5000}),
            ),
            Route("/whoami", whoami),
            Route("/health", health),
            WebSocketRoute("/ws", socket),
        ],
        middleware=[Middleware(SignalRAuthMiddleware, auth=auth)],
        lifespan=lifespan,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_starlette_app_with_lifespan(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], backend: Backend
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    events: list[str] = []
    with TestClient(starlette_app(auth, events), backend=backend) as client:
        posted = client.post("/chat/negotiate?negotiateVersion=1&user=alice", content=b"")
        fetched = client.get("/chat/negotiate?user=bob")
        whoami = client.get("/whoami").json()
        with client.websocket_connect("/ws") as websocket:
            socket_context = websocket.receive_text()
        health = client.get("/health").json()
    assert posted.status_code == 200, posted.text
    assert posted.headers["cache-control"] == "no-store"
    assert posted.json()["url"] == f"{emulator_url}/client/?hub=chat"
    assert (
        verify_client_token(posted.json()["accessToken"], emulator, audience=AUDIENCE)["nameid"]
        == "alice"
    )
    assert fetched.status_code == 200
    assert (
        verify_client_token(fetched.json()["accessToken"], emulator, audience=AUDIENCE)["nameid"]
        == "bob"
    )
    assert whoami == {"type": "SignalRContext", "same": True}
    assert socket_context == "SignalRContext"
    assert health["status"] == "ok"
    # The key was there before the app's own startup ran, and still there during its shutdown.
    assert events == ["app startup, signalr ok", "app shutdown, signalr ok"]
    assert auth.health()["status"] == "stopped"
    assert emulator.log.count("signalr.access_key") == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_fastapi_app_with_the_dependency(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], backend: Backend
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    app = FastAPI()
    app.add_middleware(SignalRAuthMiddleware, auth=auth)
    add_exception_handler(app)

    @app.post("/{hub}/negotiate")
    async def negotiate(hub: str, signalr: SignalR, user: str | None = None) -> dict[str, str]:
        return await signalr.negotiate(hub, user_id=user)

    with TestClient(app, backend=backend) as client:
        good = client.post("/Chat/negotiate?user=carol&negotiateVersion=1")
        bad_hub = client.post("/9lives/negotiate")
        bad_user = client.post("/chat/negotiate?user=%01")
    assert good.status_code == 200, good.text
    assert (
        verify_client_token(good.json()["accessToken"], emulator, audience=AUDIENCE)["nameid"]
        == "carol"
    )
    assert bad_hub.status_code == 400
    assert bad_hub.json()["code"] == "invalid_request"
    assert "hub name" in bad_hub.json()["error"]
    assert bad_user.status_code == 400
    assert "control characters" in bad_user.json()["error"]


@pytest.mark.anyio
async def test_the_fastapi_dependency_takes_no_worker_thread() -> None:
    # Access-key mode: no network, nothing in the background that could take a thread.
    auth = SignalRAuth.from_connection_string(
        "Endpoint=https://contoso.service.signalr.net;AccessKey=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789;"
    )
    app = FastAPI()
    app.add_middleware(SignalRAuthMiddleware, auth=auth)

    @app.get("/url")
    async def url(signalr: SignalR) -> str:
        return signalr.client_url("chat")

    # FastAPI runs a plain-function dependency in a worker thread (one per request under load).
    # With every worker thread taken, only a dependency that needs none can answer.
    limiter = anyio.to_thread.current_default_thread_limiter()
    total = limiter.total_tokens
    limiter.total_tokens = 1
    done = anyio.Event()

    async def hold_the_only_thread(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with limiter:
            task_status.started()
            await done.wait()

    try:
        async with (
            auth,
            httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app), base_url="http://app"
            ) as client,
            anyio.create_task_group() as tasks,
        ):
            await tasks.start(hold_the_only_thread)
            try:
                with anyio.fail_after(5):
                    answers = [await client.get("/url") for _ in range(20)]
            finally:
                done.set()
    finally:
        limiter.total_tokens = total
    assert {answer.status_code for answer in answers} == {200}
    assert answers[0].json() == "https://contoso.service.signalr.net/client/?hub=chat"


def test_bad_input_is_a_4xx_never_a_500(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    with TestClient(starlette_app(auth, []), raise_server_exceptions=False) as client:
        empty = client.post("/empty/negotiate")
        huge = client.post("/huge/negotiate")
        garbage = client.post(
            "/chat/negotiate?negotiateVersion=abc&user=x", content=b"\xff{not json"
        )
    assert (empty.status_code, empty.json()["code"]) == (400, "invalid_request")
    assert (huge.status_code, huge.json()["code"]) == (413, "token_too_long")
    assert garbage.status_code == 200  # the query and body are not ours to judge


def test_negotiation_answers_503_until_a_key_arrives(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    principal = emulator.add_principal("waiting")
    auth = auth_for(emulator, emulator_url, principal, startup_timeout=0.2)
    with (
        caplog.at_level(logging.WARNING, "signalr_asgi_auth"),
        TestClient(starlette_app(auth, [])) as client,
    ):
        # The 403 may not be back within the startup timeout on a busy machine.
        for _ in range(500):
            if auth.health()["access_key"]["consecutive_failures"]:
                break
            anyio.run(anyio.sleep, 0.02)
        refused = client.post("/chat/negotiate")
        emulator.assign(principal, "SignalR App Server")
        for _ in range(200):
            accepted = client.post("/chat/negotiate")
            if accepted.status_code == 200:
                break
            anyio.run(anyio.sleep, 0.02)
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["code"] == "not_ready"
    assert "SignalR App Server" in refused.json()["error"]
    assert principal.object_id in refused.json()["error"]
    assert accepted.status_code == 200
    assert any("Starting without a SignalR access key" in r.getMessage() for r in caplog.records)


def test_a_server_without_lifespan_starts_on_the_first_request(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    with (
        caplog.at_level(logging.WARNING, "signalr_asgi_auth"),
        serve_in_thread(starlette_app(auth, [])) as app_url,  # uvicorn, lifespan off
    ):
        first = httpx2.post(f"{app_url}/chat/negotiate?user=erin", timeout=10)
        second = httpx2.post(f"{app_url}/chat/negotiate?user=frank", timeout=10)
    assert first.status_code == second.status_code == 200
    assert (
        verify_client_token(first.json()["accessToken"], emulator, audience=AUDIENCE)["nameid"]
        == "erin"
    )
    assert emulator.log.count("signalr.access_key") == 1
    assert any("before any lifespan startup" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_a_configuration_error_fails_the_startup(
    emulator: Emulator, emulator_url: str
) -> None:
    connection_string = (
        f"Endpoint={emulator_url};AuthType=azure.app;ClientId=00000000-0000-0000-0000-000000000001;"
        "TenantId=00000000-0000-0000-0000-000000000002;ClientCert=/nonexistent/cert.pem;"
    )
    auth = SignalRAuth.from_connection_string(connection_string, **FAST)
    reached: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["type"])

    middleware = SignalRAuthMiddleware(app, auth=auth)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert [message["type"] for message in sent] == ["lifespan.startup.failed"]
    assert "credential" in sent[0]["message"]
    assert "azure.app" in sent[0]["message"]
    assert reached == []  # the app's own startup never ran


def test_health_shows_no_secrets(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    with TestClient(starlette_app(auth, [])) as client:
        body = client.get("/health").text
        negotiated = client.post("/chat/negotiate").json()
    report = json.loads(body)
    assert report["status"] == "ok"
    assert report["access_key"]["key_id"] == emulator.issued_keys[0].key_id
    assert report["entra_token"]["credential"] == "ManagedIdentityCredential"
    assert emulator.issued_keys[0].access_key not in body
    assert negotiated["accessToken"] not in body
    assert app_service_env["IDENTITY_HEADER"] not in body


def test_without_lifespan_a_configuration_error_becomes_a_503_not_a_500(
    emulator: Emulator, emulator_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    connection_string = (
        f"Endpoint={emulator_url};AuthType=azure.app;ClientId=00000000-0000-0000-0000-000000000001;"
        "TenantId=00000000-0000-0000-0000-000000000002;ClientCert=/nonexistent/cert.pem;"
    )
    auth = SignalRAuth.from_connection_string(connection_string, startup_timeout=0.5, **FAST)
    with (
        caplog.at_level(logging.WARNING, "signalr_asgi_auth"),
        serve_in_thread(starlette_app(auth, [])) as app_url,
    ):
        # The first answer may come before the first attempt has failed (startup_timeout is short
        # and a loaded machine slow); every answer is a 503, and once it failed, it names why.
        answers = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            answers.append(httpx2.post(f"{app_url}/chat/negotiate", timeout=10))
            if "azure.app" in answers[-1].json()["error"]:
                break
            time.sleep(0.1)
    assert [a.status_code for a in answers] == [503] * len(answers)
    assert "azure.app" in answers[-1].json()["error"]
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers)
    assert any(r.levelname == "ERROR" and "configuration" in r.getMessage() for r in caplog.records)
