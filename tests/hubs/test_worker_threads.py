"""Sync hub handlers run in worker threads of the hub's own (``worker_threads``), never in the ones
the library's sync credentials need: a crowd of clients in a slow sync method cannot starve the
Entra token refresh (real azure-identity against the emulator, Default mode)."""

from __future__ import annotations

import threading

import anyio
import anyio.to_thread
import httpx2
import pytest

from signalr_asgi_auth.emulator import Emulator
from signalr_asgi_auth.hubs import Hub, HubCall

from ..emulator.helpers import TIMEOUT
from ..support import auth_for, principal_with_role, wait_until
from .chat import json_client

pytestmark = pytest.mark.anyio

CLIENTS = 5
HUB_THREADS = 4
DEFAULT_THREADS = 3
"""anyio's default limiter cut to fewer tokens than clients in the slow method: before the hub had
threads of its own, they took every one of them."""


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(service_mode="default", token_lifetime=3)  # refreshed every ~1.5 s


class Gate:
    """A slow sync method's door: how many are inside, the most at once, and the release."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inside = 0
        self.most = 0
        self.release = threading.Event()

    def enter(self) -> None:
        with self._lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            self.release.wait(timeout=4 * TIMEOUT)  # only if the test fails before it releases
        finally:
            with self._lock:
                self.inside -= 1


async def test_a_crowd_in_a_slow_sync_method_does_not_starve_the_token_refresh(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    gate = Gate()
    hub = Hub("chat", worker_threads=HUB_THREADS)

    @hub.on("slow")
    def slow(call: HubCall) -> str:
        gate.enter()
        return "done"

    anyio.to_thread.current_default_thread_limiter().total_tokens = DEFAULT_THREADS
    principal = principal_with_role(emulator)
    auth = auth_for(emulator, emulator_url, principal, hubs=[hub], server_connection_count=1)
    try:
        async with (
            auth as context,
            httpx2.AsyncClient(timeout=TIMEOUT) as http,
            anyio.create_task_group() as clients,
        ):
            done: list[str] = []

            async def call_slow(user: str) -> None:
                async with json_client(http, emulator_url, context, user) as ws:
                    await ws.send(
                        {"type": 1, "invocationId": "1", "target": "slow", "arguments": []}
                    )
                    done.append((await ws.receive())["result"])

            for n in range(CLIENTS):
                clients.start_soon(call_slow, f"user{n}")
            await wait_until(lambda: gate.inside >= DEFAULT_THREADS)  # as many as anyio's
            fetched = emulator.log.count("identity.app_service")
            await wait_until(
                lambda: emulator.log.count("identity.app_service") >= fetched + 2, within=15
            )
            assert auth.health()["entra_token"]["consecutive_failures"] == 0
            await wait_until(lambda: gate.inside == HUB_THREADS)
            gate.release.set()
            await wait_until(lambda: len(done) == CLIENTS)
    finally:
        gate.release.set()
    assert gate.most == HUB_THREADS  # the hub's limit held: the fifth waited for a thread
