"""Small helpers shared by the emulator tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import jwt
import pytest

from signalr_asgi_auth.emulator import Emulator

SIGNALR_SCOPE = "https://signalr.azure.com/.default"
SIGNALR_RESOURCE = "https://signalr.azure.com"
TIMEOUT = 15.0
"""Upper bound for any single HTTP exchange with the emulator in these tests: it bounds a hang, it
measures nothing, so it leaves a busy machine room."""


def unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def service_token_claims(token: str, emulator: Emulator, audience: str) -> dict[str, Any]:
    """The claims of a client token the service issued (``:generateToken``), checked against the
    resource's primary key, which the service signs with."""
    claims: dict[str, Any] = jwt.decode(
        token,
        emulator.access_keys[0].encode(),
        algorithms=["HS256"],
        audience=audience,
        options={"require": ["exp", "iat", "nbf", "aud"]},
    )
    return claims


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (state the server's thread changes) until it holds, or fail the test."""
    with anyio.move_on_after(TIMEOUT):
        while not condition():  # noqa: ASYNC110 - the state changes in the server's thread
            await anyio.sleep(0.01)
        return
    pytest.fail(f"Timed out waiting for {what}.")
