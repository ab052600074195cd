"""The emulator's statement of Azure's rules where scripts/mutation found it unasserted: a client
token signed with a temporary access key is refused once that key has expired, whether or not the
token names the key, even while the token itself is still valid."""

from __future__ import annotations

import httpx2
import pytest

from signalr_asgi_auth.emulator import Emulator

from .helpers import TIMEOUT, bearer
from .hub_client import hub_socket
from .test_client_endpoint import assert_refused, forged

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

AUDIENCE = "http://127.0.0.1/client/?hub=chat"


async def temporary_key(
    emulator: Emulator, url: str, client: httpx2.AsyncClient
) -> tuple[str, str]:
    """``(KeyId, AccessKey)`` as an app server fetches them over Entra ID."""
    app_server = emulator.add_principal("app-server")
    emulator.assign(app_server, "SignalR App Server")
    response = await client.get(
        f"{url}/api/v1/auth/accessKey",
        headers=bearer(emulator.issue_entra_token(app_server)),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return body["KeyId"], body["AccessKey"]


@pytest.mark.parametrize("names_the_key", [True, False], ids=["kid", "no-kid"])
async def test_a_token_signed_with_an_expired_temporary_key_is_refused(
    emulator: Emulator, emulator_url: str, names_the_key: bool
) -> None:
    async with httpx2.AsyncClient(timeout=TIMEOUT) as client:
        key_id, access_key = await temporary_key(emulator, emulator_url, client)
        emulator.clock.advance(91 * 60)  # the key's 90 minutes are over
        # The token itself is good for another hour of emulator time.
        token = forged(
            access_key,
            aud=AUDIENCE,
            exp=emulator.clock.now() + 3600,
            kid=key_id if names_the_key else None,
        )

        await assert_refused(
            client, emulator_url, token, f"The signature key '{key_id}' expired at"
        )
    assert emulator.connections == []


@pytest.mark.parametrize("names_the_key", [True, False], ids=["kid", "no-kid"])
async def test_a_token_signed_with_a_temporary_key_in_its_lifetime_is_accepted(
    emulator: Emulator, emulator_url: str, names_the_key: bool
) -> None:
    async with httpx2.AsyncClient(timeout=TIMEOUT) as client:
        key_id, access_key = await temporary_key(emulator, emulator_url, client)
        emulator.clock.advance(89 * 60)
        token = forged(
            access_key,
            aud=AUDIENCE,
            exp=emulator.clock.now() + 3600,
            kid=key_id if names_the_key else None,
        )

        async with hub_socket(client, emulator_url, token):
            pass
    assert [entry.status for entry in emulator.log.entries("client.websocket")] == [101]
