"""The library's server connections against the emulator's Default mode, with the real
azure-identity managed identity: which roles at which scopes open them, and what a missing role,
an access key and a Serverless resource look like."""

from __future__ import annotations

from typing import Any

import pytest

from signalr_asgi_auth import NotReadyError, SignalRAuth
from signalr_asgi_auth.emulator import Emulator

from ..support import auth_for, principal_with_role
from .support import EchoHub, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("app_service_env")]

COUNT = 2
FAST: dict[str, Any] = {"retry_initial_delay": 0.02, "retry_max_delay": 0.2}


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(service_mode="default")


def _scope(emulator: Emulator, level: str) -> str | None:
    resource = emulator.resource_id
    if level == "resource":
        return None
    if level == "resource group":
        return f"/subscriptions/{resource.subscription}/resourceGroups/{resource.resource_group}"
    return f"/subscriptions/{resource.subscription}"


@pytest.mark.parametrize(
    ("role", "level"),
    [
        ("SignalR App Server", "resource"),
        ("SignalR App Server", "resource group"),
        ("SignalR App Server", "subscription"),
        ("SignalR Service Owner", "resource"),
    ],
)
async def test_the_roles_that_open_server_connections(
    emulator: Emulator, emulator_url: str, role: str, level: str
) -> None:
    principal = principal_with_role(emulator, role, _scope(emulator, level))
    auth = auth_for(
        emulator,
        emulator_url,
        principal,
        hubs=[EchoHub("Chat")],
        server_connection_count=COUNT,
        application_name="shop",
    )
    async with auth:
        await wait_for(lambda: auth.health()["server_connections"]["shop_chat"]["up"] == COUNT)
        servers = emulator.server_connections
        assert len(servers) == COUNT
        assert {s.hub for s in servers} == {"shop_chat"}
        assert {s.principal_oid for s in servers} == {principal.object_id}
        assert auth.health()["status"] == "ok"
    await wait_for(lambda: not emulator.server_connections)


async def test_without_app_server_the_403_names_the_role_and_the_principal(
    emulator: Emulator, emulator_url: str
) -> None:
    principal = principal_with_role(emulator, "SignalR REST API Owner")
    auth = auth_for(
        emulator,
        emulator_url,
        principal,
        hubs=[EchoHub("chat")],
        server_connection_count=COUNT,
        startup_timeout=3,
        **FAST,
    )
    async with auth as signalr:
        with pytest.raises(NotReadyError) as refused:
            await signalr.negotiate("chat")
        health = auth.health()
    message = str(refused.value)
    assert "No server connection to SignalR Service is up for hub 'chat'" in message
    assert "refused to open a server connection for hub 'chat' (403 Forbidden)" in message
    assert f"principal (object id) {principal.object_id}" in message
    assert "'SignalR App Server' or 'SignalR Service Owner'" in message
    assert f"--assignee-object-id {principal.object_id}" in message
    assert health["status"] == "unavailable"
    assert health["server_connections"]["chat"]["last_error"]["type"] == "PermissionDeniedError"
    assert not emulator.server_connections


async def test_an_access_key_signs_the_server_token(emulator: Emulator, emulator_url: str) -> None:
    auth = SignalRAuth.from_connection_string(
        emulator.connection_string(emulator_url, auth_type=None),
        hubs=[EchoHub("chat")],
        server_connection_count=COUNT,
    )
    async with auth:
        await wait_for(lambda: len(emulator.server_connections) == COUNT)
        assert {s.principal_oid for s in emulator.server_connections} == {None}


async def test_a_serverless_resource_says_to_switch_to_default(
    emulator: Emulator, emulator_url: str
) -> None:
    emulator.service_mode = "serverless"
    principal = principal_with_role(emulator)
    auth = auth_for(
        emulator,
        emulator_url,
        principal,
        hubs=[EchoHub("chat")],
        server_connection_count=1,
        startup_timeout=2,
    )
    async with auth:
        error = auth.health()["server_connections"]["chat"]["last_error"]
    assert error is not None
    assert "refused the handshake" in error["message"]
    assert "--service-mode Default" in error["message"]


async def test_a_service_restart_is_survived(emulator: Emulator, emulator_url: str) -> None:
    principal = principal_with_role(emulator)
    hub = EchoHub("chat")
    auth = auth_for(
        emulator, emulator_url, principal, hubs=[hub], server_connection_count=COUNT, **FAST
    )
    async with auth:
        await wait_for(lambda: len(emulator.server_connections) == COUNT)
        before = {s.connection_id for s in emulator.server_connections}
        assert emulator.drop_server_connections() == COUNT
        await hub.wait_until(lambda: len(hub.lost) == COUNT)
        await wait_for(
            lambda: (
                len(emulator.server_connections) == COUNT
                and not before & {s.connection_id for s in emulator.server_connections}
            )
        )

        def chat() -> dict[str, Any]:
            health: dict[str, Any] = auth.health()["server_connections"]["chat"]
            return health

        await wait_for(lambda: chat()["up"] == COUNT and chat()["reconnects"] == COUNT)
