"""The fault matrix: every way the identity endpoint and the access-key endpoint can fail, through a
real Starlette app whose lifespan the middleware owns, on the real azure-identity.

For each fault: (a) negotiation keeps answering 200 with the last good key while refreshes fail;
(b) once that key's usable period is over it answers 503 with ``Retry-After`` and a message naming
the cause; (c) once the fault clears it answers 200 again within one backoff step (plus what
azure-identity itself adds, see ``Fault.throttle``), without a restart. Afterwards no background
task is left and nothing was logged at ERROR or with a traceback.

Intervals are short: a key is fetched every 0.15 s and signs for 1 s; retries wait 0.05-0.2 s. The
Entra tokens live 3 s, so every key refresh fetches a token first (the keeper refreshes a token
with less than 30 s left) and an identity fault hits the very next refresh.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from azure.identity import ManagedIdentityCredential
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from signalr_asgi_auth import SignalRAuth, SignalRAuthMiddleware, negotiate_endpoint
from signalr_asgi_auth.emulator import Assignment, Emulator, Principal

from .faults import closed_port_url, keeper_tasks, problems_in_logs, running_app, running_task_ids
from .support import verify_client_token

pytestmark = pytest.mark.anyio

AUDIENCE = "http://127.0.0.1/client/?hub=chat"
INTERVAL = 0.15  # key_refresh_interval
USABLE = 1.0  # key_lifetime - key_expiry_margin: room to see a failed refresh before expiry
RETRY_MAX = 0.2
TIMEOUT = 0.15  # request_timeout / credential_timeout where a slow answer is the fault
SLACK = 1.0  # the recovering requests themselves, a worker thread, polling, a busy machine
POLL = 0.02

TIMING: dict[str, Any] = {
    "key_refresh_interval": INTERVAL,
    "key_lifetime": USABLE + 0.1,
    "key_expiry_margin": 0.1,
    "retry_initial_delay": 0.05,
    "retry_max_delay": RETRY_MAX,
    "request_timeout": 2.0,
    "credential_timeout": 2.0,
    "startup_timeout": 5.0,
}


@dataclass
class Scene:
    """What a fault can act on."""

    emulator: Emulator
    url: str
    principal: Principal
    assignment: Assignment
    monkeypatch: pytest.MonkeyPatch


@dataclass(frozen=True)
class Fault:
    """``start`` breaks something and returns the function that repairs it; ``cause`` is a regex
    the 503's message must match. ``throttle`` is what azure-identity adds to recovery on its own:
    its sync credential replays a 429/5xx answer without asking again for ``Retry-After`` seconds,
    or 5 s without one (MSAL's ``_ThrottledHttpClient``). ``hang`` is how long an attempt that
    started before the repair may still take."""

    name: str
    start: Callable[[Scene], Callable[[], None]]
    cause: str
    options: dict[str, Any] = field(default_factory=dict)
    throttle: float = 0.0
    hang: float = 0.0


def _inject(route: str, **how: Any) -> Callable[[Scene], Callable[[], None]]:
    def start(scene: Scene) -> Callable[[], None]:
        fault = scene.emulator.inject(route, **how)
        return lambda: scene.emulator.remove_fault(fault)

    return start


def _identity_error(status: int, message: str, **how: Any) -> Callable[[Scene], Callable[[], None]]:
    body = json.dumps({"statusCode": status, "message": message})
    return _inject("identity.app_service", status=status, body=body, **how)


def _identity_down(scene: Scene) -> Callable[[], None]:
    # The sync credential reads IDENTITY_ENDPOINT on every request: point it where nothing listens.
    working = scene.emulator.app_service_env(scene.url)["IDENTITY_ENDPOINT"]
    scene.monkeypatch.setenv("IDENTITY_ENDPOINT", closed_port_url("/msi/token"))
    return lambda: scene.monkeypatch.setenv("IDENTITY_ENDPOINT", working)


def _wrong_audience(scene: Scene) -> Callable[[], None]:
    # A real token from the tenant, for another resource: azure-identity returns it as it is.
    token = scene.emulator.issue_entra_token(scene.principal, audience="https://wrong", lifetime=60)
    body = {
        "access_token": token,
        "expires_on": str(int(scene.emulator.clock.now()) + 60),
        "resource": "https://signalr.azure.com",
        "token_type": "Bearer",
        "client_id": scene.principal.client_id,
    }
    return _inject("identity.app_service", body=json.dumps(body))(scene)


def _role_removed(scene: Scene) -> Callable[[], None]:
    # A real 403: the emulator checks the role assignment on every request.
    scene.emulator.unassign(scene.assignment)

    def restore() -> None:
        scene.assignment = scene.emulator.assign(scene.principal, "SignalR App Server")

    return restore


FAULTS = [
    # -- the managed-identity endpoint (App Service flavour) ---------------------------------
    # The causes below are ours up to the exception's name; what azure-core or the operating
    # system says after it is theirs, worded differently across versions and platforms.
    Fault(
        "identity down",
        _identity_down,
        r"failed while getting a Microsoft Entra token .*\(ServiceRequestError\): \S",
    ),
    Fault(
        "identity 500",
        _identity_error(500, "The identity service failed (injected)."),
        r"could not get a Microsoft Entra token.*identity service failed \(injected\)",
        throttle=5.0,
    ),
    Fault(
        "identity 429 with Retry-After",
        _identity_error(429, "Too many token requests (injected).", headers={"Retry-After": "1"}),
        r"could not get a Microsoft Entra token.*Too many token requests \(injected\)",
        throttle=1.0,
    ),
    Fault(
        "identity slow",
        _inject("identity.app_service", delay=1.0),
        rf"did not return a Microsoft Entra token .* within {TIMEOUT:g} s",
        options={"credential_timeout": TIMEOUT},
        hang=TIMEOUT,
    ),
    Fault(
        "identity malformed JSON",
        _inject("identity.app_service", body='{"access_token": '),
        r"failed while getting a Microsoft Entra token .*\(DecodeError\): \S",
    ),
    Fault(
        "identity token for the wrong audience",
        _wrong_audience,
        r"rejected the Microsoft Entra token .*\(401 Unauthorized\): The token's audience",
    ),
    # -- the access-key endpoint -------------------------------------------------------------
    Fault(
        "access key 401",
        _inject("signalr.access_key", status=401),
        r"rejected the Microsoft Entra token while trying to get a temporary access key "
        r"\(401 Unauthorized\)",
    ),
    Fault(
        "access key 403 (role removed)",
        _role_removed,
        r"refused to get a temporary access key \(403 Forbidden\) for principal .*"
        r"'SignalR App Server'",
    ),
    Fault(
        "access key 404",
        _inject("signalr.access_key", status=404),
        r"has no API at /api/v1/auth/accessKey \(404 Not Found\)",
    ),
    Fault(
        "access key 500",
        _inject("signalr.access_key", status=500),
        r"answered 500 Internal Server Error while trying to get a temporary access key",
    ),
    Fault(
        "access key 429 with Retry-After",
        _inject("signalr.access_key", status=429, headers={"Retry-After": "1"}),
        r"is throttling requests to get a temporary access key \(429 Too Many Requests\)",
        throttle=1.0,  # our own backoff honours Retry-After
    ),
    Fault(
        "access key timeout",
        _inject("signalr.access_key", delay=1.0),
        r"did not answer within [\d.]+ s while trying to get a temporary access key",
        options={"request_timeout": TIMEOUT},
        hang=TIMEOUT,
    ),
    Fault(
        "access key malformed body",
        _inject("signalr.access_key", body="<html>Bad gateway</html>"),
        r"answered the access-key request with a reply that is not a JSON object",
    ),
    Fault(
        "access key without KeyId",
        _inject("signalr.access_key", body=json.dumps({"AccessKey": "k" * 43})),
        r"with a reply that has no KeyId string",
    ),
    Fault(
        "access key without AccessKey",
        _inject("signalr.access_key", body=json.dumps({"KeyId": "key-1"})),
        r"with a reply that has no AccessKey string",
    ),
]


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(token_lifetime=3)


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def _negotiate(client: httpx2.AsyncClient) -> httpx2.Response:
    return await client.post("/chat/negotiate?negotiateVersion=1&user=alice", content=b"")


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
async def test_fault(
    fault: Fault,
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    principal = emulator.add_principal("app-server")
    scene = Scene(
        emulator,
        emulator_url,
        principal,
        emulator.assign(principal, "SignalR App Server"),
        monkeypatch,
    )
    # retry_total=0: azure-core's own retries (3 on a 5xx, backoff 0.8 s) would hide the fault.
    credential = ManagedIdentityCredential(client_id=principal.client_id, retry_total=0)
    auth = SignalRAuth(endpoint=emulator_url, credential=credential, **{**TIMING, **fault.options})
    app = Starlette(
        routes=[
            Route(
                "/chat/negotiate",
                negotiate_endpoint("chat", user_id=lambda request: request.query_params["user"]),
            )
        ],
        middleware=[Middleware(SignalRAuthMiddleware, auth=auth)],
    )
    tasks_before = running_task_ids()
    try:
        async with running_app(app) as client:
            assert keeper_tasks() == [
                "signalr_asgi_auth.AccessKeyKeeper",
                "signalr_asgi_auth.EntraTokenKeeper",
            ]
            first = await _negotiate(client)
            assert first.status_code == 200, first.text

            repair = fault.start(scene)
            # (a) The last good key keeps signing while refreshes fail...
            served_during_fault = 0
            token = first.json()["accessToken"]
            with anyio.fail_after(USABLE + INTERVAL + 2 + SLACK):
                while (reply := await _negotiate(client)).status_code == 200:
                    token = reply.json()["accessToken"]
                    verify_client_token(token, emulator, audience=AUDIENCE)
                    if auth.health()["access_key"]["consecutive_failures"]:
                        served_during_fault += 1
                    await anyio.sleep(POLL)
            refused_at = emulator.clock.now()
            assert served_during_fault > 0, "no negotiation was answered after a failed refresh"
            # ...until its usable period is over, counted from when the service issued it (not
            # from the fault: when the last refresh before it ran depends on the machine's load).
            # The library starts counting when the key arrives, a few milliseconds later.
            last_key = next(key for key in emulator.issued_keys if key.key_id == _kid(token))
            over = refused_at - (last_key.issued_at + USABLE)
            assert -0.1 <= over <= SLACK, f"refused {over:+.2f} s after the key's usable period"

            # (b) Then 503, with Retry-After and the cause.
            assert reply.status_code == 503, reply.text
            # The next attempt is at most max(retry_max_delay, the service's Retry-After) away.
            assert reply.headers["retry-after"] == "1"
            body = reply.json()
            assert body["code"] == "not_ready"
            assert re.search(
                r"The SignalR access key expired at .* and refreshing it has failed since "
                r"\S+: ",
                body["error"],
            ), body["error"]
            assert re.search(fault.cause, body["error"]), body["error"]
            assert auth.health()["status"] == "unavailable"

            # (c) Repaired: back within one backoff step, plus azure-identity's own throttle.
            repair()
            repaired_at = anyio.current_time()
            bound = fault.throttle + fault.hang + RETRY_MAX + SLACK
            with anyio.fail_after(bound + 5):  # fail slowly enough to report the time taken
                while (reply := await _negotiate(client)).status_code != 200:
                    assert reply.status_code == 503, reply.text
                    await anyio.sleep(POLL)
            recovered_in = anyio.current_time() - repaired_at
            assert recovered_in <= bound, f"recovered in {recovered_in:.2f} s, bound {bound:.2f} s"
            verify_client_token(reply.json()["accessToken"], emulator, audience=AUDIENCE)
            assert auth.health()["status"] == "ok"
    finally:
        await anyio.to_thread.run_sync(credential.close)

    # No task leaks: the keepers are gone, and so is every task started since.
    assert keeper_tasks() == []
    assert running_task_ids() <= tasks_before
    assert auth.health()["status"] == "stopped"
    # No unhandled-exception logs; the library's warnings name the cause instead.
    assert problems_in_logs(caplog.records) == []
    ours = [r for r in caplog.records if r.name.startswith("signalr_asgi_auth")]
    assert ours, "the failed refreshes were not logged"
    assert {r.levelno for r in ours} == {logging.WARNING}
    assert any(re.search(fault.cause, r.getMessage()) for r in ours)
