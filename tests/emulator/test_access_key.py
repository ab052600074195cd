"""``GET /api/v1/auth/accessKey``: Entra token checks, role assignments at every scope, issued keys."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from azure.identity import ManagedIdentityCredential

from signalr_asgi_auth.emulator import Emulator, Principal
from signalr_asgi_auth.emulator._roles import Action, ResourceId

from .helpers import SIGNALR_SCOPE, TIMEOUT, bearer


def fetch_key(url: str, headers: dict[str, str]) -> httpx2.Response:
    return httpx2.get(f"{url}/api/v1/auth/accessKey", headers=headers, timeout=TIMEOUT)


def scope_of(emulator: Emulator, level: str) -> ResourceId:
    resource = emulator.resource_id
    if level == "resource group":
        return ResourceId(resource.subscription, resource.resource_group)
    if level == "subscription":
        return ResourceId(resource.subscription)
    return resource


@pytest.fixture
def app_server(emulator: Emulator) -> Principal:
    return emulator.add_principal("app-server")


@pytest.mark.parametrize("role", ["SignalR App Server", "SignalR Service Owner"])
@pytest.mark.parametrize("level", ["resource", "resource group", "subscription"])
def test_granting_roles_get_a_key_at_every_scope(
    emulator: Emulator, emulator_url: str, app_server: Principal, role: str, level: str
) -> None:
    emulator.assign(app_server, role, scope_of(emulator, level))
    token = emulator.issue_entra_token(app_server)

    response = fetch_key(emulator_url, bearer(token))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"KeyId", "AccessKey"}
    assert len(body["AccessKey"]) >= 43
    [key] = emulator.issued_keys
    assert (key.key_id, key.access_key, key.principal_oid) == (
        body["KeyId"],
        body["AccessKey"],
        app_server.object_id,
    )
    assert key.expires_at - key.issued_at == 90 * 60
    assert emulator.log.entries("signalr.access_key")[0].principal_oid == app_server.object_id


@pytest.mark.parametrize(
    "role", ["SignalR REST API Owner", "SignalR REST API Reader", "Owner", "Reader"]
)
def test_roles_without_the_access_key_action_are_forbidden(
    emulator: Emulator, emulator_url: str, app_server: Principal, role: str
) -> None:
    emulator.assign(app_server, role)

    response = fetch_key(emulator_url, bearer(emulator.issue_entra_token(app_server)))

    assert response.status_code == 403
    message = response.json()["message"]
    assert app_server.object_id in message
    assert Action.ACCESS_KEY in message
    assert "SignalR App Server" in message
    assert emulator.issued_keys == []


@pytest.mark.parametrize(
    "scope",
    [
        "/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg-other",
        "/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg-signalr"
        "/providers/Microsoft.SignalRService/SignalR/another-signalr",
        "/subscriptions/00000000-0000-0000-0000-0000000000b2",
    ],
    ids=["other-resource-group", "other-resource", "other-subscription"],
)
def test_assignments_elsewhere_do_not_count(
    emulator: Emulator, emulator_url: str, app_server: Principal, scope: str
) -> None:
    emulator.assign(app_server, "SignalR App Server", scope)

    response = fetch_key(emulator_url, bearer(emulator.issue_entra_token(app_server)))

    assert response.status_code == 403


def test_unassigning_takes_the_permission_away(
    emulator: Emulator, emulator_url: str, app_server: Principal
) -> None:
    assignment = emulator.assign(app_server, "SignalR App Server")
    token = emulator.issue_entra_token(app_server)
    assert fetch_key(emulator_url, bearer(token)).status_code == 200

    emulator.unassign(assignment)

    assert fetch_key(emulator_url, bearer(token)).status_code == 403


def test_audience_may_carry_a_trailing_slash(
    emulator: Emulator, emulator_url: str, app_server: Principal
) -> None:
    emulator.assign(app_server, "SignalR App Server")
    token = emulator.issue_entra_token(app_server, audience="https://signalr.azure.com/")

    assert fetch_key(emulator_url, bearer(token)).status_code == 200


def bad_headers(case: str, emulator: Emulator, who: Principal) -> dict[str, str]:
    if case == "missing":
        return {}
    if case == "basic":
        return {"Authorization": "Basic dXNlcjpwYXNz"}
    if case == "garbage":
        return bearer("garbage")
    if case == "wrong-audience":
        return bearer(emulator.issue_entra_token(who, audience="https://management.azure.com"))
    if case == "expired":
        return bearer(emulator.issue_entra_token(who, lifetime=-60))
    stranger = Emulator()
    return bearer(stranger.issue_entra_token(stranger.system_identity))


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "no 'Authorization: Bearer"),
        ("basic", "no 'Authorization: Bearer"),
        ("garbage", "not a well-formed JWT"),
        ("wrong-audience", "audience"),
        ("expired", "expired"),
        ("foreign-key", "signing key"),
    ],
)
def test_bad_tokens_are_unauthorized(
    emulator: Emulator, emulator_url: str, app_server: Principal, case: str, reason: str
) -> None:
    emulator.assign(app_server, "SignalR App Server")

    response = fetch_key(emulator_url, bad_headers(case, emulator, app_server))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["code"] == "Unauthorized"
    assert reason in body["message"]
    assert emulator.issued_keys == []


def test_token_times_follow_the_emulator_clock(
    emulator: Emulator, emulator_url: str, app_server: Principal
) -> None:
    emulator.assign(app_server, "SignalR App Server")
    token = emulator.issue_entra_token(app_server, lifetime=3600)

    emulator.clock.advance(3600)
    expired = fetch_key(emulator_url, bearer(token))
    emulator.clock.advance(-2 * 3600)
    not_yet_valid = fetch_key(emulator_url, bearer(token))

    assert expired.status_code == not_yet_valid.status_code == 401
    assert "expired" in expired.json()["message"]
    assert "not valid before" in not_yet_valid.json()["message"]


def test_keys_expire_after_the_key_lifetime(
    emulator: Emulator, emulator_url: str, app_server: Principal
) -> None:
    emulator.assign(app_server, "SignalR App Server")
    token = emulator.issue_entra_token(app_server)
    first = fetch_key(emulator_url, bearer(token)).json()
    emulator.clock.advance(60 * 60)
    second = fetch_key(emulator_url, bearer(token)).json()

    assert [key.key_id for key in emulator.valid_keys()] == [first["KeyId"], second["KeyId"]]
    emulator.clock.advance(31 * 60)
    assert [key.key_id for key in emulator.valid_keys()] == [second["KeyId"]]
    old = emulator.find_key(first["KeyId"])
    assert old is not None
    assert not old.is_valid_at(emulator.clock.now())
    assert emulator.find_key("no-such-key") is None


@pytest.mark.anyio
async def test_real_credential_token_fetches_a_key(
    emulator: Emulator, app_service_env: dict[str, str], emulator_url: str, app_server: Principal
) -> None:
    emulator.assign(app_server, "SignalR App Server")
    credential = ManagedIdentityCredential(client_id=app_server.client_id)
    # The sync credential in a worker thread, as the library's keeper runs it.
    token = await anyio.to_thread.run_sync(credential.get_token, SIGNALR_SCOPE)

    async with httpx2.AsyncClient(timeout=TIMEOUT) as client:
        url = f"{emulator_url}/api/v1/auth/accessKey"
        response = await client.get(url, headers=bearer(token.token))

    assert response.status_code == 200
    assert emulator.log.count("identity.app_service") == 1
    assert [key.principal_oid for key in emulator.issued_keys] == [app_server.object_id]
