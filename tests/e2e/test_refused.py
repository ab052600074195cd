"""Client tokens the service must refuse, and what each real client then shows.

The FastAPI example runs against a fresh emulator in each test, with one thing wrong:

- ``wrong_audience``: the connection string's ``Endpoint`` names another host than the one clients
  connect to (``ClientEndpoint``), so the token's ``aud`` is not the service's;
- ``expired``: the app server's clock is two hours behind, so the one-hour tokens it mints have
  expired already;
- ``expired_key``: the temporary access key the app signs with has expired at the service (the
  emulator's clock moves past its 90 minutes) while the app still uses it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from pysignalr.client import SignalRClient
from pysignalr.exceptions import NegotiationFailure
from websockets.exceptions import InvalidStatus

from examples import fastapi_app
from signalr_asgi_auth import SignalRAuth, SystemClock
from signalr_asgi_auth.emulator import RequestLog, local_emulator

from . import chromium
from .chat_page import log_in
from .support import REDACTED, chromium_or_skip, node_hub, serve_app, unique_user

pytestmark = pytest.mark.e2e

NEGOTIATE_REFUSED = (
    "Failed to complete negotiation with the server: Error: {reason}.*: Status code '401'$"
)
"""How @microsoft/signalr reports a refused service negotiate (the reason is the 401's body)."""
REASONS = {
    "wrong_audience": r"The audience 'http://localhost/client/\?hub=chat' is invalid",
    "expired": "The token expired at ",
    "expired_key": "The signature key '[^']+' expired at ",
}
"""What the emulated service says about each token, in the body of its 401."""


class ClockBehind(SystemClock):
    """An app server's clock that is ``seconds`` behind."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def now(self) -> float:
        return super().now() - self.seconds


@dataclass(frozen=True)
class Refusing:
    app_url: str
    log: RequestLog
    reason: str
    """A pattern for the emulator's description of what is wrong."""

    @property
    def client_error(self) -> str:
        return NEGOTIATE_REFUSED.format(reason=self.reason)


@pytest.fixture(params=["wrong_audience", "expired", "expired_key"])
def refusing(request: pytest.FixtureRequest) -> Iterator[Refusing]:
    case: str = request.param
    with local_emulator() as local:
        if case == "wrong_audience":
            port = urlsplit(local.url).port
            auth = SignalRAuth.from_connection_string(
                f"Endpoint=http://localhost:{port};ClientEndpoint={local.url};"
                f"ServerEndpoint={local.url};AuthType=azure.msi;Version=1.0;"
            )
        elif case == "expired":
            auth = SignalRAuth.from_connection_string(
                local.connection_string, clock=ClockBehind(2 * 3600)
            )
        else:
            auth = SignalRAuth.from_connection_string(
                local.connection_string, token_lifetime=3 * 3600
            )
        with serve_app(fastapi_app.create_app(auth)) as url:  # startup fetched the key
            if case == "expired_key":
                local.emulator.clock.advance(91 * 60)
            local.emulator.log.clear()
            yield Refusing(url, local.emulator.log, REASONS[case])


def _refused_at(log: RequestLog, route: str) -> None:
    entries = log.entries(route)
    assert [entry.status for entry in entries] == [401], entries
    assert entries[0].headers.get("authorization", entries[0].query.get("access_token")) == REDACTED


def test_node_client_is_refused(refusing: Refusing) -> None:
    with node_hub(refusing.app_url, unique_user("node"), start=False) as client:
        error = client.start()

    assert (error["event"], error.get("stage")) == ("error", "start"), client.describe()
    assert re.match(refusing.client_error, error["message"]), client.describe()
    _refused_at(refusing.log, "client.negotiate")
    assert refusing.log.entries("client.websocket") == []


def test_browser_is_refused(refusing: Refusing) -> None:
    executable = chromium_or_skip()
    with chromium.launch(executable) as browser:
        page = browser.open(f"{refusing.app_url}/")
        status = log_in(page, unique_user("browser"))

    assert re.match("Could not connect: " + refusing.client_error, status), status
    _refused_at(refusing.log, "client.negotiate")


async def _pysignalr_failure(url: str) -> BaseException | None:
    """What stopped pysignalr's ``run()``. Caught here: pysignalr's exceptions are frozen
    dataclasses, which ``contextlib`` cannot re-raise (it sets ``__traceback__``)."""
    client = SignalRClient(url, connection_timeout=5, retry_count=1)
    try:
        await asyncio.wait_for(client.run(), timeout=15)
    except NegotiationFailure as failure:
        return failure.__cause__
    return None


def test_pysignalr_is_refused(refusing: Refusing) -> None:
    cause = asyncio.run(_pysignalr_failure(f"{refusing.app_url}/chat?user=py"))

    assert isinstance(cause, InvalidStatus), repr(cause)
    assert str(cause) == "server rejected WebSocket connection: HTTP 401"
    assert re.match(refusing.reason, cause.response.body.decode()), cause.response.body
    _refused_at(refusing.log, "client.websocket")
