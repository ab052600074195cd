"""The identity endpoint and token service, driven by the real (sync) azure-identity."""

from __future__ import annotations

import uuid

import httpx2
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ManagedIdentityCredential

from signalr_asgi_auth.emulator import Emulator, EntraTokenError

from .helpers import SIGNALR_RESOURCE, SIGNALR_SCOPE, TIMEOUT, unverified_claims


@pytest.fixture(
    params=[("app_service_env", "identity.app_service"), ("imds_env", "identity.imds")],
    ids=["app_service", "imds"],
)
def identity_route(request: pytest.FixtureRequest) -> str:
    """Points azure-identity at one flavour of the emulator's identity endpoint; its route name."""
    env_fixture, route = request.param
    request.getfixturevalue(env_fixture)
    name: str = route
    return name


def test_system_identity_gets_a_signalr_token(emulator: Emulator, identity_route: str) -> None:
    info = ManagedIdentityCredential().get_token_info(SIGNALR_SCOPE)

    claims = emulator.verify_entra_token(info.token, audiences=[SIGNALR_RESOURCE])
    system = emulator.system_identity
    assert (claims["oid"], claims["sub"], claims["appid"]) == (
        system.object_id,
        system.object_id,
        system.client_id,
    )
    assert claims["tid"] == emulator.tenant_id
    assert claims["idtyp"] == "app"
    assert claims["exp"] == claims["iat"] + 24 * 3600
    # MSAL counts the IMDS flavour's expiry from expires_in on its own clock, so a second may
    # have passed since the emulator's iat; App Service's expires_on is handed through as it is.
    late = 1 if identity_route == "identity.imds" else 0
    assert claims["exp"] <= info.expires_on <= claims["exp"] + late
    [entry] = emulator.log.entries(identity_route)
    assert entry.status == 200
    assert entry.principal_oid == system.object_id
    assert entry.query["resource"] == SIGNALR_RESOURCE
    assert "client_id" not in entry.query


def test_user_assigned_identity_is_chosen_by_client_id(
    emulator: Emulator, identity_route: str
) -> None:
    app_server = emulator.add_principal("app-server")

    credential = ManagedIdentityCredential(client_id=app_server.client_id)
    claims = unverified_claims(credential.get_token(SIGNALR_SCOPE).token)

    assert (claims["oid"], claims["appid"]) == (app_server.object_id, app_server.client_id)
    [entry] = emulator.log.entries(identity_route)
    assert entry.query["client_id"] == app_server.client_id
    assert entry.principal_oid == app_server.object_id


def test_unknown_client_id_is_refused(emulator: Emulator, identity_route: str) -> None:
    credential = ManagedIdentityCredential(client_id=str(uuid.uuid4()), retry_total=0)

    with pytest.raises(ClientAuthenticationError):
        credential.get_token(SIGNALR_SCOPE)

    assert [entry.status for entry in emulator.log.entries(identity_route)] == [400]


def test_app_service_needs_the_identity_header(
    emulator: Emulator, app_service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret")

    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential(retry_total=0).get_token(SIGNALR_SCOPE)

    assert [entry.status for entry in emulator.log.entries("identity.app_service")] == [401]


def test_app_service_reply_has_exactly_the_documented_fields(
    emulator: Emulator, emulator_url: str
) -> None:
    app_server = emulator.add_principal("app-server")
    response = httpx2.get(
        f"{emulator_url}/msi/token",
        params={
            "api-version": "2019-08-01",
            "resource": SIGNALR_RESOURCE,
            "client_id": app_server.client_id,
        },
        headers={"X-IDENTITY-HEADER": emulator.identity_header},
        timeout=TIMEOUT,
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["expires_on"] == str(unverified_claims(body["access_token"])["exp"])
    assert (body["resource"], body["token_type"], body["client_id"]) == (
        SIGNALR_RESOURCE,
        "Bearer",
        app_server.client_id,
    )


@pytest.mark.parametrize(
    ("query", "headers", "status", "message"),
    [
        ({"api-version": "2019-08-01", "resource": SIGNALR_RESOURCE}, {}, 401, "X-IDENTITY-HEADER"),
        ({"api-version": "2017-09-01", "resource": SIGNALR_RESOURCE}, None, 400, "2019-08-01"),
        ({"api-version": "2019-08-01"}, None, 400, "resource"),
        (
            {"api-version": "2019-08-01", "resource": SIGNALR_RESOURCE, "client_id": "nobody"},
            None,
            400,
            "Unable to load the proper Managed Identity.",
        ),
        (
            {"api-version": "2019-08-01", "resource": SIGNALR_RESOURCE, "mi_res_id": "/x"},
            None,
            400,
            "Unable to load the proper Managed Identity.",
        ),
    ],
    ids=["no-header", "old-api-version", "no-resource", "unknown-client-id", "by-resource-id"],
)
def test_app_service_refusals(
    emulator: Emulator,
    emulator_url: str,
    query: dict[str, str],
    headers: dict[str, str] | None,
    status: int,
    message: str,
) -> None:
    if headers is None:
        headers = {"X-IDENTITY-HEADER": emulator.identity_header}
    response = httpx2.get(
        f"{emulator_url}/msi/token", params=query, headers=headers, timeout=TIMEOUT
    )

    assert response.status_code == status
    assert response.json()["statusCode"] == status
    assert message in response.json()["message"]


def test_imds_needs_the_metadata_header(emulator: Emulator, emulator_url: str) -> None:
    url = f"{emulator_url}/metadata/identity/oauth2/token"
    query = {"api-version": "2018-02-01", "resource": SIGNALR_RESOURCE}

    refused = httpx2.get(url, params=query, timeout=TIMEOUT)
    answered = httpx2.get(url, params=query, headers={"Metadata": "true"}, timeout=TIMEOUT)

    assert refused.status_code == 400
    assert refused.json()["error_description"] == "Required metadata header not specified"
    assert answered.status_code == 200
    body = answered.json()
    assert set(body) == {
        "access_token",
        "client_id",
        "expires_in",
        "expires_on",
        "ext_expires_in",
        "not_before",
        "resource",
        "token_type",
    }
    assert all(isinstance(value, str) for value in body.values())
    assert body["expires_in"] == str(24 * 3600)
    assert body["client_id"] == emulator.system_identity.client_id


def test_object_id_selects_a_user_assigned_identity(emulator: Emulator, emulator_url: str) -> None:
    app_server = emulator.add_principal("app-server")
    response = httpx2.get(
        f"{emulator_url}/metadata/identity/oauth2/token",
        params={
            "api-version": "2018-02-01",
            "resource": SIGNALR_RESOURCE,
            "object_id": app_server.object_id,
        },
        headers={"Metadata": "true"},
        timeout=TIMEOUT,
    )

    assert unverified_claims(response.json()["access_token"])["oid"] == app_server.object_id


def test_token_issuer_is_the_url_the_request_came_in_on(
    emulator: Emulator, app_service_env: dict[str, str], emulator_url: str
) -> None:
    token = ManagedIdentityCredential().get_token(SIGNALR_SCOPE).token

    assert unverified_claims(token)["iss"] == f"{emulator_url}/{emulator.tenant_id}/"


@pytest.mark.anyio
async def test_token_verifies_with_keys_discovered_from_its_issuer(
    emulator: Emulator, emulator_url: str
) -> None:
    async with httpx2.AsyncClient(timeout=TIMEOUT) as client:
        reply = await client.get(
            f"{emulator_url}/msi/token",
            params={"api-version": "2019-08-01", "resource": SIGNALR_RESOURCE},
            headers={"X-IDENTITY-HEADER": emulator.identity_header},
        )
        token = reply.json()["access_token"]
        issuer = unverified_claims(token)["iss"]
        metadata = (await client.get(f"{issuer}.well-known/openid-configuration")).json()
        keys = (await client.get(metadata["jwks_uri"])).json()

    signing_key = jwt.PyJWKSet.from_dict(keys)[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(
        token, signing_key, algorithms=["RS256"], audience=SIGNALR_RESOURCE, issuer=issuer
    )
    assert claims["oid"] == emulator.system_identity.object_id
    assert metadata["issuer"] == issuer
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert keys == emulator.jwks
    assert emulator.log.count("identity.openid") == emulator.log.count("identity.jwks") == 1


@pytest.mark.anyio
async def test_v2_metadata_and_unknown_tenants(emulator: Emulator, emulator_url: str) -> None:
    tenant = f"{emulator_url}/{emulator.tenant_id}"
    async with httpx2.AsyncClient(timeout=TIMEOUT) as client:
        v2 = (await client.get(f"{tenant}/v2.0/.well-known/openid-configuration")).json()
        v2_keys = (await client.get(v2["jwks_uri"])).json()
        stranger = await client.get(
            f"{emulator_url}/{uuid.uuid4()}/.well-known/openid-configuration"
        )

    assert v2["issuer"] == f"{tenant}/v2.0"
    assert v2["jwks_uri"] == f"{tenant}/discovery/v2.0/keys"
    assert v2_keys == emulator.jwks
    assert stranger.status_code == 400
    assert "AADSTS90002" in stranger.json()["error_description"]


def test_tokens_of_another_tenant_do_not_verify(emulator: Emulator) -> None:
    stranger = Emulator()
    token = stranger.issue_entra_token(stranger.system_identity)

    with pytest.raises(EntraTokenError, match="signing key") as caught:
        emulator.verify_entra_token(token, audiences=[SIGNALR_RESOURCE])
    assert "signing key" in caught.value.reason
