"""Fixtures for the end-to-end tests in Serverless mode (and for the refusals): the embedded
emulator as ``local_emulator()`` runs it, and both example apps on 127.0.0.1 taking its upstream
calls. (Default mode needs an emulator per app: ``test_default_mode.py`` has its own fixtures.)

The emulator forwards nothing upstream unless a test asks for ``upstream``: then client
invocations and connection events of hub ``chat`` go to the app under test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from examples._run import emulator_upstream, emulator_verifier
from signalr_asgi_auth import SignalRAuth
from signalr_asgi_auth.emulator import LocalEmulator, RequestLog, UpstreamSettings, local_emulator

from .support import EXAMPLES, serve_app


@pytest.fixture(scope="module")
def local() -> Iterator[LocalEmulator]:
    """The emulator as the examples run it (``local_emulator()``), for one test module."""
    with local_emulator() as running:
        yield running


@pytest.fixture(scope="module")
def apps(local: LocalEmulator) -> Iterator[dict[str, str]]:
    """Both example apps on the managed identity of ``local``, taking its upstream calls: name →
    base URL."""
    with ExitStack() as stack:
        urls = {}
        for name, create_app in EXAMPLES.items():
            auth = SignalRAuth.from_connection_string(local.connection_string)
            app = create_app(auth, emulator_verifier(local))
            urls[name] = stack.enter_context(serve_app(app))
        yield urls


@pytest.fixture(params=sorted(EXAMPLES))
def app_url(request: pytest.FixtureRequest, apps: dict[str, str], local: LocalEmulator) -> str:
    """Each example app in turn (no upstream unless the test asks for ``upstream``)."""
    local.emulator.upstream = UpstreamSettings()
    return apps[request.param]


@pytest.fixture
def upstream(app_url: str, local: LocalEmulator) -> Iterator[str]:
    """The emulator's upstream pointed at the app under test (as ``python -m examples.<app>``
    does); the app's upstream URL template."""
    settings = emulator_upstream(app_url)
    local.emulator.upstream = settings
    yield settings.templates[0].url_template
    local.emulator.upstream = UpstreamSettings()


@pytest.fixture
def log(local: LocalEmulator) -> RequestLog:
    """The emulator's request log, emptied for this test."""
    local.emulator.log.clear()
    return local.emulator.log
