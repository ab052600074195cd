"""The Emulator object itself: principals, role assignments, configuration, and what it prints."""

from __future__ import annotations

import dataclasses

import httpx2
import pytest

from signalr_asgi_auth.emulator import (
    DEFAULT_RESOURCE_ID,
    Emulator,
    EntraTokenError,
    serve_in_thread,
)
from signalr_asgi_auth.emulator._roles import Action, ResourceId, role_named

from .helpers import SIGNALR_RESOURCE, TIMEOUT, bearer, unverified_claims


def test_roles_can_be_named_by_name_former_name_id_or_object(emulator: Emulator) -> None:
    app_server = emulator.add_principal("app-server")

    by_name = emulator.assign(app_server, "SignalR App Server")
    by_former_name = emulator.assign(app_server, "SignalR Serverless Contributor")
    by_id = emulator.assign(app_server, "ddde6b66-c0df-4114-a159-3618637b3035")
    by_object = emulator.assign(
        app_server, role_named("fd53cd77-2268-407a-8f46-7e7863d0f521"), DEFAULT_RESOURCE_ID
    )

    assert [a.role.name for a in emulator.assignments] == [
        "SignalR App Server",
        "SignalR REST API Owner",
        "SignalR REST API Reader",
        "SignalR REST API Owner",
    ]
    assert by_name.scope == by_object.scope == emulator.resource_id
    assert len({by_name, by_former_name, by_id, by_object}) == 4
    with pytest.raises(ValueError, match="Unknown role 'SignalR Superuser'"):
        emulator.assign(app_server, "SignalR Superuser")


def test_is_allowed_follows_role_data_actions(emulator: Emulator) -> None:
    app_server = emulator.add_principal("app-server")
    rest = emulator.add_principal("rest")
    owner = emulator.add_principal("owner")
    emulator.assign(app_server, "SignalR App Server")
    emulator.assign(rest, "SignalR REST API Owner", ResourceId(emulator.resource_id.subscription))
    emulator.assign(owner, "SignalR Service Owner")

    assert emulator.is_allowed(app_server.object_id, Action.ACCESS_KEY)
    assert emulator.is_allowed(app_server.object_id.upper(), Action.SERVER_CONNECTION_WRITE)
    assert not emulator.is_allowed(app_server.object_id, Action.HUB_SEND)
    assert emulator.is_allowed(rest.object_id, Action.CLIENT_TOKEN)
    assert emulator.is_allowed(rest.object_id, Action.GROUP_WRITE)
    assert not emulator.is_allowed(rest.object_id, Action.ACCESS_KEY)
    assert emulator.is_allowed(owner.object_id, Action.USER_READ)
    assert not emulator.is_allowed(emulator.system_identity.object_id, Action.ACCESS_KEY)


def test_principals_and_assignments_are_checked(emulator: Emulator) -> None:
    given = emulator.add_principal("given", client_id="CLIENT-1", object_id="object-1")
    assert (given.client_id, given.object_id) == ("CLIENT-1", "object-1")
    assert emulator.find_principal(client_id="client-1") == given
    with pytest.raises(ValueError, match="client id 'client-1' exists already"):
        emulator.add_principal("again", client_id="client-1")
    with pytest.raises(ValueError, match="object id 'object-1' exists already"):
        emulator.add_principal("again", object_id="object-1")
    with pytest.raises(ValueError, match="Unknown principal 'system-assigned'"):
        emulator.assign(Emulator().system_identity, "SignalR App Server")

    assignment = emulator.assign(given, "SignalR App Server")
    emulator.unassign(assignment)
    assert emulator.assignments == []
    with pytest.raises(ValueError, match="No such role assignment"):
        emulator.unassign(assignment)


def test_connection_strings_and_environments(emulator: Emulator) -> None:
    url = "http://127.0.0.1:8888/"

    assert emulator.connection_string(url) == (
        "Endpoint=http://127.0.0.1:8888;AuthType=azure.msi;Version=1.0;"
    )
    assert emulator.connection_string(url, client_id="abc") == (
        "Endpoint=http://127.0.0.1:8888;AuthType=azure.msi;ClientId=abc;Version=1.0;"
    )
    assert emulator.connection_string(url, auth_type=None) == (
        f"Endpoint=http://127.0.0.1:8888;AccessKey={emulator.access_keys[0]};Version=1.0;"
    )
    assert emulator.app_service_env(url) == {
        "IDENTITY_ENDPOINT": "http://127.0.0.1:8888/msi/token",
        "IDENTITY_HEADER": emulator.identity_header,
    }
    assert emulator.imds_env(url) == {"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:8888"}


def test_secrets_stay_out_of_reprs(emulator: Emulator, emulator_url: str) -> None:
    keys = ("primary-key-value", "secondary-key-value")
    configured = Emulator(access_keys=keys)
    app_server = emulator.add_principal("app-server")
    emulator.assign(app_server, "SignalR App Server")
    token = emulator.issue_entra_token(app_server)
    httpx2.get(f"{emulator_url}/api/v1/auth/accessKey", headers=bearer(token), timeout=TIMEOUT)
    [key] = emulator.issued_keys

    assert configured.access_keys == keys
    assert "access_key='**********'" in repr(key)
    assert key.access_key not in repr(key)
    for text in (repr(emulator), repr(configured)):
        assert emulator.identity_header not in text
        assert configured.identity_header not in text
        assert keys[0] not in text
        assert "emulated-signalr" in text


def test_issued_tokens_carry_the_requested_audience_and_lifetime() -> None:
    emulator = Emulator(token_lifetime=600)
    token = emulator.issue_entra_token(emulator.system_identity, audience="api://custom")

    claims = unverified_claims(token)
    assert claims["exp"] - claims["iat"] == 600
    assert claims["iss"] == f"https://sts.windows.net/{emulator.tenant_id}/"
    assert emulator.verify_entra_token(token, audiences=["api://custom"])["aud"] == "api://custom"
    with pytest.raises(EntraTokenError, match="audience"):
        emulator.verify_entra_token(token, audiences=[SIGNALR_RESOURCE])


def test_key_lifetime_is_configurable() -> None:
    emulator = Emulator(key_lifetime=60)
    app_server = emulator.add_principal("app-server")
    emulator.assign(app_server, "SignalR App Server")
    token = emulator.issue_entra_token(app_server)
    with serve_in_thread(emulator.app) as url:
        httpx2.get(f"{url}/api/v1/auth/accessKey", headers=bearer(token), timeout=TIMEOUT)

    [key] = emulator.issued_keys
    assert key.expires_at - key.issued_at == 60
    emulator.clock.advance(60)
    assert emulator.valid_keys() == []


def test_clock_moves_only_when_told(emulator: Emulator) -> None:
    clock = emulator.clock
    before = clock.now()

    clock.advance(90 * 60)

    assert clock.offset == 90 * 60
    assert 90 * 60 <= clock.now() - before < 90 * 60 + 5
    assert "offset=5400" in repr(clock)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"resource_id": "/subscriptions/s/resourceGroups/rg"}, "not a resource group"),
        ({"resource_id": "/tenants/t"}, "Not a subscription"),
        ({"tenant_id": " "}, "tenant_id must not be empty"),
        ({"access_keys": ("only-one", "")}, "two non-empty strings"),
        ({"key_lifetime": 0}, "must be positive"),
        ({"token_lifetime": -1}, "must be positive"),
    ],
)
def test_bad_configuration_is_refused(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Emulator(**arguments)  # type: ignore[arg-type]


def test_records_are_immutable(emulator: Emulator) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        emulator.system_identity.object_id = "someone-else"  # type: ignore[misc]
