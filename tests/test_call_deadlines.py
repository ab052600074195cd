"""A peer that trickles one byte at a time never lets httpx2's read timeout fire: every call the
library makes has a deadline of its own, so the key fetch, a REST call, a server connection's
upgrade each give up (``doctor``: ``tests/test_doctor.py``) after their timeout, with a message that says so.

The peer is a slow loris on 127.0.0.1 (``tests/faults.trickling_peer``): one byte of an endless
response head every 0.1 s. The Entra token comes from the emulator's managed identity through
real azure-identity; the key and REST calls go to the peer.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx2
import pytest

from signalr_asgi_auth import ServiceError, SignalRAuth
from signalr_asgi_auth.emulator import Emulator
from signalr_asgi_auth.server import ConnectionTimings

from .faults import trickling_peer
from .server.support import ACCESS_KEY, make_pool, running, wait_for
from .support import FAST, auth_for, principal_with_role, wait_until

TIMEOUT = 1.0
HANG_GUARD = 15.0
"""Far beyond TIMEOUT: only a call with no deadline of its own runs into it."""


@pytest.fixture
def peer() -> Iterator[str]:
    with trickling_peer() as url:
        yield url


@pytest.mark.anyio
async def test_the_key_fetch_gives_up_after_the_request_timeout(
    emulator: Emulator, app_service_env: dict[str, str], peer: str
) -> None:
    principal = principal_with_role(emulator)
    auth = auth_for(emulator, peer, principal, request_timeout=TIMEOUT, startup_timeout=0, **FAST)
    async with auth:
        await wait_until(
            lambda: auth.health()["access_key"]["consecutive_failures"] > 0, within=HANG_GUARD
        )
        health = auth.health()
    assert health["status"] == "unavailable"
    message = health["access_key"]["last_error"]["message"]
    assert f"did not answer within {TIMEOUT:g} s while trying to get a temporary access key" in (
        message
    )


@pytest.mark.anyio
async def test_a_rest_call_gives_up_after_the_request_timeout(peer: str) -> None:
    auth = SignalRAuth(endpoint=peer, access_key=ACCESS_KEY, request_timeout=TIMEOUT, **FAST)
    async with auth as signalr:
        with anyio.fail_after(HANG_GUARD), pytest.raises(ServiceError) as caught:
            await signalr.hub("chat").group_exists("room")  # idempotent: retried, each bounded
    assert f"did not answer within {TIMEOUT:g} s while trying to check a group" in str(caught.value)


@pytest.mark.anyio
async def test_a_server_connection_upgrade_gives_up_after_the_handshake_timeout(
    peer: str,
) -> None:
    async with httpx2.AsyncClient() as http:
        pool = make_pool(peer, http, count=1, timings=ConnectionTimings(handshake_timeout=TIMEOUT))
        async with running(pool, wait_up=False):
            await wait_for(lambda: pool.health()["last_error"] is not None, within=HANG_GUARD)
            await wait_for(lambda: pool.health()["consecutive_failures"] >= 2, within=HANG_GUARD)
    message = pool.health()["last_error"]["message"]
    assert f"did not answer within {TIMEOUT:g} s while trying to open a server connection" in (
        message
    )
