"""Fixtures for the end-to-end tests: the embedded emulator and both example apps on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from signalr_asgi_auth import SignalRAuth
from signalr_asgi_auth.emulator import LocalEmulator, RequestLog, local_emulator

from .support import EXAMPLES, serve_app


@pytest.fixture(scope="module")
def local() -> Iterator[LocalEmulator]:
    """The emulator as the examples run it (``local_emulator()``), for one test module."""
    with local_emulator() as running:
        yield running


@pytest.fixture(scope="module")
def apps(local: LocalEmulator) -> Iterator[dict[str, str]]:
    """Both example apps on the managed identity of ``local``: name → base URL."""
    with ExitStack() as stack:
        urls = {}
        for name, create_app in EXAMPLES.items():
            auth = SignalRAuth.from_connection_string(local.connection_string)
            urls[name] = stack.enter_context(serve_app(create_app(auth)))
        yield urls


@pytest.fixture(params=sorted(EXAMPLES))
def app_url(request: pytest.FixtureRequest, apps: dict[str, str]) -> str:
    """Each example app in turn."""
    return apps[request.param]


@pytest.fixture
def log(local: LocalEmulator) -> RequestLog:
    """The emulator's request log, emptied for this test."""
    local.emulator.log.clear()
    return local.emulator.log
