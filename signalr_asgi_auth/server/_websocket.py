"""The WebSocket under a server connection: httpx2's anyio client (asyncio and trio alike).

The upgrade request is made here rather than through ``AsyncClient.websocket``: when the service
refuses it (401, 403, 429...), the body says why, and httpx2's helper closes the response before it
can be read. Everything the session raises is turned into :class:`WebSocketClosed`.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx2
import wsproto.events
from httpx2.websockets import AsyncWebSocketSession, HTTPXWSException, WebSocketDisconnect

__all__ = ["UpgradeRefused", "WebSocket", "WebSocketClosed", "open_websocket"]

_MAX_ERROR_BODY = 64 * 1024


class UpgradeRefused(Exception):
    """The service answered the upgrade with ``response`` (read) instead of 101."""

    def __init__(self, response: httpx2.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class WebSocketClosed(Exception):
    """The WebSocket ended; the message says how (never with data from the wire but the reason)."""


class WebSocket:
    """Binary messages in and out of one open WebSocket."""

    def __init__(self, session: AsyncWebSocketSession) -> None:
        self._session = session

    async def send(self, data: bytes) -> None:
        try:
            await self._session.send(wsproto.events.BytesMessage(data=data))
        except (HTTPXWSException, wsproto.utilities.LocalProtocolError, OSError) as exc:
            msg = f"writing failed ({type(exc).__name__})"
            raise WebSocketClosed(msg) from None

    async def receive(self) -> bytes:
        """The next message's bytes (a text message's UTF-8: the service sends binary)."""
        try:
            event = await self._session.receive()
        except WebSocketDisconnect as exc:
            reason = f": {exc.reason[:200]}" if exc.reason else ""
            msg = f"SignalR Service closed the WebSocket (code {exc.code}{reason})"
            raise WebSocketClosed(msg) from None
        except HTTPXWSException as exc:
            msg = f"the WebSocket broke ({type(exc).__name__})"
            raise WebSocketClosed(msg) from None
        if isinstance(event, wsproto.events.BytesMessage):
            return bytes(event.data)
        if isinstance(event, wsproto.events.TextMessage):
            return event.data.encode()
        return b""  # a control event the session did not handle itself: nothing to read


@asynccontextmanager
async def open_websocket(
    http: httpx2.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    upgrade_timeout: float,
    max_message_size: int,
) -> AsyncIterator[WebSocket]:
    """An open WebSocket to ``url``; :class:`UpgradeRefused` for any answer but 101, httpx2's
    transport errors as they are."""
    upgrade = {
        "connection": "upgrade",
        "upgrade": "websocket",
        "sec-websocket-key": base64.b64encode(secrets.token_bytes(16)).decode(),
        "sec-websocket-version": "13",
        **headers,
    }
    async with http.stream("GET", url, headers=upgrade, timeout=upgrade_timeout) as response:
        if response.status_code != 101:
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_ERROR_BODY:
                    break
            refused = httpx2.Response(
                response.status_code,
                headers=response.headers,
                content=body[:_MAX_ERROR_BODY],
                request=response.request,
            )
            raise UpgradeRefused(refused)
        session = AsyncWebSocketSession(
            response.extensions["network_stream"],
            max_message_size_bytes=max_message_size,
            # The service protocol has its own pings, and a receive timeout of its own.
            keepalive_ping_interval_seconds=None,
            keepalive_ping_timeout_seconds=None,
            response=response,
        )
        async with session:
            yield WebSocket(session)
