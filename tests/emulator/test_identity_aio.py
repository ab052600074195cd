"""The identity endpoint driven by the real ``azure.identity.aio`` credential (aiohttp, asyncio)."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import ManagedIdentityCredential

from signalr_asgi_auth.emulator import Emulator

from .helpers import SIGNALR_RESOURCE, SIGNALR_SCOPE

# aiohttp needs asyncio.
pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


@pytest.fixture(params=["app_service_env", "imds_env"], ids=["app_service", "imds"])
def flavour(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue(request.param)
    name: str = request.param
    return name


@pytest.mark.parametrize("user_assigned", [False, True], ids=["system", "user-assigned"])
async def test_async_credential_gets_a_signalr_token(
    emulator: Emulator, flavour: str, user_assigned: bool
) -> None:
    principal = emulator.add_principal("app") if user_assigned else emulator.system_identity
    client_id = principal.client_id if user_assigned else None

    async with ManagedIdentityCredential(client_id=client_id) as credential:
        info = await credential.get_token_info(SIGNALR_SCOPE)

    claims = emulator.verify_entra_token(info.token, audiences=[SIGNALR_RESOURCE])
    assert (claims["oid"], claims["appid"]) == (principal.object_id, principal.client_id)
    assert info.expires_on == claims["exp"]


async def test_async_credential_unknown_client_id(emulator: Emulator, flavour: str) -> None:
    async with ManagedIdentityCredential(client_id=str(uuid.uuid4()), retry_total=0) as credential:
        with pytest.raises(ClientAuthenticationError):
            await credential.get_token(SIGNALR_SCOPE)

    assert [entry.status for entry in emulator.log] == [400]
