"""Running an ASGI app (the emulator's) with uvicorn on a local port: in a thread, in a task, or in
the foreground (the command line).

An app that implements :class:`ServedApp` is told the URL it is served at, and when that ends: the
emulator uses it as its public URL, the one client tokens' audiences must name.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Protocol, runtime_checkable

import anyio
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from ._upstream import is_loopback

__all__ = ["ServedApp", "run_in_foreground", "serve", "serve_in_thread"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


@runtime_checkable
class ServedApp(Protocol):
    """An ASGI app that wants to know where it is served (the emulator's app does)."""

    def serving_started(self, url: str) -> None: ...

    def serving_stopped(self, url: str) -> None: ...


_ACCESS_TOKEN = re.compile(r"(access_token=)[^&\s\"]*")


class _RedactAccessTokens(logging.Filter):
    """uvicorn logs each WebSocket's path with its query, where browsers carry their token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _ACCESS_TOKEN.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


_WEBSOCKET_LOGGER = logging.getLogger("signalr_asgi_auth.emulator.websocket")
_WEBSOCKET_LOGGER.addFilter(_RedactAccessTokens())


def _uvicorn_version() -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", uvicorn.__version__)[:3])


# uvicorn 0.55 counts a finished denial response as a completed handshake; older releases log
# "ASGI callable returned without completing handshake" at error level after every refused upgrade.
UVICORN_LOGS_DENIALS_AS_ERRORS = _uvicorn_version() < (0, 55)


class _DenialAwareWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default WebSocket implementation, minus a false alarm and a leak.

    After an app refuses an upgrade with an HTTP response (the ASGI denial-response extension, how
    the client endpoint answers 401), uvicorn before 0.55 logs "ASGI callable returned without
    completing handshake" at error level: it does not count a finished denial as a completed
    handshake. On those releases a finished denial is marked complete here, so only real mistakes
    are logged; from 0.55 on uvicorn does it itself and this class leaves it alone.
    Its log lines go to a logger of ours that redacts ``access_token`` from the paths it prints:
    uvicorn's own logger is shared with the app's server, which may log at INFO.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = _WEBSOCKET_LOGGER

    async def send(self, message: Any) -> None:
        await super().send(message)
        if UVICORN_LOGS_DENIALS_AS_ERRORS and _finishes_a_denial(message):
            self.handshake_complete = True


def _finishes_a_denial(message: Any) -> bool:
    return bool(
        message["type"] == "websocket.http.response.body" and not message.get("more_body", False)
    )


def _config(app: ASGIApp, *, log_level: str = "warning", lifespan: bool = False) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="on" if lifespan else "off",
        # "websockets" (the legacy implementation) raises DeprecationWarning with websockets >= 14.
        ws=_DenialAwareWebSocketProtocol,
        log_level=log_level,
        # None: leave the host's logging configuration alone (uvicorn would otherwise replace it).
        log_config=None,
        access_log=False,
        # A test that leaves a delayed request hanging must not hold up shutdown for long.
        timeout_graceful_shutdown=1,
    )


def _bind(host: str, port: int, *, allow_remote: bool) -> socket.socket:
    if not allow_remote and not is_loopback(host):
        msg = (
            f"Refusing to listen on {host!r}: the emulator hands out tokens and keys to anyone "
            "who can reach it. Use a loopback address (127.0.0.1, ::1 or localhost), or pass "
            "allow_remote=True if you mean it."
        )
        raise ValueError(msg)
    # Binding here, not in uvicorn, tells us the port before the server runs (0 = any free port).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the listening
    # socket says TCP; without it Nagle adds ~40 ms to every reused keep-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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
def _announced(app: ASGIApp, url: str) -> Iterator[None]:
    served = app if isinstance(app, ServedApp) else None
    if served is not None:
        served.serving_started(url)
    try:
        yield
    finally:
        if served is not None:
            served.serving_stopped(url)


@contextmanager
def serve_in_thread(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    lifespan: bool = False,
    allow_remote: bool = False,
) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a daemon thread; yield ``http://host:port``.

    ``port=0`` picks a free port. ``lifespan=True`` runs the app's lifespan as a production server
    does (the emulator needs none). The server stops when the block exits (a bounded wait;
    in-flight requests get about a second). A ``host`` that is not loopback raises
    :class:`ValueError` unless ``allow_remote`` is true.
    """
    sock = _bind(host, port, allow_remote=allow_remote)
    with _announced(app, _base_url(sock)), _running_in_thread(app, sock, lifespan) as url:
        yield url


@contextmanager
def _running_in_thread(app: ASGIApp, sock: socket.socket, lifespan: bool) -> Iterator[str]:
    server = uvicorn.Server(_config(app, lifespan=lifespan))
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
async def serve(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, allow_remote: bool = False
) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in a task of the current event loop; yield ``http://host:port``.

    asyncio only, because uvicorn is. The server stops when the block exits. A ``host`` that is
    not loopback raises :class:`ValueError` unless ``allow_remote`` is true.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        msg = "serve() needs asyncio (uvicorn runs on asyncio only); use serve_in_thread() instead."
        raise RuntimeError(msg) from None
    sock = _bind(host, port, allow_remote=allow_remote)
    with _announced(app, _base_url(sock)):
        async with _running_in_task(app, sock) as url:
            yield url


@asynccontextmanager
async def _running_in_task(app: ASGIApp, sock: socket.socket) -> AsyncIterator[str]:
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


def run_in_foreground(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    ready: Callable[[str], None],
    log_level: str = "warning",
    allow_remote: bool = False,
) -> None:
    """Serve ``app`` in this thread until SIGINT or SIGTERM; ``ready(url)`` runs once the port is
    bound, before the first request is answered (the command line prints its banner there)."""
    sock = _bind(host, port, allow_remote=allow_remote)
    url = _base_url(sock)
    try:
        with _announced(app, url):
            ready(url)
            uvicorn.Server(_config(app, log_level=log_level)).run(sockets=[sock])
    finally:
        sock.close()
