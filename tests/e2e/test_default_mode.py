"""Default mode: real SignalR clients talk to each example's ``chat`` hub through the emulated
service, which hands every client connection to the app over the app's server connections.

Each example runs against an emulator of its own (in Default mode the service may route a client
to any app server connected for its hub). The clients: ``@microsoft/signalr`` in Node with the JSON
and the MessagePack hub protocol (two clients at once, one of each, so every message to many
clients carries both payloads), the example page in headless Chromium, and pysignalr. Each one
invokes and gets results, sees a HubMethodError's text and only a generic error for a bug,
receives a broadcast and messages to its user and group, reads a stream and answers a client
result. Last, the app is restarted under connected clients, which reconnect on their own.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from pysignalr.client import SignalRClient
from pysignalr.messages import CompletionMessage

from examples._chat_hub import chat
from signalr_asgi_auth import SignalRAuth
from signalr_asgi_auth.emulator import LocalEmulator, RequestLog, local_emulator, serve_in_thread

from . import chromium
from .chat_page import log_in, messages_on, submit, wait_for_kind
from .support import (
    EXAMPLES,
    REDACTED,
    chromium_or_skip,
    node_hub,
    serve_app,
    signalr_js_version,
    signalr_user_agent,
    unique_user,
)

pytestmark = pytest.mark.e2e

GENERIC = "An unexpected error occurred invoking '{}' on the server."
EMPTY = "A message needs some text."
QUESTION = "Clear the messages for everyone?"
OTHER = {"json": "messagepack", "messagepack": "json"}


@dataclass(frozen=True)
class Running:
    """An example app in Default mode, and its emulator."""

    url: str
    local: LocalEmulator

    @property
    def log(self) -> RequestLog:
        return self.local.emulator.log


def default_mode_auth(local: LocalEmulator) -> SignalRAuth:
    return SignalRAuth.from_connection_string(local.connection_string, hubs=[chat])


@pytest.fixture(scope="module", params=sorted(EXAMPLES))
def running(request: pytest.FixtureRequest) -> Iterator[Running]:
    """Each example in Default mode (``hubs=[chat]``, no upstream), on an emulator of its own."""
    with local_emulator(service_mode="default") as local:
        app = EXAMPLES[request.param](default_mode_auth(local), None)
        with serve_app(app) as url:
            yield Running(url, local)


@pytest.fixture
def log(running: Running) -> RequestLog:
    running.log.clear()
    return running.log


# -- Node, JSON and MessagePack -----------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
def test_node_clients(running: Running, log: RequestLog, protocol: str) -> None:
    ada, bob, group = unique_user("ada"), unique_user("bob"), unique_user("team")

    with node_hub(running.url, ada, protocol=protocol) as a:
        with node_hub(running.url, bob, protocol=OTHER[protocol]) as b:
            a.wait_for("message", target="presence", args=[bob, "joined"])
            sent = a.invoke("send", "hello, everyone")
            b.wait_for("message", target="newMessage", args=[ada, "hello, everyone"])
            joined = a.invoke("join", group)
            to_group = b.invoke("sendToGroup", group, "hello, group")
            to_user = b.invoke("sendToUser", ada, "a note for ada")
            a.wait_for("message", target="groupMessage")
            a.wait_for("message", target="directMessage")
            empty = a.invoke("send", "   ")
            wrong_type = a.invoke("send", 42)
            unknown = a.invoke("shout", "hi")
            crash = a.invoke("crash")
            items, countdown = a.stream("countdown", 3)
            a.send("answer", value=True)
            cleared = a.invoke("clear")
            b.wait_for("message", target="cleared", args=[ada])
            a.send("answer", value=False)
            kept = a.invoke("clear")
        a.wait_for("message", target="presence", args=[bob, "left"])

    assert a.wait_for("version")["client"] == signalr_js_version()
    assert (sent["event"], sent["value"]) == ("result", "delivered"), a.describe()
    assert (joined["event"], joined.get("value")) == ("result", None), a.describe()
    assert (to_group["value"], to_user["value"]) == ("delivered", "delivered"), b.describe()
    assert a.messages("newMessage") == [[ada, "hello, everyone"]]
    assert a.messages("groupMessage") == [[group, bob, "hello, group"]]
    assert a.messages("directMessage") == [[bob, "a note for ada"]]
    assert b.messages("groupMessage") == []  # bob did not join
    assert b.messages("directMessage") == []
    # A HubMethodError's text reaches the client; a bug's does not (the app logs it).
    assert (empty["event"], empty["message"]) == ("failed", EMPTY)
    assert wrong_type["message"] == "Argument 1 ('text') of 'send' must be str, not int."
    assert unknown["message"] == "Unknown hub method 'shout'"
    assert crash["message"] == GENERIC.format("crash")
    # A stream, then a client result answered yes and one answered no.
    assert (items, countdown["event"]) == ([3, 2, 1, 0], "completed"), a.describe()
    assert [e["args"] for e in a.events if e["event"] == "asked"] == [[QUESTION], [QUESTION]]
    assert (cleared["value"], kept["value"]) == (True, False), a.describe()
    assert b.messages("cleared") == [[ada]]
    assert a.messages("presence")[0] == [ada, "joined"]

    # Node negotiated with the service (Bearer header) and opened its WebSocket with the header.
    negotiations = log.entries("client.negotiate")
    assert [e.status for e in negotiations] == [200, 200]
    assert {e.headers["authorization"] for e in negotiations} == {REDACTED}
    assert negotiations[0].headers["user-agent"].startswith(f"{signalr_user_agent()}Linux; NodeJS")
    sockets = [e for e in log.entries("client.websocket") if e.status == 101]
    assert len(sockets) == 2
    assert {frozenset(e.query) for e in sockets} == {frozenset({"hub", "id"})}
    # Nothing went through the REST API or an upstream: the app answered over its connections.
    assert log.entries("signalr.rest") == []


# -- the page in headless Chromium ----------------------------------------------------------------


def test_browser_page(running: Running, log: RequestLog) -> None:
    executable = chromium_or_skip()
    user, group = unique_user("browser"), unique_user("team")

    with chromium.launch(executable) as browser:
        page = browser.open(f"{running.url}/")
        assert log_in(page, user) == f"Connected as {user}.", page.console()
        wait_for_kind(page, "presence")
        submit(page, "join", group=group)
        wait_for_kind(page, "info")
        submit(page, "send", audience="all", to="", text="hello, everyone")
        wait_for_kind(page, "all")
        submit(page, "send", audience="user", to=user, text="a note to myself")
        wait_for_kind(page, "user")
        submit(page, "send", audience="group", to=group, text="hello, group")
        wait_for_kind(page, "group")
        submit(page, "send", audience="all", to="", text="   ")
        wait_for_kind(page, "error")
        page.evaluate("document.getElementById('countdown').click()")
        page.wait_for("document.body.textContent.includes('countdown: done')")
        page.evaluate("connection.invoke('crash').catch((e) => show('error', '', e.message))")
        page.wait_for("document.querySelectorAll('[data-kind=error]').length === 2")
        before_clear = messages_on(page)
        page.evaluate("document.getElementById('clear').click()")
        question = page.answer_dialog(accept=True)
        page.wait_for("document.body.textContent.includes('cleared the messages')")
        after_clear = messages_on(page)
        version = page.evaluate("signalR.VERSION")

    assert version == signalr_js_version()
    shown = {kind: text for kind, text in before_clear if kind in ("all", "user", "group", "info")}
    assert shown == {
        "info": f"You joined {group}.",
        "all": f"{user}: hello, everyone",
        "user": f"{user} (to you): a note to myself",
        "group": f"{user} [{group}]: hello, group",
    }, before_clear
    assert ["presence", f"{user} joined."] in before_clear
    assert [text for kind, text in before_clear if kind == "stream"] == [
        "countdown: 3",
        "countdown: 2",
        "countdown: 1",
        "countdown: 0",
        "countdown: done",
    ]
    assert [text for kind, text in before_clear if kind == "error"] == [
        f"send: {EMPTY}",
        GENERIC.format("crash"),
    ]
    assert question == QUESTION
    assert after_clear == [["info", f"{user} cleared the messages."]]

    # A cross-origin service negotiate, then the WebSocket with the token in the query.
    negotiate = [e for e in log.entries("client.negotiate") if e.status == 200]
    assert len(negotiate) == 1
    assert negotiate[0].headers["origin"] == running.url
    assert negotiate[0].headers["x-signalr-user-agent"].startswith(signalr_user_agent())
    [opened] = [e for e in log.entries("client.websocket") if e.status == 101]
    assert opened.query.keys() == {"hub", "id", "access_token"}
    assert opened.query["access_token"] == REDACTED


# -- pysignalr ----------------------------------------------------------------------------------


async def _until(runner: asyncio.Task[None], done: asyncio.Event, seconds: float = 10) -> None:
    """Wait for ``done``; if the client's run() ends first, raise what it raised."""
    waiter = asyncio.ensure_future(done.wait())
    finished, _ = await asyncio.wait(
        {runner, waiter}, timeout=seconds, return_when="FIRST_COMPLETED"
    )
    if waiter in finished:
        return
    waiter.cancel()
    if runner in finished:
        runner.result()
        msg = "pysignalr's run() returned early"
        raise AssertionError(msg)
    msg = f"nothing after {seconds} s"
    raise TimeoutError(msg)


async def pysignalr_session(app: str, user: str, group: str) -> dict[str, Any]:
    """One pysignalr client: invoke, fail, join and send to its group and user, stream, answer
    a client result. What it got, by name."""
    client = SignalRClient(f"{app}/chat?user={quote(user)}", connection_timeout=5, retry_count=1)
    seen: dict[str, Any] = {"items": []}
    events = {name: asyncio.Event() for name in ("open", "group", "user", "cleared")}

    def store(name: str) -> Any:
        async def on(arguments: list[Any]) -> None:
            seen[name] = arguments
            events[name].set()

        return on

    async def on_open() -> None:
        events["open"].set()

    async def confirm(arguments: list[Any]) -> bool:
        seen["asked"] = arguments
        return True

    async def ignore_error(message: CompletionMessage) -> None:
        pass  # invocation errors reach each call's own callback too

    client.on_open(on_open)
    client.on("groupMessage", store("group"))
    client.on("directMessage", store("user"))
    client.on("cleared", store("cleared"))
    client.on("confirm", confirm)
    client.on_error(ignore_error)
    runner = asyncio.create_task(client.run())

    async def invoke(method: str, *arguments: Any) -> CompletionMessage:
        answered = asyncio.get_running_loop().create_future()

        async def on_completion(message: Any) -> None:
            answered.set_result(message)

        await client.send(method, list(arguments), on_invocation=on_completion)
        return await asyncio.wait_for(answered, 10)

    try:
        await _until(runner, events["open"])
        seen["send"] = await invoke("send", "hello from python")
        seen["crash"] = await invoke("crash")
        await invoke("join", group)
        await invoke("sendToGroup", group, "hello, group")
        await invoke("sendToUser", user, "a note to myself")
        await _until(runner, events["group"])
        await _until(runner, events["user"])
        streamed = asyncio.Event()

        async def on_item(item: Any) -> None:
            seen["items"].append(item)

        async def on_complete(message: Any) -> None:
            streamed.set()

        start: list[Any] = [2]  # pysignalr types stream arguments as strings; any JSON works
        await client.stream("countdown", start, on_next=on_item, on_complete=on_complete)
        await _until(runner, streamed)
        seen["clear"] = await invoke("clear")
        await _until(runner, events["cleared"])
    finally:
        await _stop(client, runner)
    return seen


async def _stop(client: SignalRClient, runner: asyncio.Task[None]) -> None:
    """pysignalr 1.3 has no way to stop: cancel ``run()``, then close the WebSocket it leaves open
    (else a ResourceWarning follows)."""
    socket = client._transport._ws
    runner.cancel()
    with suppress(asyncio.CancelledError):
        await runner
    if socket is not None:
        await socket.close()


def test_pysignalr_client(running: Running, log: RequestLog) -> None:
    user, group = unique_user("python"), unique_user("team")

    seen = asyncio.run(pysignalr_session(running.url, user, group))

    assert (seen["send"].result, seen["send"].error) == ("delivered", None)
    assert seen["crash"].error == GENERIC.format("crash")
    assert seen["group"] == [group, user, "hello, group"]
    assert seen["user"] == [user, "a note to myself"]
    assert seen["items"] == [2, 1, 0]
    assert seen["asked"] == [QUESTION]
    assert seen["clear"].result is True
    assert seen["cleared"] == [user]
    # pysignalr skips the service negotiate: straight to the WebSocket, with the header token.
    opened = [e for e in log.entries("client.websocket") if e.status == 101]
    assert [e.query for e in opened] == [{"hub": "chat"}]
    assert opened[0].headers["authorization"] == REDACTED


# -- the app restarts under connected clients -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _app_on(local: LocalEmulator, name: str, port: int) -> Iterator[str]:
    app = EXAMPLES[name](default_mode_auth(local), None)
    with serve_in_thread(app, port=port, lifespan=True) as url:
        yield url


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_clients_reconnect_when_the_app_restarts(name: str) -> None:
    executable = chromium_or_skip()
    port = _free_port()
    users = {protocol: unique_user(protocol) for protocol in ("json", "messagepack")}
    with (
        local_emulator(service_mode="default") as local,
        chromium.launch(executable) as browser,
        ExitStack() as stack,
    ):
        with _app_on(local, name, port) as url:
            page = browser.open(f"{url}/")
            assert log_in(page, "browser") == "Connected as browser.", page.console()
            clients = [
                stack.enter_context(node_hub(url, user, protocol=protocol))
                for protocol, user in users.items()
            ]
        # The app is gone: its server connections closed, and the service closed its clients.
        for client in clients:
            client.wait_for("reconnecting", timeout=15)
        page.wait_for("document.getElementById('status').dataset.state === 'reconnecting'")

        with _app_on(local, name, port):
            for client in clients:
                client.wait_for("reconnected", timeout=30)
            page.wait_for(
                "document.getElementById('status').dataset.state === 'connected'", timeout=60
            )
            sent = [client.invoke("send", f"back, {client.protocol}") for client in clients]
            for client in clients:
                for other in clients:
                    said = [other.user, f"back, {other.protocol}"]
                    client.wait_for("message", target="newMessage", args=said)
            page.wait_for("document.body.textContent.includes('back, messagepack')")
            gave_up = [e for client in clients for e in client.events if e["event"] == "closed"]

    assert [result["value"] for result in sent] == ["delivered", "delivered"]
    assert gave_up == []
