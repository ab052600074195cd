"""The WebSocket client under server connections: httpx2's (anyio) against ``websockets``.

Server connections need a WebSocket client that runs on asyncio and trio; httpx2's does (wsproto
over anyio streams), ``websockets`` runs on asyncio only. This measures what the choice costs. One
echo server (``websockets``, in a process of its own, pinned to a core) answers every client:

- round trips: send a 100-byte binary message, wait for its echo, again, for a second;
- throughput: 20 messages in flight (a sender and a receiver task), for a second.

Clients, interleaved over rounds in rotating order (a row's value is its median round):
``httpx2`` through the library's own wrapper (``signalr_asgi_auth.server._websocket``: httpx2's
upgrade, wsproto's frames read and written in place) on asyncio and on trio, httpx2's own WebSocket
session (a background reader task and a memory stream per message), and
``websockets.asyncio.client`` on asyncio (the baseline).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx2
from websockets.asyncio.client import connect

from signalr_asgi_auth.server._websocket import open_websocket

from ._common import Goal, Result, Settings, median, running_server

__all__ = ["NAME", "TITLE", "run"]

NAME = "websocket"
TITLE = "(w) WebSocket client of server connections: httpx2 / websockets"

_MESSAGE = bytes(range(100))
_IN_FLIGHT = 20


async def _round_trips(
    send: Callable[[bytes], Awaitable[None]],
    receive: Callable[[], Awaitable[bytes]],
    seconds: float,
) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(50):
            await send(_MESSAGE)
            await receive()
        count += 50
    return count / elapsed


async def _throughput(
    send: Callable[[bytes], Awaitable[None]],
    receive: Callable[[], Awaitable[bytes]],
    seconds: float,
) -> float:
    credit = anyio.Semaphore(_IN_FLIGHT)
    received = 0
    stop = False

    async def sender() -> None:
        while not stop:
            await credit.acquire()
            await send(_MESSAGE)

    started = time.perf_counter()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(sender)
        while (elapsed := time.perf_counter() - started) < seconds:
            await receive()
            received += 1
            credit.release()
        stop = True
        tasks.cancel_scope.cancel()
    return received / elapsed


async def _with_httpx2(url: str, seconds: float) -> dict[str, float]:
    async with (
        httpx2.AsyncClient() as http,
        open_websocket(http, f"{url}/", headers={}, upgrade_timeout=10) as socket,
    ):
        return await _both(socket.send, _whole_messages(socket.receive), seconds)


def _whole_messages(receive: Callable[[], Awaitable[bytes]]) -> Callable[[], Awaitable[bytes]]:
    """One echoed message per call: the server connection's WebSocket hands on bytes as they
    arrive (its frame reader finds the messages), so a message may come in pieces."""
    pending = bytearray()

    async def receive_message() -> bytes:
        while len(pending) < len(_MESSAGE):
            pending.extend(await receive())
        message = bytes(pending[: len(_MESSAGE)])
        del pending[: len(_MESSAGE)]
        return message

    return receive_message


async def _with_httpx2_session(url: str, seconds: float) -> dict[str, float]:
    async with (
        httpx2.AsyncClient() as http,
        http.websocket(
            f"{url}/",
            max_message_size_bytes=1 << 20,
            keepalive_ping_interval_seconds=None,
            keepalive_ping_timeout_seconds=None,
        ) as session,
    ):
        return await _both(session.send_bytes, session.receive_bytes, seconds)


async def _with_websockets(url: str, seconds: float) -> dict[str, float]:
    async with connect(
        url.replace("http://", "ws://") + "/", max_size=None, compression=None
    ) as socket:

        async def receive() -> bytes:
            data = await socket.recv()
            return data if isinstance(data, bytes) else data.encode()

        return await _both(socket.send, receive, seconds)


async def _both(send: Any, receive: Any, seconds: float) -> dict[str, float]:
    for _ in range(200):  # warm up
        await send(_MESSAGE)
        await receive()
    return {
        "round_trips": await _round_trips(send, receive, seconds),
        "throughput": await _throughput(send, receive, seconds),
    }


_CLIENTS: dict[str, tuple[str, Callable[[str, float], Awaitable[dict[str, float]]]]] = {
    "httpx2 (asyncio)": ("asyncio", _with_httpx2),
    "httpx2 (trio)": ("trio", _with_httpx2),
    "httpx2's own session (asyncio)": ("asyncio", _with_httpx2_session),
    "websockets (asyncio)": ("asyncio", _with_websockets),
}


def run(settings: Settings) -> list[Result]:
    rounds = settings.count(5)
    seconds = settings.seconds(1.0)
    measured: dict[str, dict[str, list[float]]] = {
        name: {"round_trips": [], "throughput": []} for name in _CLIENTS
    }
    with running_server([], module="benchmarks._ws_echo") as server:
        names = list(_CLIENTS)
        for number in range(rounds):
            for name in names[number % len(names) :] + names[: number % len(names)]:
                backend, measure = _CLIENTS[name]
                got = anyio.run(measure, server.url, seconds, backend=backend)
                for key, value in got.items():
                    measured[name][key].append(value)
    medians = {name: {k: median(v) for k, v in rows.items()} for name, rows in measured.items()}
    details: dict[str, Any] = {
        "messages_per_second": {n: {k: round(v) for k, v in m.items()} for n, m in medians.items()},
        "every_round": {
            n: {k: [round(x) for x in v] for k, v in m.items()} for n, m in measured.items()
        },
        "rounds": rounds,
        "seconds_per_round": seconds,
        "message_bytes": len(_MESSAGE),
        "in_flight": _IN_FLIGHT,
    }
    baseline = medians["websockets (asyncio)"]
    results = []
    for name in ("httpx2 (asyncio)", "httpx2 (trio)", "httpx2's own session (asyncio)"):
        for key, what in (
            ("round_trips", "round trips/s"),
            ("throughput", f"throughput/s, {_IN_FLIGHT} in flight"),
        ):
            ratio = medians[name][key] / baseline[key]
            results.append(
                Result(
                    benchmark=NAME,
                    measure=f"{name} / websockets, {what}",
                    value=ratio,
                    goal=Goal("info", text="—"),
                    shown=f"{ratio:.2f}x ({medians[name][key]:.0f} vs {baseline[key]:.0f})",
                    details=details,
                )
            )
    return results
