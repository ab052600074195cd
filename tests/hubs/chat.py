"""The one chat hub the Default-mode and Serverless tests share, as the library promises: the same
``Hub`` serves both modes. Its streaming method (``ticks``) and its client result (``ask``) work in
Default mode only; the Serverless tests assert that they are refused with a clear error. Also the
reference clients the tests connect with (a JSON one and a MessagePack one)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2

from signalr_asgi_auth import SignalRContext
from signalr_asgi_auth.hubs import Hub, HubCall, HubMethodError

from ..emulator.hub_client import HubSocket, MessagePackHubSocket, hub_socket, negotiate


class Seen:
    """What the hub's connection events saw (a sync handler runs in a worker thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[str] = []

    def add(self, item: str) -> None:
        with self._lock:
            self.items.append(item)


def chat_hub(seen: Seen | None = None, **options: Any) -> Hub:
    """A fresh chat hub with ``Hub``'s ``options``; its connection events go to ``seen``."""
    events = Seen() if seen is None else seen
    chat = Hub("chat", **options)

    @chat.on("send")
    async def send(call: HubCall, text: str) -> str:
        await call.clients.all.send("newMessage", call.user_id, text)
        return "delivered"

    @chat.on("join")
    async def join(call: HubCall, group: str) -> str:
        await call.groups.add(group)
        await call.clients.group(group).send("joined", call.user_id)
        return group

    @chat.on("whisper")
    async def whisper(call: HubCall, user: str, text: str) -> None:
        await call.clients.user(user).send("whisper", call.user_id, text)

    @chat.on("add")
    def add(call: HubCall, a: int, b: int) -> int:  # sync: a worker thread
        return a + b

    @chat.on("fail")
    async def fail(call: HubCall) -> None:
        raise HubMethodError("nope")  # noqa: EM101

    @chat.on("crash")
    async def crash(call: HubCall) -> None:
        raise ValueError("internal detail")  # noqa: EM101

    @chat.on("announce")
    async def announce(call: HubCall, text: str) -> None:
        await chat.clients.all.send("news", text)  # the hub's clients, as from a background task

    @chat.on("ticks")
    async def ticks(call: HubCall, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i
        await anyio.sleep_forever()  # until the client cancels

    @chat.on("ask")
    async def ask(call: HubCall, question: str) -> Any:
        return await call.clients.caller.invoke("confirm", question, timeout=5)

    @chat.on_connected
    def connected(call: HubCall) -> None:  # sync: a worker thread
        events.add(f"connected {call.user_id} {call.claim('team')} {call.mode}")

    @chat.on_disconnected
    async def disconnected(call: HubCall, error: str | None) -> None:
        events.add(f"disconnected {call.user_id} {error}")

    return chat


@asynccontextmanager
async def raw_client(
    http: httpx2.AsyncClient,
    url: str,
    signer: SignalRContext,
    user: str,
    claims: Mapping[str, str] | None = None,
) -> AsyncIterator[HubSocket]:
    """A socket to the resource at ``url`` with a token ``signer`` made for it, before its
    handshake."""
    token = await signer.client_token("chat", user_id=user, claims=claims)
    async with token_client(http, url, token) as ws:
        yield ws


@asynccontextmanager
async def token_client(http: httpx2.AsyncClient, url: str, token: str) -> AsyncIterator[HubSocket]:
    """A socket to the resource at ``url`` for a client ``token``, before its handshake (the
    hostile crowd's clients send what they like)."""
    connection_token = (await negotiate(http, url, token)).json()["connectionToken"]
    async with hub_socket(http, url, token, connection_token=connection_token) as ws:
        yield ws


@asynccontextmanager
async def json_client(
    http: httpx2.AsyncClient,
    url: str,
    signer: SignalRContext,
    user: str,
    *,
    claims: Mapping[str, str] | None = None,
) -> AsyncIterator[HubSocket]:
    """A JSON client of the resource at ``url``, with a token ``signer`` made for it."""
    async with raw_client(http, url, signer, user, claims) as ws:
        assert await ws.handshake() == {}
        yield ws


@asynccontextmanager
async def msgpack_client(
    http: httpx2.AsyncClient, url: str, signer: SignalRContext, user: str
) -> AsyncIterator[MessagePackHubSocket]:
    """A MessagePack client of the resource at ``url``, with a token ``signer`` made for it."""
    async with raw_client(http, url, signer, user, None) as raw:
        ws = MessagePackHubSocket(raw.session)
        assert await ws.handshake() == {}
        yield ws
