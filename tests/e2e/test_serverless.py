"""Serverless mode with upstream: the examples' same ``Hub`` reached through the emulated service,
which POSTs each invocation and connection event to the app's upstream URL with a managed-identity
token; the app verifies it, runs the hub method, sends through the REST API and answers the
invocation. Streams and client results need Default mode."""

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
from .support import REDACTED, chromium_or_skip, node_hub, serve_app, unique_user

pytestmark = pytest.mark.e2e

GENERIC = "An unexpected error occurred invoking '{}' on the server."


def upstream_calls(log: RequestLog, *, until: str, within: float = 10.0) -> list[tuple[str, int]]:
    """The upstream calls (URL, status) once one to ``until`` is logged: waiting for the
    disconnected event keeps its REST broadcast out of the next test's log."""
    deadline = time.monotonic() + within
    while True:
        calls = [(e.path, e.status) for e in log.entries(UPSTREAM_ROUTE)]
        if any(path.endswith(until) for path, _ in calls) or time.monotonic() > deadline:
            return calls
        time.sleep(0.02)


def test_node_client_through_the_upstream(
    upstream: str, app_url: str, log: RequestLog, local: LocalEmulator
) -> None:
    user, group = unique_user("node"), unique_user("team")

    with node_hub(app_url, user) as client:
        client.wait_for("message", target="presence", args=[user, "joined"])
        sent = client.invoke("send", "hello through the hub")
        joined = client.invoke("join", group)
        to_group = client.invoke("sendToGroup", group, "hello, group")
        to_user = client.invoke("sendToUser", user, "a note to myself")
        client.wait_for("message", target="groupMessage")
        client.wait_for("message", target="directMessage")
        empty = client.invoke("send", "   ")
        crash = client.invoke("crash")
        items, countdown = client.stream("countdown", 3)
        clear = client.invoke("clear")

    assert (sent["event"], sent["value"]) == ("result", "delivered"), client.describe()
    assert joined["event"] == "result", client.describe()
    assert (to_group["value"], to_user["value"]) == ("delivered", "delivered")
    # Under the user id the service vouched for (X-ASRS-User-Id), not one the client sent.
    assert client.messages("newMessage") == [[user, "hello through the hub"]]
    assert client.messages("groupMessage") == [[group, user, "hello, group"]]
    assert client.messages("directMessage") == [[user, "a note to myself"]]
    assert empty["message"] == "A message needs some text."
    assert crash["message"] == GENERIC.format("crash")
    # The service takes no streams over upstream, and a client result cannot come back through
    # it: the hub's invoke fails with why, and the client hears it.
    assert (items, countdown["event"]) == ([], "failed")
    assert clear["message"].startswith("Client results (invoke) need Default mode"), clear

    base = upstream.removesuffix("{event}")
    calls = upstream_calls(log, until="/disconnected")
    assert calls[0] == (f"{base}connected", 204)
    assert calls[-1] == (f"{base}disconnected", 204)
    assert (f"{base}send", 200) in calls
    upstream_entries = log.entries(UPSTREAM_ROUTE)
    assert {e.headers["Authorization"] for e in upstream_entries} == {REDACTED}
    assert {e.principal_oid for e in upstream_entries} == {local.emulator.system_identity.object_id}
    assert {e.headers["X-ASRS-User-Id"] for e in upstream_entries} == {user}
    # The hub's sends and the group join went through the REST API, with the app's Entra token.
    rest = [(e.method, e.path, e.status) for e in log.entries("signalr.rest")]
    assert ("POST", "/api/hubs/chat/:send", 202) in rest
    assert ("POST", f"/api/hubs/chat/groups/{group}/:send", 202) in rest
    assert ("POST", f"/api/hubs/chat/users/{user}/:send", 202) in rest
    assert [path for method, path, _ in rest if method == "PUT"] == [
        f"/api/hubs/chat/groups/{group}/connections/{client.wait_for('started')['connectionId']}"
    ]
    assert {e.headers["authorization"] for e in log.entries("signalr.rest")} == {REDACTED}


def test_browser_page_through_the_upstream(upstream: str, app_url: str, log: RequestLog) -> None:
    executable = chromium_or_skip()
    user = unique_user("browser")

    with chromium.launch(executable) as browser:
        page = browser.open(f"{app_url}/")
        assert log_in(page, user) == f"Connected as {user}.", page.console()
        wait_for_kind(page, "presence")
        submit(page, "send", audience="all", to="", text="hello through the hub")
        wait_for_kind(page, "all")
        messages = messages_on(page)

    assert ["presence", f"{user} joined."] in messages
    assert ["all", f"{user}: hello through the hub"] in messages
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
        with node_hub(service_mode_app, user) as client:
            sent = client.invoke("send", "hello through the hub")
        calls = upstream_calls(log, until="/disconnected")
    finally:
        local.emulator.upstream = UpstreamSettings()

    assert sent["value"] == "delivered", client.describe()
    [issued] = log.entries("signalr.generate_token")
    assert (issued.method, issued.status) == ("POST", 200)
    assert issued.query["userId"] == user
    assert log.entries("signalr.access_key") == []  # no local signing in service mode
    assert [path.rsplit("/", 1)[1] for path, _ in calls] == ["connected", "send", "disconnected"]


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
            submit(page, "send", audience="all", to="", text="hello through the hub")
            wait_for_kind(page, "all")
            messages = messages_on(page)
        calls = upstream_calls(log, until="/disconnected")
    finally:
        local.emulator.upstream = UpstreamSettings()

    assert ["all", f"{user}: hello through the hub"] in messages
    [issued] = log.entries("signalr.generate_token")
    assert issued.query["userId"] == user
    assert [path.rsplit("/", 1)[1] for path, _ in calls] == ["connected", "send", "disconnected"]


def test_messagepack_node_client_through_the_upstream(
    upstream: str, app_url: str, log: RequestLog
) -> None:
    """``@microsoft/signalr-protocol-msgpack`` in Serverless mode: the service POSTs the client's
    invocation as MessagePack, the hub's answer comes back in MessagePack, and the hub's broadcast
    (a REST send) reaches it and a JSON client alike."""
    user, watcher = unique_user("msgpack"), unique_user("json")

    with (
        node_hub(app_url, watcher) as other,
        node_hub(app_url, user, protocol="messagepack") as client,
    ):
        other.wait_for("message", target="presence", args=[user, "joined"])
        sent = client.invoke("send", "hello in MessagePack")
        client.wait_for("message", target="newMessage", args=[user, "hello in MessagePack"])
        other.wait_for("message", target="newMessage", args=[user, "hello in MessagePack"])
        empty = client.invoke("send", "   ")

    assert (sent["event"], sent["value"]) == ("result", "delivered"), client.describe()
    assert empty["message"] == "A message needs some text.", client.describe()
    assert client.messages("newMessage") == [[user, "hello in MessagePack"]]
    calls = upstream_calls(log, until="/disconnected")
    types = {
        (e.path.rsplit("/", 1)[1], e.headers["X-ASRS-User-Id"], e.headers["Content-Type"])
        for e in log.entries(UPSTREAM_ROUTE)
    }
    assert ("send", user, "application/x-msgpack") in types, types
    assert ("connected", user, "application/json") in types, types
    assert (f"{upstream.removesuffix('{event}')}send", 200) in calls
