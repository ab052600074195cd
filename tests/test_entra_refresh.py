"""The Entra token keeper with short-lived managed-identity tokens: refreshed ahead of expiry in the
background, and the keys fetched with the fresh one."""

from __future__ import annotations

import pytest

from signalr_asgi_auth.emulator import Emulator

from .support import auth_for, principal_with_role, verify_client_token, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(token_lifetime=3)


async def test_the_entra_token_is_refreshed_before_it_expires(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    auth = auth_for(
        emulator,
        emulator_url,
        principal_with_role(emulator),
        key_refresh_interval=0.5,
        key_lifetime=2,
        key_expiry_margin=0.2,
    )
    async with auth as signalr:
        # Tokens live 3 s and are refreshed at half-life: fetched at 0, ~1.5 and ~3 s. Waiting
        # for the third (however long a busy machine takes) means the first has expired, so the
        # key requests since then needed a refreshed one.
        await wait_until(lambda: emulator.log.count("identity.app_service") >= 3, within=15)
        token = await signalr.client_token("chat")
        health = auth.health()
    assert health["entra_token"]["valid"] is True
    assert health["entra_token"]["consecutive_failures"] == 0
    # Every key request carried a token the emulator accepted (none refused as expired).
    statuses = {entry.status for entry in emulator.log.entries("signalr.access_key")}
    assert statuses == {200}
    verify_client_token(token, emulator, audience="http://127.0.0.1/client/?hub=chat")
