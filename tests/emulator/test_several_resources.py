"""Several emulated SignalR resources of one tenant: one identity authority and directory, each
resource with its own id, roles, keys and faults (issue 12 item 7)."""

from __future__ import annotations

import time

import httpx2
import pytest
from azure.identity import ManagedIdentityCredential

from signalr_asgi_auth.emulator import (
    Emulator,
    IdentityAuthority,
    local_emulators,
    resource_id_named,
)
from signalr_asgi_auth.emulator._roles import Action, ResourceId

from .helpers import SIGNALR_SCOPE, TIMEOUT, bearer


def fetch_key(url: str, token: str) -> httpx2.Response:
    return httpx2.get(f"{url}/api/v1/auth/accessKey", headers=bearer(token), timeout=TIMEOUT)


def health(url: str) -> httpx2.Response:
    return httpx2.head(f"{url}/api/health?api-version=2022-06-01", timeout=TIMEOUT)


def test_one_managed_identity_token_is_honoured_by_each_resource_under_its_own_roles(
    east: Emulator, west: Emulator, tenant_urls: tuple[str, str]
) -> None:
    east_url, west_url = tenant_urls
    app_server = east.add_principal("app-server")
    east.assign(app_server, "SignalR App Server")
    credential = ManagedIdentityCredential(client_id=app_server.client_id)
    token = credential.get_token(SIGNALR_SCOPE).token

    assert fetch_key(east_url, token).status_code == 200
    refused = fetch_key(west_url, token)
    assert refused.status_code == 403
    assert resource_id_named("west") in refused.json()["message"]

    west.assign(app_server, "SignalR App Server")
    assert fetch_key(west_url, token).status_code == 200
    # One identity call served both resources; west has no identity traffic at all.
    assert east.log.count("identity.app_service") == 1
    assert west.log.count("identity.app_service") == 0
    assert [key.principal_oid for key in west.issued_keys] == [app_server.object_id]
    assert {key.access_key for key in east.issued_keys}.isdisjoint(
        key.access_key for key in west.issued_keys
    )


def test_principals_are_the_tenants_and_a_group_scope_covers_every_resource(
    east: Emulator, west: Emulator, tenant_urls: tuple[str, str]
) -> None:
    worker = west.add_principal("worker")
    assert east.find_principal(client_id=worker.client_id) == worker
    assert east.principals == west.principals
    assert east.system_identity == west.system_identity
    group = ResourceId(east.resource_id.subscription, east.resource_id.resource_group)
    east.assign(worker, "SignalR App Server", group)
    token = east.issue_entra_token(worker)

    assert [fetch_key(url, token).status_code for url in tenant_urls] == [200, 200]
    assert east.assignments == west.assignments


def test_another_tenants_token_is_refused(east: Emulator, tenant_urls: tuple[str, str]) -> None:
    stranger = Emulator(resource_id=resource_id_named("elsewhere"))
    stranger.assign(stranger.system_identity, "SignalR App Server", east.resource_id)
    token = stranger.issue_entra_token(stranger.system_identity)

    assert [fetch_key(url, token).status_code for url in tenant_urls] == [401, 401]


def test_faults_belong_to_one_resource(
    east: Emulator, west: Emulator, tenant_urls: tuple[str, str]
) -> None:
    east_url, west_url = tenant_urls
    group = ResourceId(east.resource_id.subscription, east.resource_id.resource_group)
    east.assign(east.system_identity, "SignalR App Server", group)
    token = east.issue_entra_token(east.system_identity)
    east.inject("signalr.health", status=503)
    east.inject("signalr.access_key", status=403)
    west.inject("signalr.health", delay=0.3, times=1)

    assert health(east_url).status_code == 503
    assert fetch_key(east_url, token).status_code == 403
    started = time.monotonic()
    assert health(west_url).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert fetch_key(west_url, token).status_code == 200

    east.clear_faults()
    assert health(east_url).status_code == 200


def test_the_clock_is_shared(east: Emulator, west: Emulator) -> None:
    before = west.clock.now()
    east.clock.advance(3600)
    assert west.clock is east.clock
    assert west.clock.now() - before >= 3600


def test_resources_of_one_authority_need_their_own_ids(east: Emulator) -> None:
    with pytest.raises(ValueError, match="its own resource_id"):
        Emulator(resource_id=resource_id_named("east"), authority=east.authority)
    with pytest.raises(ValueError, match="belong to the authority"):
        Emulator(
            resource_id=resource_id_named("north"), authority=east.authority, tenant_id="other"
        )
    assert east.authority.resources == [east.resource_id]
    assert "east" in repr(east.authority)


def test_an_authority_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        IdentityAuthority(tenant_id=" ")
    with pytest.raises(ValueError, match="token_lifetime"):
        IdentityAuthority(token_lifetime=0)


def test_local_emulators_run_a_tenant_of_named_resources() -> None:
    config = {
        "principals": [{"name": "worker", "roles": ["SignalR REST API Owner"]}],
    }
    with local_emulators("east", "west", "backup:secondary", config=config) as region:
        assert list(region.connection_strings) == ["east", "west", "backup:secondary"]
        assert len({local.url for local in region.resources.values()}) == 3
        env = region.environment
        assert env["IDENTITY_ENDPOINT"] == f"{region['east'].url}/msi/token"
        assert env["Azure__SignalR__ConnectionString__backup__secondary"] == (
            region["backup"].connection_string
        )
        assert "AuthType=azure.msi" in region["west"].connection_string
        # One worker in the tenant, with the configured role at each resource, and the
        # system identity's default roles at each.
        [worker] = [p for p in region["east"].emulator.principals if p.name == "worker"]
        system = region["east"].emulator.system_identity
        for local in region.resources.values():
            assert local.emulator.is_allowed(worker.object_id, Action.HUB_SEND)
            assert not local.emulator.is_allowed(worker.object_id, Action.ACCESS_KEY)
            assert local.emulator.is_allowed(system.object_id, Action.ACCESS_KEY)
        # The real managed identity reaches the shared endpoint the block set.
        credential = ManagedIdentityCredential()
        token = credential.get_token(SIGNALR_SCOPE).token
        assert fetch_key(region["backup"].url, token).status_code == 200
        assert region["east"].emulator.log.count("identity.app_service") == 1


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("east", "east"), "given twice"),
        (("east:tertiary",), "primary' or 'secondary"),
        (("only:secondary",), "must be a primary"),
        (("bad name",), "letters, digits"),
    ],
)
def test_local_emulators_refuse_bad_names(names: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message), local_emulators(*names):
        pass
