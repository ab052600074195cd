"""Real SignalR clients invoke the hub's ``send`` through the emulated service, which POSTs it to
each example app's upstream URL with a managed-identity token; the app verifies it, broadcasts the
message through the REST API and answers the invocation. Connecting and disconnecting reach the
app the same way, and it tells everyone (``presence``)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from examples import starlette_app
from examples._run import emulator_upstream, emulator_verifier
from signalr_asgi_auth import SignalRAuth
from signalr_asgi_auth.emulator import UPSTREAM_ROUTE, LocalEmulator, RequestLog, UpstreamSettings

from . import chromium
from .chat_page import log_in, messages_on, submit, wait_for_kind
from .support import REDACTED, chromium_or_skip, run_node_chat, serve_app, unique_user

pytestmark = pytest.mark.e2e

HUB_TEXT = "hello through the hub"  # js/chat_client.cjs sends this


def upstream_calls(log: RequestLog, *, until: str, within: float = 10.0) -> list[tuple[str, int]]:
    """The upstream calls (URL, status) once one to ``until`` is logged: waiting for the
    disconnected event keeps its REST broadcast out of the next test's log."""
    deadline = time.monotonic() + within
    while True:
        calls = [(e.path, e.status) for e in log.entries(UPSTREAM_ROUTE)]
        if any(path.endswith(until) for path, _ in calls) or time.monotonic() > deadline:
            return calls
        time.sleep(0.02)


def test_node_client_invokes_send_through_the_upstream(
    upstream: str, app_url: str, log: RequestLog, local: LocalEmulator
) -> None:
    user = unique_user("node")

    run = run_node_chat(app_url, user, "unused", via_hub=True)

    assert run.returncode == 0, run.describe()
    assert [e["result"] for e in run.events_of("invoked")] == ["delivered"]
    assert run.first("invokeError")["message"] == (
        "The chat hub has no method 'shout'; it has send(text)."
    )
    received = {e["kind"]: e["args"] for e in run.events_of("message")}
    assert received["hub"] == [user, HUB_TEXT]  # under the user id the service vouched for
    assert received["presence"] == [user, "joined"]

    base = upstream.removesuffix("{event}")
    assert upstream_calls(log, until="/disconnected") == [
        (f"{base}connected", 204),
        (f"{base}send", 200),
        (f"{base}shout", 200),  # the app's answer is a completion with an error
        (f"{base}disconnected", 204),
    ]
    calls = log.entries(UPSTREAM_ROUTE)
    assert {e.headers["Authorization"] for e in calls} == {REDACTED}
    assert {e.principal_oid for e in calls} == {local.emulator.system_identity.object_id}
    assert {e.headers["X-ASRS-User-Id"] for e in calls} == {user}
    # The app broadcast the presence twice and the message once, with its own Entra token.
    rest = [(e.method, e.path, e.status) for e in log.entries("signalr.rest")]
    assert rest == [("POST", "/api/hubs/chat/:send", 202)] * 3


def test_browser_page_invokes_send_and_shows_presence(
    upstream: str, app_url: str, log: RequestLog
) -> None:
    executable = chromium_or_skip()
    user = unique_user("browser")

    with chromium.launch(executable) as browser:
        page = browser.open(f"{app_url}/")
        assert log_in(page, user) == f"Connected as {user}.", page.console()
        wait_for_kind(page, "presence")
        submit(page, "send", audience="hub", to="", text=HUB_TEXT)
        wait_for_kind(page, "all")
        messages = messages_on(page)

    assert ["presence", f"{user} joined."] in messages
    assert ["all", f"{user}: {HUB_TEXT}"] in messages
    assert not [m for m in messages if m[0] == "error"], messages
    paths = [path for path, _ in upstream_calls(log, until="/disconnected")]
    assert [path.rsplit("/", 1)[1] for path in paths] == ["connected", "send", "disconnected"]


# -- service-issued client tokens (mode="service") ----------------------------------------------


@pytest.fixture(scope="module")
def service_mode_app(local: LocalEmulator) -> Iterator[str]:
    """The Starlette example asking the service for each client token (``:generateToken``)."""
    auth = SignalRAuth.from_connection_string(local.connection_string, mode="service")
    with serve_app(starlette_app.create_app(auth, emulator_verifier(local))) as url:
        yield url


def test_node_client_on_service_issued_tokens_through_the_upstream(
    service_mode_app: str, log: RequestLog, local: LocalEmulator
) -> None:
    local.emulator.upstream = emulator_upstream(service_mode_app)
    user = unique_user("service")
    try:
        run = run_node_chat(service_mode_app, user, "unused", via_hub=True)
        calls = upstream_calls(log, until="/disconnected")
    finally:
        local.emulator.upstream = UpstreamSettings()

    assert run.returncode == 0, run.describe()
    assert [e["result"] for e in run.events_of("invoked")] == ["delivered"]
    [issued] = log.entries("signalr.generate_token")
    assert (issued.method, issued.status) == ("POST", 200)
    assert issued.query["userId"] == user
    assert log.entries("signalr.access_key") == []  # no local signing in service mode
    assert [path.rsplit("/", 1)[1] for path, _ in calls] == [
        "connected",
        "send",
        "shout",
        "disconnected",
    ]


def test_browser_page_on_service_issued_tokens_through_the_upstream(
    service_mode_app: str, log: RequestLog, local: LocalEmulator
) -> None:
    executable = chromium_or_skip()
    local.emulator.upstream = emulator_upstream(service_mode_app)
    user = unique_user("browser")
    try:
        with chromium.launch(executable) as browser:
            page = browser.open(f"{service_mode_app}/")
            assert log_in(page, user) == f"Connected as {user}.", page.console()
            submit(page, "send", audience="hub", to="", text=HUB_TEXT)
            wait_for_kind(page, "all")
            messages = messages_on(page)
        calls = upstream_calls(log, until="/disconnected")
    finally:
        local.emulator.upstream = UpstreamSettings()

    assert ["all", f"{user}: {HUB_TEXT}"] in messages
    [issued] = log.entries("signalr.generate_token")
    assert issued.query["userId"] == user
    assert [path.rsplit("/", 1)[1] for path, _ in calls] == ["connected", "send", "disconnected"]
