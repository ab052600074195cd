"""``POST /api/hubs/{hub}/:generateToken``: who may call it, what it checks, and that the client
endpoint accepts the tokens it issues."""

from __future__ import annotations

import time

import httpx2
import jwt
import pytest

from signalr_asgi_auth.emulator import Emulator, Principal
from signalr_asgi_auth.emulator._roles import Action

from .helpers import TIMEOUT, bearer, service_token_claims

API_VERSION = "2023-07-01"


def principal_with(emulator: Emulator, role: str) -> Principal:
    principal = emulator.add_principal(role.lower().replace(" ", "-"))
    emulator.assign(principal, role)
    return principal


def generate(
    url: str,
    headers: dict[str, str],
    hub: str = "chat",
    *,
    method: str = "POST",
    **params: str,
) -> httpx2.Response:
    query = {"api-version": API_VERSION, **params}
    return httpx2.request(
        method,
        f"{url}/api/hubs/{hub}/:generateToken",
        params=query,
        headers=headers,
        timeout=TIMEOUT,
    )


def owner_headers(emulator: Emulator, role: str = "SignalR REST API Owner") -> dict[str, str]:
    return bearer(emulator.issue_entra_token(principal_with(emulator, role)))


def service_negotiate(url: str, token: str, hub: str = "chat") -> httpx2.Response:
    return httpx2.post(
        f"{url}/client/negotiate",
        params={"hub": hub, "negotiateVersion": "1"},
        headers=bearer(token),
        timeout=TIMEOUT,
    )


@pytest.mark.parametrize("role", ["SignalR REST API Owner", "SignalR Service Owner"])
def test_roles_with_the_client_token_action_get_a_token_the_client_endpoint_accepts(
    emulator: Emulator, emulator_url: str, role: str
) -> None:
    principal = principal_with(emulator, role)
    headers = bearer(emulator.issue_entra_token(principal))

    response = generate(emulator_url, headers, "Chat", userId="alice", minutesToExpire="5")

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert set(response.json()) == {"token"}
    token = response.json()["token"]
    claims = service_token_claims(token, emulator, "http://127.0.0.1/client/?hub=chat")
    assert claims["asrs.s.uid"] == claims["nameid"] == "alice"
    assert claims["exp"] - claims["iat"] == 5 * 60
    assert abs(claims["iat"] - time.time()) < 5
    negotiated = service_negotiate(emulator_url, token)
    assert negotiated.status_code == 200, negotiated.text
    assert negotiated.json()["connectionToken"]
    [entry] = emulator.log.entries("signalr.generate_token")
    assert (entry.status, entry.principal_oid) == (200, principal.object_id)
    assert entry.query["userId"] == "alice"


def test_defaults_without_a_user_and_an_hour(emulator: Emulator, emulator_url: str) -> None:
    response = generate(emulator_url, owner_headers(emulator))

    claims = service_token_claims(
        response.json()["token"], emulator, "http://127.0.0.1/client/?hub=chat"
    )
    assert claims["exp"] - claims["iat"] == 60 * 60
    assert "nameid" not in claims
    assert "asrs.s.uid" not in claims


def test_the_token_is_for_that_hub_only(emulator: Emulator, emulator_url: str) -> None:
    token = generate(emulator_url, owner_headers(emulator), "chat").json()["token"]

    refused = service_negotiate(emulator_url, token, hub="other")

    assert refused.status_code == 401
    assert "audience" in refused.text


def test_the_application_prefixes_the_hub(emulator: Emulator, emulator_url: str) -> None:
    response = generate(emulator_url, owner_headers(emulator), "Chat", application="Shop")

    token = response.json()["token"]
    service_token_claims(token, emulator, "http://127.0.0.1/client/?hub=shop_chat")
    assert service_negotiate(emulator_url, token, hub="shop_chat").status_code == 200


@pytest.mark.parametrize("version", ["2022-11-01", "2023-07-01", "2024-01-01", "2024-12-01"])
def test_the_api_versions_azure_documents_work(
    emulator: Emulator, emulator_url: str, version: str
) -> None:
    # 2022-11-01 is what Azure's client-negotiation docs give; 2024-01-01 its swagger example.
    response = generate(emulator_url, owner_headers(emulator), **{"api-version": version})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "role", ["SignalR App Server", "SignalR REST API Reader", "Owner", "Reader"]
)
def test_roles_without_the_action_are_forbidden(
    emulator: Emulator, emulator_url: str, role: str
) -> None:
    principal = principal_with(emulator, role)

    response = generate(emulator_url, bearer(emulator.issue_entra_token(principal)))

    assert response.status_code == 403
    message = response.json()["message"]
    assert principal.object_id in message
    assert Action.CLIENT_TOKEN in message
    assert "SignalR REST API Owner or SignalR Service Owner" in message
    [entry] = emulator.log.entries("signalr.generate_token")
    assert entry.status == 403


@pytest.mark.parametrize("case", ["missing", "garbage", "expired", "wrong audience", "key"])
def test_bad_bearer_tokens_get_401(emulator: Emulator, emulator_url: str, case: str) -> None:
    principal = principal_with(emulator, "SignalR REST API Owner")
    headers = {
        "missing": {},
        "garbage": bearer("not.a.token"),
        "expired": bearer(emulator.issue_entra_token(principal, lifetime=-600)),
        "wrong audience": bearer(emulator.issue_entra_token(principal, audience="https://x")),
        "key": bearer(jwt.encode({"aud": "x"}, emulator.access_keys[0], algorithm="HS256")),
    }[case]

    response = generate(emulator_url, headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "abc", "", "99999999999", "٣"])
def test_bad_minutes_to_expire_get_400(emulator: Emulator, emulator_url: str, value: str) -> None:
    response = generate(emulator_url, owner_headers(emulator), minutesToExpire=value)

    assert response.status_code == 400
    assert response.json()["code"] == "Error.BadRequest"
    assert "minutesToExpire" in response.json()["message"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"api-version": ""}, "api-version query parameter is required"),
        ({"api-version": "2022-06-01"}, "use 2022-11-01 or later"),
        ({"api-version": "latest"}, "use 2022-11-01 or later"),
        ({"application": "9lives"}, "Invalid application"),
        ({"userId": "a\nb"}, "userId must be"),
        ({"userId": ""}, "userId must be"),
    ],
)
def test_other_bad_input_gets_400(
    emulator: Emulator, emulator_url: str, params: dict[str, str], words: str
) -> None:
    response = generate(emulator_url, owner_headers(emulator), **params)

    assert response.status_code == 400
    assert words in response.json()["message"]


def test_a_bad_hub_name_gets_400(emulator: Emulator, emulator_url: str) -> None:
    response = generate(emulator_url, owner_headers(emulator), "1chat")

    assert response.status_code == 400
    assert "Invalid hub name" in response.json()["message"]


def test_only_post(emulator: Emulator, emulator_url: str) -> None:
    response = generate(emulator_url, owner_headers(emulator), method="GET")

    assert response.status_code == 405


def test_faults_apply_to_the_route(emulator: Emulator, emulator_url: str) -> None:
    emulator.inject("signalr.generate_token", status=503, times=1)
    headers = owner_headers(emulator)

    assert generate(emulator_url, headers).status_code == 503
    assert generate(emulator_url, headers).status_code == 200
    assert [entry.status for entry in emulator.log.entries("signalr.generate_token")] == [503, 200]


def test_the_log_redacts_the_bearer(emulator: Emulator, emulator_url: str) -> None:
    generate(emulator_url, owner_headers(emulator))

    [entry] = emulator.log.entries("signalr.generate_token")
    assert entry.headers["authorization"] == "[redacted]"
