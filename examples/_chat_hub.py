"""The chat hub both examples serve: the methods the page invokes, and who came and went.

The same :class:`Hub` runs in either service mode. In Default mode (``SignalRAuth(hubs=[chat])``)
the service hands each client connection to the app over the app's server connections; in
Serverless mode it POSTs each invocation and connection event to ``/upstream/{event}``
(``chat.upstream_endpoint(verifier)``) and the sends go through the REST API. The streaming
``countdown`` and the client result in ``clear`` need Default mode: in Serverless mode the client
gets an error saying so.

The user id is the one in the client's token (the app's negotiate put it there), not one the page
sends with each call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio

from signalr_asgi_auth import Hub, HubMethodError
from signalr_asgi_auth.hubs import HubCall

__all__ = ["chat"]

chat = Hub("chat")


def _who(call: HubCall) -> str:
    return call.user_id or "someone"


def _said(text: str) -> str:
    if not text.strip():
        msg = "A message needs some text."
        raise HubMethodError(msg)  # the client's invoke() rejects with this text
    return text[:1000]


def _group(name: str) -> str:
    if not 0 < len(name.strip()) <= 64:
        msg = "A group name has 1 to 64 characters."
        raise HubMethodError(msg)
    return name.strip()


@chat.on_connected
async def joined(call: HubCall) -> None:
    await call.clients.all.send("presence", _who(call), "joined")


@chat.on_disconnected
async def left(call: HubCall) -> None:
    await call.clients.all.send("presence", _who(call), "left")


@chat.on("send")
async def send(call: HubCall, text: str) -> str:
    """``connection.invoke("send", text)``: to everyone; the invocation's result is "delivered"."""
    await call.clients.all.send("newMessage", _who(call), _said(text))
    return "delivered"


@chat.on("sendToUser")
async def send_to_user(call: HubCall, user: str, text: str) -> str:
    """To every connection of one user (every tab they have open)."""
    await call.clients.user(user).send("directMessage", _who(call), _said(text))
    return "delivered"


@chat.on("join")
async def join(call: HubCall, group: str) -> None:
    """Put the caller's connection in a group; done once the service has acknowledged it."""
    await call.groups.add(_group(group))


@chat.on("sendToGroup")
async def send_to_group(call: HubCall, group: str, text: str) -> str:
    await call.clients.group(_group(group)).send("groupMessage", group, _who(call), _said(text))
    return "delivered"


@chat.on("countdown")
async def countdown(call: HubCall, start: int) -> AsyncIterator[int]:
    """A stream (``connection.stream("countdown", 3)``): 3, 2, 1, 0, half a second apart. The
    client's cancel stops it."""
    if not 0 < start <= 10:
        msg = "countdown counts down from 1 to 10."
        raise HubMethodError(msg)
    for number in range(start, -1, -1):
        yield number
        if number:
            await anyio.sleep(0.5)


@chat.on("clear")
async def clear(call: HubCall) -> bool:
    """Clear everyone's messages, if the caller confirms: the app asks the caller's page (a client
    result: its ``connection.on("confirm", ...)`` returns the answer) and waits for it."""
    try:
        sure = await call.clients.caller.invoke(
            "confirm", "Clear the messages for everyone?", timeout=30
        )
    except TimeoutError:
        msg = "No answer within 30 seconds; nothing was cleared."
        raise HubMethodError(msg) from None
    if sure is True:
        await call.clients.all.send("cleared", _who(call))
    return sure is True


@chat.on("crash")
async def crash(call: HubCall) -> None:
    """A bug on purpose, to show what a client sees: not this message, but "An unexpected error
    occurred invoking 'crash' on the server." The traceback goes to the app's log."""
    secret = "a bug in the hub method, with details the client must not see"
    raise RuntimeError(secret)
