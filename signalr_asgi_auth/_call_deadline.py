"""One deadline for the whole of each outbound HTTP call.

httpx2's timeouts bound each step of a call (the connect, each read, each write, the wait for a
pooled connection), never the call: a peer that sends one byte a second never lets a 10 s read
timeout fire, and holds the call, and whatever waits for it, for ever. So every request the
library makes goes through :func:`request_within` (a server connection's upgrade does the same in
``server/_websocket.py``), which bounds it from the first byte sent to the last byte of the body
read, with an anyio deadline on either backend. The error is :class:`DeadlineExceeded`, an
``httpx2.TimeoutException``, so that callers treat it as they treat httpx2's own timeouts (the
REST client retries it only where repeating a call cannot do anything twice).
"""

from __future__ import annotations

from collections.abc import Mapping

import anyio
import httpx2

__all__ = ["DeadlineExceeded", "request_within", "steps"]


class DeadlineExceeded(httpx2.TimeoutException):
    """The whole call took longer than ``seconds``, however steadily bytes came."""

    def __init__(self, seconds: float, request: httpx2.Request) -> None:
        super().__init__(f"no complete answer within {seconds:g} s", request=request)
        self.seconds = seconds


def steps(seconds: float) -> httpx2.Timeout:
    """httpx2's own timeouts under a deadline of ``seconds``: the connect and the wait for a
    pooled connection keep theirs (their errors say nothing was sent, which decides whether a
    call may be repeated); reading and writing have none but the deadline, so a slow answer
    always ends as :class:`DeadlineExceeded`, with one message."""
    return httpx2.Timeout(seconds, read=None, write=None)


async def request_within(
    http: httpx2.AsyncClient,
    method: str,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - the whole call's deadline, applied inside with anyio
    params: httpx2.QueryParams | Mapping[str, str] | tuple[tuple[str, str], ...] | None = None,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> httpx2.Response:
    """``http.request(...)``, body read, all within ``timeout`` seconds."""
    request = http.build_request(
        method, url, params=params, headers=headers, content=content, timeout=steps(timeout)
    )
    with anyio.move_on_after(timeout):
        return await http.send(request)
    raise DeadlineExceeded(timeout, request)
