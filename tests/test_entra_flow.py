"""The whole Entra path with the real azure-identity against the emulator: managed identity (App
Service and IMDS flavours), the temporary access key, and client tokens the service would accept."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.identity import ManagedIdentityCredential

from signalr_asgi_auth import (
    ConfigurationError,
    InvalidInputError,
    NotReadyError,
    SignalRAuth,
    TokenTooLongError,
)
from signalr_asgi_auth.emulator import Emulator

from .support import (
    FAST,
    auth_for,
    principal_with_role,
    verify_client_token,
    wait_for_a_refused_key,
)

pytestmark = pytest.mark.anyio


async def test_negotiate_returns_a_token_the_service_accepts(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    principal = principal_with_role(emulator)
    auth = auth_for(emulator, emulator_url, principal)
    async with auth as signalr:
        reply = await signalr.negotiate(
            "Chat", user_id="alice", claims={"tier": "gold", "exp": "soon"}, roles=["admin"]
        )
    assert set(reply) == {"url", "accessToken"}
    assert reply["url"] == f"{emulator_url}/client/?hub=chat"
    claims = verify_client_token(
        reply["accessToken"], emulator, audience="http://127.0.0.1/client/?hub=chat"
    )
    assert claims["asrs.s.uid"] == claims["nameid"] == "alice"
    assert claims["role"] == "admin"
    assert claims["tier"] == "gold"
    assert claims["asrs.u.exp"] == "soon"
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 5
    # The key came from the emulator for this principal, through the App Service identity endpoint.
    assert [key.principal_oid for key in emulator.issued_keys] == [principal.object_id]
    identity = emulator.log.entries("identity.app_service")
    assert identity
    assert identity[0].query.get("client_id") == principal.client_id


async def test_imds_flavour_and_system_assigned_identity(
    emulator: Emulator, emulator_url: str, imds_env: dict[str, str]
) -> None:
    emulator.assign(emulator.system_identity, "SignalR App Server")
    auth = auth_for(emulator, emulator_url, None)
    async with auth as signalr:
        token = await signalr.client_token("chat", user_id="bob")
    assert verify_client_token(token, emulator, audience="http://127.0.0.1/client/?hub=chat")
    assert emulator.log.count("identity.imds") == 1
    assert emulator.log.count("identity.app_service") == 0
    assert emulator.issued_keys[0].principal_oid == emulator.system_identity.object_id


async def test_a_credential_passed_in_is_used_and_left_open(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    principal = principal_with_role(emulator, "SignalR Service Owner")
    closed: list[bool] = []

    class Watched(ManagedIdentityCredential):
        def close(self) -> None:
            closed.append(True)
            super().close()

    credential = Watched(client_id=principal.client_id)
    auth = SignalRAuth(endpoint=emulator_url, credential=credential, **FAST)
    async with auth as signalr:
        reply = await signalr.negotiate("chat")
    assert verify_client_token(
        reply["accessToken"], emulator, audience="http://127.0.0.1/client/?hub=chat"
    )
    assert closed == []  # the caller owns it


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # azure.identity.aio runs on aiohttp
async def test_async_credential_is_awaited(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential

    principal = principal_with_role(emulator)
    async with AsyncManagedIdentityCredential(client_id=principal.client_id) as credential:
        auth = SignalRAuth(endpoint=emulator_url, credential=credential, **FAST)
        async with auth as signalr:
            reply = await signalr.negotiate("chat", user_id="carol")
    claims = verify_client_token(
        reply["accessToken"], emulator, audience="http://127.0.0.1/client/?hub=chat"
    )
    assert claims["nameid"] == "carol"


async def test_options_shape_the_token(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    principal = principal_with_role(emulator)
    auth = auth_for(
        emulator,
        emulator_url,
        principal,
        application_name="ShopApp",
        algorithm="HS512",
        token_lifetime=600,
    )
    async with auth as signalr:
        reply = await signalr.negotiate("Orders", lifetime=120)
        default = await signalr.client_token("Orders")
    assert reply["url"] == f"{emulator_url}/client/?hub=shopapp_orders"
    audience = "http://127.0.0.1/client/?hub=shopapp_orders"
    claims = verify_client_token(
        reply["accessToken"], emulator, audience=audience, algorithm="HS512"
    )
    assert claims["exp"] - claims["iat"] == 120
    assert "asrs.s.uid" not in claims
    claims = verify_client_token(default, emulator, audience=audience, algorithm="HS512")
    assert claims["exp"] - claims["iat"] == 600


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"hub": "1chat"}, InvalidInputError, "Invalid hub name"),
        ({"hub": "x" * 129}, InvalidInputError, "Invalid hub name"),
        ({"hub": "chat", "user_id": ""}, InvalidInputError, "user_id"),
        ({"hub": "chat", "lifetime": -5}, InvalidInputError, "lifetime"),
        ({"hub": "chat", "lifetime": 0}, InvalidInputError, "lifetime"),
        ({"hub": "chat", "lifetime": 10**9}, InvalidInputError, "lifetime"),
        ({"hub": "chat", "claims": {"asrs.s.uid": "x"}}, InvalidInputError, "reserved"),
        ({"hub": "chat", "claims": {"deep": {"a": 1}}}, InvalidInputError, "deep"),
        ({"hub": "chat", "claims": {"big": "x" * 5000}}, TokenTooLongError, "4096"),
    ],
)
async def test_bad_arguments_are_refused_clearly(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    arguments: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    async with auth as signalr:
        with pytest.raises(error, match=match):
            await signalr.negotiate(**arguments)


async def test_access_key_mode_signs_with_the_connection_string_key(
    emulator: Emulator, emulator_url: str
) -> None:
    auth = SignalRAuth.from_connection_string(
        emulator.connection_string(emulator_url, auth_type=None)
    )
    assert auth.authentication == "access_key"
    async with auth as signalr:
        reply = await signalr.negotiate("chat", user_id="dave")
    import jwt

    claims = jwt.decode(
        reply["accessToken"],
        emulator.access_keys[0].encode(),
        algorithms=["HS256"],
        audience="http://127.0.0.1/client/?hub=chat",
    )
    assert claims["nameid"] == "dave"
    assert emulator.log.count("signalr.access_key") == 0  # no Entra, no service call
    assert auth.health()["status"] == "stopped"


async def test_connection_string_from_the_environment(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    principal = principal_with_role(emulator)
    monkeypatch.setenv(
        "AZURE_SIGNALR_CONNECTION_STRING",
        emulator.connection_string(emulator_url, client_id=principal.client_id),
    )
    auth = SignalRAuth.from_connection_string(**FAST)
    async with auth as signalr:
        assert await signalr.client_token("chat")


def test_missing_connection_string_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_SIGNALR_CONNECTION_STRING", raising=False)
    with pytest.raises(ConfigurationError, match="AZURE_SIGNALR_CONNECTION_STRING"):
        SignalRAuth.from_connection_string()


async def test_without_a_key_negotiation_is_not_ready(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    principal = emulator.add_principal("no-role")
    auth = auth_for(emulator, emulator_url, principal, startup_timeout=0.3)
    async with auth as signalr:
        await wait_for_a_refused_key(auth)
        with pytest.raises(NotReadyError, match="SignalR App Server") as caught:
            await signalr.negotiate("chat")
    assert caught.value.retry_after >= 1
