"""The request log: what it records, and what it must never record."""

from __future__ import annotations

import time

import httpx2
from azure.identity import ManagedIdentityCredential

from signalr_asgi_auth.emulator import Emulator

from .helpers import SIGNALR_SCOPE, TIMEOUT, bearer


def test_secrets_never_reach_the_log(emulator: Emulator, app_service_env: dict[str, str]) -> None:
    url = app_service_env["IDENTITY_ENDPOINT"].removesuffix("/msi/token")
    app_server = emulator.add_principal("app-server")
    emulator.assign(app_server, "SignalR App Server")
    token = ManagedIdentityCredential(client_id=app_server.client_id).get_token(SIGNALR_SCOPE)
    key = httpx2.get(
        f"{url}/api/v1/auth/accessKey", headers=bearer(token.token), timeout=TIMEOUT
    ).json()["AccessKey"]
    httpx2.get(
        f"{url}/api/health",
        params={"access_token": token.token, "hub": "chat"},
        headers={"Cookie": f"session={token.token}"},
        timeout=TIMEOUT,
    )

    identity, access_key, probe = list(emulator.log)
    dump = repr(list(emulator.log))
    for secret in (emulator.identity_header, token.token, key):
        assert secret not in dump
    assert identity.headers["x-identity-header"] == "[redacted]"
    assert identity.headers["metadata"] == "true"  # ordinary headers stay readable
    assert access_key.headers["authorization"] == "[redacted]"
    assert probe.query == {"access_token": "[redacted]", "hub": "chat"}
    assert probe.headers["cookie"] == "[redacted]"


def test_entries_record_route_request_and_outcome(emulator: Emulator, emulator_url: str) -> None:
    emulator.clock.advance(1000)
    httpx2.get(f"{emulator_url}/api/health", timeout=TIMEOUT)
    httpx2.head(f"{emulator_url}/api/health", timeout=TIMEOUT)
    httpx2.get(f"{emulator_url}/api/v1/auth/accessKey", timeout=TIMEOUT)

    log = emulator.log
    assert len(log) == 3
    assert log.count("signalr.health") == 2
    assert log.count("identity.imds") == 0
    assert [entry.method for entry in log.entries("signalr.health")] == ["GET", "HEAD"]
    last = log[-1]
    assert (last.route, last.path, last.status, last.principal_oid) == (
        "signalr.access_key",
        "/api/v1/auth/accessKey",
        401,
        None,
    )
    assert log[:2] == log.entries("signalr.health")
    assert last.at >= time.time() + 999


def test_clear_empties_the_log(emulator: Emulator, emulator_url: str) -> None:
    httpx2.get(f"{emulator_url}/api/health", timeout=TIMEOUT)
    assert len(emulator.log) == 1

    emulator.log.clear()

    assert len(emulator.log) == 0
    assert emulator.log.count("signalr.health") == 0
    assert list(emulator.log) == []


def test_the_log_keeps_the_most_recent_ten_thousand_requests(emulator: Emulator) -> None:
    for n in range(10_005):  # a long-running emulator, or a flood of negotiations
        emulator.log.record(
            route="client.negotiate",
            method="POST",
            path=f"/{n}",
            query=[],
            headers=[],
            status=200,
            principal_oid=None,
            at=float(n),
        )
    assert len(emulator.log) == 10_000
    assert emulator.log[0].path == "/5"
    assert [entry.path for entry in emulator.log[-2:]] == ["/10003", "/10004"]
