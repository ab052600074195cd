"""Helpers shared by the library's tests: principals with roles, and token verification."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import anyio
import jwt
from jwt.warnings import InsecureKeyLengthWarning

from signalr_asgi_auth import SignalRAuth
from signalr_asgi_auth.emulator import Emulator, Principal

FAST: dict[str, Any] = {"retry_initial_delay": 0.05, "retry_max_delay": 0.2}
"""Options for tests: retries in tens of milliseconds, not seconds."""

DURATION_OPTIONS = [
    "token_lifetime",
    "startup_timeout",
    "key_refresh_interval",
    "key_lifetime",
    "key_expiry_margin",
    "token_refresh_margin",
    "retry_initial_delay",
    "retry_max_delay",
    "request_timeout",
    "credential_timeout",
]
"""The duration options (seconds or a ``timedelta``) that the option tests set one at a time; the
health check's two are left out, since their timeout must stay shorter than their interval."""


def principal_with_role(
    emulator: Emulator, role: str = "SignalR App Server", scope: str | None = None
) -> Principal:
    principal = emulator.add_principal(role.lower().replace(" ", "-"))
    emulator.assign(principal, role, scope)
    return principal


def auth_for(
    emulator: Emulator, url: str, principal: Principal | None, **options: Any
) -> SignalRAuth:
    """A SignalRAuth on the emulator's managed identity (user-assigned when ``principal`` is given)."""
    client_id = principal.client_id if principal is not None else None
    connection_string = emulator.connection_string(url, client_id=client_id)
    return SignalRAuth.from_connection_string(connection_string, **{**FAST, **options})


def verify_client_token(
    token: str, emulator: Emulator, *, audience: str, algorithm: str = "HS256"
) -> dict[str, Any]:
    """Check a client token as the service would: the key named by ``kid``, still valid; signature,
    audience and expiry. Returns the claims."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "JWT"
    assert header["alg"] == algorithm
    key = emulator.find_key(header["kid"])
    assert key is not None, "kid names no key the emulator issued"
    assert key.is_valid_at(emulator.clock.now())
    with warnings.catch_warnings():
        # PyJWT asks for 64-byte keys with HS512; the service's keys are what they are.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.access_key.encode(),
            algorithms=[algorithm],
            audience=audience,
            options={"require": ["exp", "iat", "nbf", "aud"]},
        )
    return claims


async def wait_until(condition: Callable[[], bool], *, within: float = 10.0) -> None:
    """Poll ``condition`` until it holds: for what happens on its own schedule in the background,
    however long a busy machine takes (``within`` bounds a hang, not the schedule)."""
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - polling a snapshot on purpose
            await anyio.sleep(0.02)


async def wait_for_a_refused_key(auth: SignalRAuth) -> None:
    """Wait until an access-key request has failed: with a short ``startup_timeout`` the app may
    start before the service's answer is back on a busy machine."""
    await wait_until(lambda: auth.health()["access_key"]["consecutive_failures"] > 0)


async def wait_for_status(auth: SignalRAuth, status: str, *, within: float = 5.0) -> None:
    """Poll ``auth.health()`` until its status is ``status`` (the keepers have no event to await)."""
    with anyio.fail_after(within):
        while auth.health()["status"] != status:  # noqa: ASYNC110 - polling a snapshot on purpose
            await anyio.sleep(0.02)
