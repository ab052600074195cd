"""What the emulator's WebSocket sessions (clients in either mode, app servers) share: the accept
headers, writing queued frames, closing a socket that may be gone, and the query a client's app
server or upstream may see."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlencode

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ._outbox import CLOSE_DEADLINE

__all__ = ["accept_headers", "client_query", "close_quietly", "send_frames"]

# The client's credentials: its token and its connection token.
_UNFORWARDED_QUERY = frozenset({"access_token", "id"})

logger = logging.getLogger(__name__)


def accept_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """Headers for ``websocket.accept`` (a fault may add some)."""
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]


async def send_frames(
    websocket: WebSocket, batches: AsyncIterator[list[str] | list[bytes] | list[str | bytes]]
) -> None:
    """Write each batch of queued frames: text as text messages, bytes as binary ones."""
    async for frames in batches:
        for frame in frames:
            if isinstance(frame, bytes):
                await websocket.send_bytes(frame)
            else:
                await websocket.send_text(frame)


async def close_quietly(websocket: WebSocket, code: int = 1000, reason: str = "") -> None:
    """Close the socket unless it is closed already; a peer that vanished meanwhile is no error.
    A peer that does not read gets :data:`CLOSE_DEADLINE` seconds for its close frame (the server
    writes nothing more to a full socket until it drains)."""
    if websocket.application_state is WebSocketState.CONNECTED:
        with anyio.move_on_after(CLOSE_DEADLINE):
            try:
                await websocket.close(code, reason[:120])  # a close frame holds 123 bytes of reason
            except (WebSocketDisconnect, OSError, RuntimeError):
                logger.debug("The socket was gone before the close frame.", exc_info=True)


def client_query(websocket: WebSocket) -> str:
    """The client's query string (``?…``) without its credentials, as the service forwards it."""
    pairs = [
        (name, value)
        for name, value in websocket.query_params.multi_items()
        if name not in _UNFORWARDED_QUERY
    ]
    return f"?{urlencode(pairs)}" if pairs else ""
