"""The server connection's WebSocket writes and reads its frames on the anyio byte stream under
httpcore2's upgrade stream when there is one (asyncio), skipping a timeout scope and an exception
map per frame; on trio it goes through httpcore2's interface. Both carry the same messages."""

from __future__ import annotations

import httpx2
import pytest

from signalr_asgi_auth.protocol import (
    HandshakeRequest,
    HandshakeResponse,
    Ping,
    ServiceMessage,
    ServiceMessageReader,
    frame_service_message,
)
from signalr_asgi_auth.server._websocket import open_websocket

from ..independent_service import IndependentService

pytestmark = pytest.mark.anyio


async def test_frames_go_on_the_byte_stream_under_httpcore2_on_asyncio(anyio_backend: str) -> None:
    async with (
        IndependentService.running() as service,
        httpx2.AsyncClient() as http,
        open_websocket(
            http,
            f"{service.url}/server/?hub=chat&cid=c1",
            headers={"authorization": "Bearer unchecked"},
            upgrade_timeout=5,
        ) as socket,
    ):
        fast = socket._bytes is not None
        assert fast is (anyio_backend == "asyncio")
        await socket.send(frame_service_message(HandshakeRequest()))
        await socket.send(frame_service_message(Ping(("echo", "1"))))
        reader = ServiceMessageReader()
        seen: list[ServiceMessage] = []
        while len(seen) < 2:
            seen += reader.feed(await socket.receive())
        assert isinstance(seen[0], HandshakeResponse)
        assert seen[1] == Ping(("echo", "1"))
