"""The WebSocket under a server connection: httpx2 for the upgrade, wsproto for the frames.

httpx2 makes the upgrade request (the app's proxy, TLS and timeout settings apply, on asyncio and
trio alike); its network stream then carries wsproto's frames, read and written right here. httpx2's
own WebSocket session is not used: it moves every message through a background task and a memory
stream, and measured 3-4x slower than ``websockets`` (``scripts/bench websocket``). When the service
refuses the upgrade (401, 403, 429...), the body says why, and it is read before the response closes.

Messages are handed on as their bytes arrive, not joined first: the service protocol is a stream of
size-prefixed frames that a WebSocket message may hold several of (the service batches them) or a
piece of, so only its frame reader knows what must be held at once, and limits each frame. A cap on
whole WebSocket messages would end the connection, and every client on it, for a batch of small
messages.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import anyio.abc
import httpx2
import wsproto
import wsproto.connection
import wsproto.events
import wsproto.utilities

from .._call_deadline import DeadlineExceeded, steps

__all__ = ["UpgradeRefused", "WebSocket", "WebSocketClosed", "open_websocket"]

_MAX_ERROR_BODY = 64 * 1024
_READ_SIZE = 64 * 1024
_GOING_AWAY = 1001


class UpgradeRefused(Exception):
    """The service answered the upgrade with ``response`` (read) instead of 101."""

    def __init__(self, response: httpx2.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class WebSocketClosed(Exception):
    """The WebSocket ended; the message says how (never with data from the wire but the reason)."""


class WebSocket:
    """Binary messages in and out of one open WebSocket. One task reads; any may write."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream  # httpcore2's AsyncNetworkStream: read(n), write(data), aclose()
        # On asyncio httpcore2 wraps an anyio byte stream, and each of its read() and write()
        # calls opens a timeout scope and an exception map that cost more than the frame does
        # (a profile of one invocation showed four of them). Frames go straight to that byte
        # stream when it is there; otherwise (trio's backend) through httpcore2's interface.
        self._bytes, leading = _byte_stream_under(stream)
        self._protocol = wsproto.connection.Connection(wsproto.ConnectionType.CLIENT)
        self._events: Iterator[wsproto.events.Event] = iter(())
        if leading:  # what came with the 101 response, which the wrapper would have returned first
            self._protocol.receive_data(leading)
            self._events = iter(self._protocol.events())
        self._write_lock = anyio.Lock()

    async def send(self, data: bytes) -> None:
        await self._write(wsproto.events.BytesMessage(data=data))

    async def _write(self, event: wsproto.events.Event) -> None:
        lock = self._write_lock
        try:
            frame = self._protocol.send(event)
            # Uncontended (nearly always), take the lock without the checkpoint acquire() makes:
            # a round through the event loop per message otherwise.
            try:
                lock.acquire_nowait()
            except anyio.WouldBlock:
                await lock.acquire()
            try:
                if self._bytes is not None:
                    await self._bytes.send(frame)
                else:
                    await self._stream.write(frame)
            finally:
                lock.release()
        except Exception as exc:  # wsproto's LocalProtocolError, httpcore2's WriteError and kin
            msg = f"writing failed ({type(exc).__name__})"
            raise WebSocketClosed(msg) from None

    async def _read(self) -> bytes:
        if self._bytes is None:
            data: bytes = await self._stream.read(_READ_SIZE)
            return data
        try:
            return await self._bytes.receive(_READ_SIZE)
        except anyio.EndOfStream:
            return b""

    async def receive(self) -> bytes:
        """The next bytes of a message: a whole message, or as much of one as has arrived (at
        most a read's worth), never empty. A text message's come as UTF-8 (the service sends
        binary)."""
        while True:
            for event in self._events:
                message = await self._handle(event)
                if message is not None:
                    return message
            try:
                data = await self._read()
            except Exception as exc:  # httpcore2's ReadError, anyio's BrokenResourceError and kin
                msg = f"the WebSocket broke ({type(exc).__name__})"
                raise WebSocketClosed(msg) from None
            if not data:
                msg = "SignalR Service closed the connection without a WebSocket close"
                raise WebSocketClosed(msg)
            try:
                self._protocol.receive_data(data)
            except wsproto.utilities.RemoteProtocolError as exc:
                msg = f"SignalR Service broke the WebSocket protocol ({exc})"
                raise WebSocketClosed(msg) from None
            self._events = iter(self._protocol.events())

    async def _handle(self, event: wsproto.events.Event) -> bytes | None:
        if isinstance(event, wsproto.events.Message):
            chunk = event.data.encode() if isinstance(event.data, str) else event.data
            return bytes(chunk) if chunk else None
        if isinstance(event, wsproto.events.Ping):
            await self._write(event.response())
        elif isinstance(event, wsproto.events.CloseConnection):
            with suppress(WebSocketClosed):
                await self._write(event.response())
            reason = f": {event.reason[:200]}" if event.reason else ""
            msg = f"SignalR Service closed the WebSocket (code {event.code}{reason})"
            raise WebSocketClosed(msg)
        return None

    async def close(self, code: int = _GOING_AWAY) -> None:
        """Send a close frame (if still open) and close the connection."""
        if self._protocol.state == wsproto.connection.ConnectionState.OPEN:
            with suppress(WebSocketClosed):
                await self._write(wsproto.events.CloseConnection(code=code))
        with suppress(Exception):  # closing what is already broken
            await self._stream.aclose()


def _byte_stream_under(stream: Any) -> tuple[anyio.abc.ByteStream | None, bytes]:
    """The anyio byte stream under httpcore2's upgrade stream (``AsyncHTTP11UpgradeStream`` over
    ``AnyIOStream``), with the bytes the upgrade stream still holds; ``(None, b"")`` when the
    layers are not those (trio's backend, another httpcore2), and httpcore2's interface is used."""
    leading = getattr(stream, "_leading_data", b"")
    anyio_stream = getattr(stream, "_stream", None)
    inner = getattr(anyio_stream, "_stream", None)
    if isinstance(inner, anyio.abc.ByteStream) and isinstance(leading, bytes):
        return inner, leading
    return None, b""


@asynccontextmanager
async def open_websocket(
    http: httpx2.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    upgrade_timeout: float,
) -> AsyncIterator[WebSocket]:
    """An open WebSocket to ``url`` (``http(s)://``); :class:`UpgradeRefused` for any answer but
    101, httpx2's transport errors as they are, ``DeadlineExceeded`` when the upgrade (or the
    refusal's body) takes longer than ``upgrade_timeout`` in all. Closed on exit."""
    response = await _upgrade(http, url, headers=headers, timeout=upgrade_timeout)
    try:
        socket = WebSocket(response.extensions["network_stream"])
        try:
            yield socket
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                await socket.close()
    finally:
        with anyio.move_on_after(1.0, shield=True):
            await response.aclose()


async def _upgrade(
    http: httpx2.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 - the whole upgrade's deadline, applied inside with anyio
) -> httpx2.Response:
    """The 101 response, its stream open, within ``timeout`` in all; a refusal's body is read
    (at most ``_MAX_ERROR_BODY``) within the same deadline."""
    upgrade = {
        "connection": "upgrade",
        "upgrade": "websocket",
        "sec-websocket-key": base64.b64encode(secrets.token_bytes(16)).decode(),
        "sec-websocket-version": "13",
        **headers,
    }
    request = http.build_request("GET", url, headers=upgrade, timeout=steps(timeout))
    with anyio.move_on_after(timeout):
        response = await http.send(request, stream=True)
        if response.status_code == 101:
            return response
        try:
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_ERROR_BODY:
                    break
        finally:
            with anyio.move_on_after(1.0, shield=True):
                await response.aclose()
        raise UpgradeRefused(
            httpx2.Response(
                response.status_code,
                headers=response.headers,
                content=body[:_MAX_ERROR_BODY],
                request=response.request,
            )
        )
    raise DeadlineExceeded(timeout, request)
