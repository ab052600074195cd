"""Serving an app on 127.0.0.1: in a thread (tests), or in a task of the running loop (the CLI)."""

from __future__ import annotations

import os
import re

import httpx2
import pytest

from signalr_asgi_auth.emulator import Emulator, local_emulator, serve, serve_in_thread

from .helpers import TIMEOUT


def test_serve_in_thread_serves_until_the_block_ends(emulator: Emulator) -> None:
    with serve_in_thread(emulator.app) as url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert httpx2.get(f"{url}/api/health", timeout=TIMEOUT).status_code == 200

    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"{url}/api/health", timeout=TIMEOUT)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_serve_runs_in_the_current_asyncio_loop(emulator: Emulator) -> None:
    async with httpx2.AsyncClient(timeout=TIMEOUT) as client:
        async with serve(emulator.app) as url:
            response = await client.head(f"{url}/api/health")
        with pytest.raises(httpx2.ConnectError):
            await client.get(f"{url}/api/health")

    assert response.status_code == 200
    assert emulator.log.count("signalr.health") == 1


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_serve_refuses_trio(emulator: Emulator) -> None:
    with pytest.raises(RuntimeError, match="needs asyncio"):
        async with serve(emulator.app):
            pass  # pragma: no cover


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])
def test_serving_off_loopback_is_refused_unless_allowed(emulator: Emulator, host: str) -> None:
    # Refused before anything is bound: the test never listens off loopback.
    with (
        pytest.raises(
            ValueError, match=rf"Refusing to listen on '{re.escape(host)}'.*allow_remote"
        ),
        serve_in_thread(emulator.app, host=host),
    ):
        pass  # pragma: no cover


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_serve_refuses_off_loopback_too(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match=r"Refusing to listen on '0\.0\.0\.0'"):
        async with serve(emulator.app, host="0.0.0.0"):
            pass  # pragma: no cover


@pytest.mark.parametrize("host", ["localhost", "::1", "127.0.0.2"])
def test_every_loopback_host_is_served(emulator: Emulator, host: str) -> None:
    with serve_in_thread(emulator.app, host=host) as url:
        assert httpx2.get(f"{url}/api/health", timeout=TIMEOUT).status_code == 200


def test_local_emulator_refuses_off_loopback_and_leaves_the_environment_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    with (
        pytest.raises(ValueError, match=r"Refusing to listen on '0\.0\.0\.0'"),
        local_emulator(host="0.0.0.0"),
    ):
        pass  # pragma: no cover
    assert "IDENTITY_ENDPOINT" not in os.environ
