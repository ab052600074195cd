"""Serverless mode with the same Hub as Default mode's tests (``chat.py``): the emulator posts a
real client's invocations and connection events to ``chat.upstream_endpoint(verifier)``; the
handlers answer, and their ``call.clients`` / ``call.groups`` go through the REST API with the
app's Entra identity. What needs server connections (streams, client results) is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from signalr_asgi_auth import SignalRAuthMiddleware, UpstreamVerifier
from signalr_asgi_auth.emulator import UPSTREAM_ROUTE, Emulator, UpstreamSettings, serve_in_thread

from ..emulator.helpers import TIMEOUT
from ..emulator.hub_client import HubSocket
from ..support import auth_for, principal_with_role
from .chat import Seen, chat_hub, json_client, msgpack_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def app_url(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], seen: Seen
) -> Iterator[str]:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator, "SignalR Service Owner"))
    endpoint = chat_hub(seen).upstream_endpoint(UpstreamVerifier(access_keys=emulator.access_keys))
    app = Starlette(
        routes=[Route("/upstream/{event}", endpoint, methods=["POST"])],
        middleware=[Middleware(SignalRAuthMiddleware, auth=auth)],
    )
    with serve_in_thread(app, lifespan=True) as url:
        emulator.upstream = UpstreamSettings([f"{url}/upstream/{{event}}"])
        yield url


@pytest.fixture
async def ws(
    emulator: Emulator, emulator_url: str, app_url: str, app_service_env: dict[str, str]
) -> AsyncIterator[HubSocket]:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    async with (
        auth as signer,
        httpx2.AsyncClient(timeout=TIMEOUT) as http,
        json_client(http, emulator_url, signer, "ann", claims={"team": "blue"}) as ws,
    ):
        yield ws


OTHERS: list[dict[str, Any]] = []


async def invoke(ws: HubSocket, invocation_id: str, target: str, *arguments: Any) -> dict[str, Any]:
    """The completion; what arrived before it is kept in ``OTHERS``."""
    await ws.send(
        {"type": 1, "invocationId": invocation_id, "target": target, "arguments": list(arguments)}
    )
    while True:
        message = await ws.receive()
        if message.get("type") == 3 and message.get("invocationId") == invocation_id:
            return message
        OTHERS.append(message)


async def received(ws: HubSocket) -> dict[str, Any]:
    return OTHERS.pop(0) if OTHERS else await ws.receive()


async def test_one_hub_answers_a_client_through_the_upstream(
    ws: HubSocket, emulator: Emulator, seen: Seen, caplog: pytest.LogCaptureFixture
) -> None:
    OTHERS.clear()
    assert (await invoke(ws, "1", "send", "hi"))["result"] == "delivered"
    assert await received(ws) == {"type": 1, "target": "newMessage", "arguments": ["ann", "hi"]}
    assert (await invoke(ws, "2", "join", "room"))["result"] == "room"
    assert await received(ws) == {"type": 1, "target": "joined", "arguments": ["ann"]}
    assert (await invoke(ws, "3", "add", 2, 3))["result"] == 5
    assert (await invoke(ws, "4", "fail"))["error"] == "nope"
    assert (await invoke(ws, "5", "shout"))["error"] == "Unknown hub method 'shout'"
    assert (await invoke(ws, "6", "add", "2", 3))["error"] == (
        "Argument 1 ('a') of 'add' must be int, not str."
    )
    assert (await invoke(ws, "7", "ask", "sure?"))["error"] == (
        "Client results (invoke) need Default mode: over upstream requests SignalR Service cannot "
        "carry a client's answer back to the app."
    )
    assert "generic error" not in caplog.text  # a clear error for the client, not a bug logged
    assert (await invoke(ws, "8", "ticks", 2))["error"] == (
        "The streaming hub method 'ticks' needs Default mode (server connections)."
    )
    assert (await invoke(ws, "9", "announce", "extra"))["result"] is None
    assert await received(ws) == {"type": 1, "target": "news", "arguments": ["extra"]}
    assert seen.items == ["connected ann blue serverless"]
    rest = [(e.method, e.path, e.status) for e in emulator.log.entries("signalr.rest")]
    assert rest == [
        ("POST", "/api/hubs/chat/:send", 202),
        ("PUT", f"/api/hubs/chat/groups/room/connections/{rest[1][1].rsplit('/', 1)[1]}", 200),
        ("POST", "/api/hubs/chat/groups/room/:send", 202),
        ("POST", "/api/hubs/chat/:send", 202),
    ]
    assert len(emulator.log.entries(UPSTREAM_ROUTE)) == 10


async def test_a_request_for_another_hub_is_refused(app_url: str, emulator: Emulator) -> None:
    import hashlib
    import hmac

    signature = hmac.new(emulator.access_keys[0].encode(), b"c1", hashlib.sha256).hexdigest()
    headers = {
        "X-ASRS-Connection-Id": "c1",
        "X-ASRS-Hub": "news",
        "X-ASRS-Category": "messages",
        "X-ASRS-Event": "send",
        "X-ASRS-Signature": f"sha256={signature}",
        "Content-Type": "application/json",
    }
    body = b'{"type":1,"target":"send","arguments":["x"]}\x1e'
    async with httpx2.AsyncClient() as http:
        response = await http.post(f"{app_url}/upstream/send", headers=headers, content=body)
        unsigned = await http.post(
            f"{app_url}/upstream/send",
            headers={**headers, "X-ASRS-Signature": "sha256=00"},
            content=body,
        )
    assert response.status_code == 404
    assert response.json()["error"] == "This upstream endpoint serves hub 'chat', not 'news'."
    assert unsigned.status_code == 401


async def test_a_messagepack_client_is_answered_through_the_upstream(
    emulator: Emulator, emulator_url: str, app_url: str, app_service_env: dict[str, str]
) -> None:
    """The emulator forwards a MessagePack client's invocations as ``application/x-msgpack``; the
    hub answers each in MessagePack, and its REST sends reach the client in MessagePack too."""
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    async with (
        auth as signer,
        httpx2.AsyncClient(timeout=TIMEOUT) as http,
        msgpack_client(http, emulator_url, signer, "bea") as ws,
    ):
        await ws.send([1, {}, "1", "send", ["hi"]])
        answers = [await ws.receive(), await ws.receive()]
        await ws.send([1, {}, "2", "add", [2, 3]])
        added = await ws.receive()
        await ws.send([1, {}, "3", "fail", []])
        failed = await ws.receive()
        await ws.send([1, {}, "4", "ticks", [2], []])
        streamed = await ws.receive()
        await ws.send([1, {}, None, "announce", ["extra"]])  # a send: no completion
        news = await ws.receive()

    # The REST broadcast and the completion travel different paths: either may come first.
    assert sorted(answers, key=lambda m: m[0]) == [
        [1, {}, None, "newMessage", ["bea", "hi"]],
        [3, {}, "1", 3, "delivered"],
    ]
    assert added == [3, {}, "2", 3, 5]
    assert failed == [3, {}, "3", 1, "nope"]
    assert streamed == [
        3, {}, "4", 1, "The streaming hub method 'ticks' needs Default mode (server connections).",
    ]  # fmt: skip
    assert news == [1, {}, None, "news", ["extra"]]
    calls = emulator.log.entries(UPSTREAM_ROUTE)
    assert [e.headers["Content-Type"] for e in calls[:2]] == [
        "application/json",  # connected: connection events are JSON whatever the client speaks
        "application/x-msgpack",
    ]
