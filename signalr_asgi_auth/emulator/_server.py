"""Running an ASGI app (the emulator's) with uvicorn on a local port: in a thread, or in a task."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio
import uvicorn
from starlette.types import ASGIApp

__all__ = ["serve", "serve_in_thread"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


def _config(app: ASGIApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="off",
        # "websockets" (the legacy implementation) raises DeprecationWarning with websockets >= 14.
        ws="websockets-sansio",
        log_level="warning",
        # None: leave the host's logging configuration alone (uvicorn would otherwise replace it).
        log_config=None,
        access_log=False,
        # A test that leaves a delayed request hanging must not hold up shutdown for long.
        timeout_graceful_shutdown=1,
    )


def _bind(host: str, port: int) -> socket.socket:
    # Binding here, not in uvicorn, tells us the port before the server runs (0 = any free port).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@contextmanager
def serve_in_thread(app: ASGIApp, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` with uvicorn in a daemon thread on a free port; yield ``http://host:port``.

    The server stops when the block exits (a bounded wait; in-flight requests get about a second).
    """
    sock = _bind(host, 0)
    server = uvicorn.Server(_config(app))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="emulator-server", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                msg = f"The server on {_base_url(sock)} did not start within {_START_TIMEOUT} s."
                raise RuntimeError(msg)
            time.sleep(0.005)
        yield _base_url(sock)
    finally:
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(_STOP_TIMEOUT)
        sock.close()


@asynccontextmanager
async def serve(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in a task of the current event loop; yield ``http://host:port``.

    asyncio only, because uvicorn is. The server stops when the block exits.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        msg = "serve() needs asyncio (uvicorn runs on asyncio only); use serve_in_thread() instead."
        raise RuntimeError(msg) from None
    sock = _bind(host, port)
    server = uvicorn.Server(_config(app))
    stopped = anyio.Event()

    async def run() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            stopped.set()

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run)
            with anyio.fail_after(_START_TIMEOUT):
                while not server.started:
                    if stopped.is_set():
                        msg = f"The server on {_base_url(sock)} stopped during start-up."
                        raise RuntimeError(msg)
                    await anyio.sleep(0.005)
            try:
                yield _base_url(sock)
            finally:
                server.should_exit = True
    finally:
        sock.close()
