"""Each built-in role at each scope: who may fetch the temporary access key, and what a 403 says."""

from __future__ import annotations

import pytest

from signalr_asgi_auth import NotReadyError, PermissionDeniedError
from signalr_asgi_auth.emulator import Emulator

from .support import auth_for, verify_client_token, wait_for_a_refused_key, wait_for_status

pytestmark = pytest.mark.anyio

SUBSCRIPTION = "/subscriptions/00000000-0000-0000-0000-0000000000a1"
RESOURCE_GROUP = f"{SUBSCRIPTION}/resourceGroups/rg-signalr"
RESOURCE = f"{RESOURCE_GROUP}/providers/Microsoft.SignalRService/SignalR/emulated-signalr"
OTHER_GROUP = f"{SUBSCRIPTION}/resourceGroups/rg-elsewhere"
OTHER_SUBSCRIPTION = "/subscriptions/00000000-0000-0000-0000-0000000000b2"

ALLOWED = [
    ("SignalR App Server", RESOURCE),
    ("SignalR App Server", RESOURCE_GROUP),
    ("SignalR App Server", SUBSCRIPTION),
    ("SignalR Service Owner", RESOURCE),
    ("SignalR Service Owner", RESOURCE_GROUP),
    ("SignalR Service Owner", SUBSCRIPTION),
]
REFUSED = [
    ("SignalR REST API Owner", RESOURCE),
    ("SignalR REST API Owner", SUBSCRIPTION),
    ("SignalR REST API Reader", RESOURCE),
    ("SignalR REST API Reader", RESOURCE_GROUP),
    ("Owner", SUBSCRIPTION),
    ("Reader", RESOURCE),
    ("SignalR App Server", OTHER_GROUP),
    ("SignalR Service Owner", OTHER_SUBSCRIPTION),
]


@pytest.mark.parametrize(("role", "scope"), ALLOWED)
async def test_roles_that_grant_the_access_key(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    role: str,
    scope: str,
) -> None:
    principal = emulator.add_principal("app")
    emulator.assign(principal, role, scope)
    async with auth_for(emulator, emulator_url, principal) as signalr:
        reply = await signalr.negotiate("chat", user_id="u1")
    claims = verify_client_token(
        reply["accessToken"], emulator, audience="http://127.0.0.1/client/?hub=chat"
    )
    assert claims["nameid"] == "u1"


@pytest.mark.parametrize(("role", "scope"), REFUSED)
async def test_roles_that_do_not_grant_it_get_a_clear_403(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    role: str,
    scope: str,
) -> None:
    principal = emulator.add_principal("app")
    emulator.assign(principal, role, scope)
    # mode="key": in the default "auto" mode REST API Owner gets service-issued tokens instead
    # (tests/test_service_mode.py).
    auth = auth_for(emulator, emulator_url, principal, startup_timeout=0.3, mode="key")
    async with auth as signalr:
        await wait_for_a_refused_key(auth)
        with pytest.raises(NotReadyError) as caught:
            await signalr.negotiate("chat")
        health = auth.health()
    denied = caught.value.cause
    assert isinstance(denied, PermissionDeniedError)
    assert denied.roles == ("SignalR App Server", "SignalR Service Owner")
    assert denied.principal_id == principal.object_id
    assert denied.app_id == principal.client_id
    assert denied.resource == emulator_url
    message = str(caught.value)
    for fact in (
        "SignalR App Server",
        "SignalR Service Owner",
        principal.object_id,
        principal.client_id,
        emulator_url,
        "subscription, resource group or resource",
        "30 minutes",
        "auth/accessKey/action",
    ):
        assert fact in message
    assert health["status"] == "unavailable"
    assert health["access_key"]["last_error"]["type"] == "PermissionDeniedError"
    assert emulator.issued_keys == []


async def test_a_role_granted_later_is_picked_up_without_a_restart(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    principal = emulator.add_principal("late")
    auth = auth_for(emulator, emulator_url, principal, startup_timeout=0.2)
    async with auth as signalr:
        await wait_for_a_refused_key(auth)
        with pytest.raises(NotReadyError, match="403"):
            await signalr.negotiate("chat")
        emulator.assign(principal, "SignalR App Server")
        await wait_for_status(auth, "ok")
        reply = await signalr.negotiate("chat")
    assert verify_client_token(
        reply["accessToken"], emulator, audience="http://127.0.0.1/client/?hub=chat"
    )
