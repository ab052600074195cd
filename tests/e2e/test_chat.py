"""Real SignalR clients chat through each example app and the emulator.

Each client negotiates with the app (which answers with the emulated service's URL and a client
token), connects to the service, joins a group through the app, and receives what the app sends
through the REST API: a broadcast, a message to its user and a message to its group. The emulator's
request log then shows what the client really sent.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from pysignalr.client import SignalRClient

from signalr_asgi_auth.emulator import LogEntry, RequestLog

from . import chromium
from .chat_page import log_in, messages_on, submit, wait_for_kind
from .support import (
    KINDS,
    REDACTED,
    chromium_or_skip,
    run_node_chat,
    signalr_js_version,
    signalr_user_agent,
    unique_user,
)

pytestmark = pytest.mark.e2e


def expected_texts(user: str, group: str) -> dict[str, str]:
    """What the page shows for each kind of message (``examples/static/chat.js``)."""
    return {
        "all": f"{user}: hello, everyone",
        "user": f"{user} (to you): a note to myself",
        "group": f"{user} [{group}]: hello, group",
    }


def expected_arguments(user: str, group: str) -> dict[str, list[str]]:
    """The arguments of newMessage, directMessage and groupMessage as the apps send them."""
    return {
        "all": [user, "hello, everyone"],
        "user": [user, "a note to myself"],
        "group": [group, user, "hello, group"],
    }


def only(entries: list[LogEntry], *, status: int | None = None) -> LogEntry:
    matching = [e for e in entries if status is None or e.status == status]
    assert len(matching) == 1, entries
    return matching[0]


# -- (a) Node with @microsoft/signalr -----------------------------------------------------------


def test_node_client(app_url: str, log: RequestLog) -> None:
    user, group = unique_user("node"), unique_user("team")

    run = run_node_chat(app_url, user, group)

    assert run.returncode == 0, run.describe()
    assert run.first("version")["client"] == signalr_js_version()
    received = {e["kind"]: e["args"] for e in run.events_of("message")}
    assert received == expected_arguments(user, group)
    assert [e["status"] for e in run.events_of("posted")] == [204, 202, 202, 202]

    # The service negotiate carried the app's token as a Bearer header (redacted in the log).
    negotiate = only(log.entries("client.negotiate"))
    assert negotiate.method == "POST"
    assert negotiate.status == 200
    assert negotiate.query == {"hub": "chat", "negotiateVersion": "1"}
    assert negotiate.headers["authorization"] == REDACTED
    assert negotiate.headers["x-requested-with"] == "XMLHttpRequest"
    assert negotiate.headers["user-agent"].startswith(f"{signalr_user_agent()}Linux; NodeJS; ")
    # Node then opened the WebSocket with the connection token as `id` and the header, no query token.
    socket = only(log.entries("client.websocket"), status=101)
    assert socket.query.keys() == {"hub", "id"}
    assert socket.query["id"] != run.first("connected")["connectionId"]  # the connectionToken
    assert socket.headers["authorization"] == REDACTED
    # The app sent each message on through the REST API, with its Entra token.
    rest = log.entries("signalr.rest")
    assert [(e.method, e.path) for e in rest] == [
        ("PUT", f"/api/hubs/chat/users/{user}/groups/{group}"),
        ("POST", "/api/hubs/chat/:send"),
        ("POST", f"/api/hubs/chat/users/{user}/:send"),
        ("POST", f"/api/hubs/chat/groups/{group}/:send"),
    ]
    assert {e.headers["authorization"] for e in rest} == {REDACTED}


# -- (b) headless Chromium on the example page ----------------------------------------------------


def test_browser_page(app_url: str, log: RequestLog) -> None:
    executable = chromium_or_skip()
    user, group = unique_user("browser"), unique_user("team")

    with chromium.launch(executable) as browser:
        page = browser.open(f"{app_url}/")
        assert log_in(page, user) == f"Connected as {user}.", page.console()
        submit(page, "join", group=group)
        wait_for_kind(page, "info")
        submit(page, "send", audience="all", to="", text="hello, everyone")
        wait_for_kind(page, "all")
        submit(page, "send", audience="user", to=user, text="a note to myself")
        wait_for_kind(page, "user")
        submit(page, "send", audience="group", to=group, text="hello, group")
        wait_for_kind(page, "group")
        messages = messages_on(page)
        version = page.evaluate("signalR.VERSION")

    assert version == signalr_js_version()
    shown = {kind: text for kind, text in messages if kind in KINDS}
    assert shown == expected_texts(user, group), messages
    assert not [m for m in messages if m[0] == "error"], messages

    # A cross-origin, credentialed service negotiate (the page is on the app's origin)...
    negotiate = only(log.entries("client.negotiate"), status=200)
    assert negotiate.query == {"hub": "chat", "negotiateVersion": "1"}
    assert negotiate.headers["authorization"] == REDACTED
    assert negotiate.headers["origin"] == app_url
    assert negotiate.headers["x-signalr-user-agent"].startswith(f"{signalr_user_agent()}Unknown OS")
    # ...then the WebSocket with `id` and the token in the query (browsers cannot set headers).
    socket = only(log.entries("client.websocket"), status=101)
    assert socket.query.keys() == {"hub", "id", "access_token"}
    assert socket.query["access_token"] == REDACTED
    assert "authorization" not in socket.headers
    assert socket.headers["origin"] == app_url


# -- (c) pysignalr --------------------------------------------------------------------------------


async def _until(runner: asyncio.Task[None], event: asyncio.Event, seconds: float) -> None:
    """Wait for ``event``; if the client's run() ends first, raise what it raised."""
    waiter = asyncio.ensure_future(event.wait())
    done, _ = await asyncio.wait({runner, waiter}, timeout=seconds, return_when="FIRST_COMPLETED")
    if waiter in done:
        return
    waiter.cancel()
    if runner in done:
        runner.result()
        msg = "pysignalr's run() returned before the connection opened"
        raise AssertionError(msg)
    msg = f"nothing after {seconds} s"
    raise TimeoutError(msg)


async def chat_with_pysignalr(app: str, user: str, group: str) -> dict[str, list[Any]]:
    """Connect with pysignalr, have the app send the three messages; what arrived, by kind."""
    client = SignalRClient(f"{app}/chat?user={quote(user)}", connection_timeout=5, retry_count=1)
    received: dict[str, list[Any]] = {}
    opened, all_arrived = asyncio.Event(), asyncio.Event()

    def receiver(kind: str) -> Any:
        async def on_message(arguments: list[Any]) -> None:
            received[kind] = arguments
            if received.keys() == KINDS:
                all_arrived.set()

        return on_message

    async def on_open() -> None:
        opened.set()

    client.on("newMessage", receiver("all"))
    client.on("directMessage", receiver("user"))
    client.on("groupMessage", receiver("group"))
    client.on_open(on_open)
    runner = asyncio.create_task(client.run())
    try:
        await _until(runner, opened, 10)
        async with httpx2.AsyncClient(base_url=app, timeout=5) as http:
            said = {"user": user}
            for path, body in (
                (f"/groups/{quote(group)}/members", said),
                ("/messages", {**said, "text": "hello, everyone"}),
                (f"/users/{quote(user)}/messages", {**said, "text": "a note to myself"}),
                (f"/groups/{quote(group)}/messages", {**said, "text": "hello, group"}),
            ):
                (await http.post(path, json=body)).raise_for_status()
        await _until(runner, all_arrived, 10)
    finally:
        await _stop(client, runner)
    return received


async def _stop(client: SignalRClient, runner: asyncio.Task[None]) -> None:
    """pysignalr 1.3 has no way to stop: cancel ``run()``, then close the WebSocket it leaves open
    (else a ResourceWarning follows)."""
    socket = client._transport._ws
    runner.cancel()
    with suppress(asyncio.CancelledError):
        await runner
    if socket is not None:
        await socket.close()


def test_pysignalr_client(app_url: str, log: RequestLog) -> None:
    user, group = unique_user("python"), unique_user("team")

    received = asyncio.run(chat_with_pysignalr(app_url, user, group))

    assert received == expected_arguments(user, group)
    # pysignalr skips the service negotiate: straight to the WebSocket, no `id`, header token.
    assert log.entries("client.negotiate") == []
    socket = only(log.entries("client.websocket"), status=101)
    assert socket.query == {"hub": "chat"}
    assert socket.headers["authorization"] == REDACTED
