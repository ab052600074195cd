"""Helpers for the fault, soak, bad-input and hygiene tests: an app driven through its lifespan in
process, the library's background tasks, a port nobody listens on, and log checks."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
from starlette.types import ASGIApp, Message

__all__ = [
    "KEEPER_TASK_PREFIX",
    "Reply",
    "asgi_request",
    "closed_port_url",
    "keeper_tasks",
    "problems_in_logs",
    "running_app",
    "running_task_ids",
    "trickling_peer",
]

KEEPER_TASK_PREFIX = "signalr_asgi_auth."
"""The library names the tasks it starts ``signalr_asgi_auth.<Keeper>``."""


@asynccontextmanager
async def running_app(app: ASGIApp) -> AsyncIterator[httpx2.AsyncClient]:
    """Run ``app``'s lifespan in a task of this event loop (as uvicorn would), and yield a client
    that sends requests to it in process. Startup must complete; shutdown must complete too."""
    to_app, app_inbox = anyio.create_memory_object_stream[Message](4)
    app_outbox, from_app = anyio.create_memory_object_stream[Message](4)
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}

    async def lifespan() -> None:
        async with app_inbox, app_outbox:
            await app(scope, app_inbox.receive, app_outbox.send)

    async with anyio.create_task_group() as group, to_app, from_app:
        group.start_soon(lifespan, name="test lifespan")
        await to_app.send({"type": "lifespan.startup"})
        started = await from_app.receive()
        assert started["type"] == "lifespan.startup.complete", started
        try:
            transport = httpx2.ASGITransport(app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://app") as client:
                yield client
        finally:
            with anyio.fail_after(10, shield=True):
                await to_app.send({"type": "lifespan.shutdown"})
                stopped = await from_app.receive()
            assert stopped["type"] == "lifespan.shutdown.complete", stopped


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def asgi_request(
    app: ASGIApp,
    method: str,
    path: str,
    *,
    query_string: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
) -> Reply:
    """One HTTP request straight into ``app``, with bytes no HTTP client would send (raw query
    bytes, any header value). An exception from the app propagates, as a server would log it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("app", 80),
        "state": {},
    }
    delivered = False
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    return Reply(
        status=start["status"],
        headers={
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in start.get("headers", [])
        },
        body=b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
    )


def running_task_ids() -> set[int]:
    return {task.id for task in anyio.get_running_tasks()}


def keeper_tasks() -> list[str]:
    """The names of the library's background tasks running now, on either backend."""
    return sorted(
        task.name
        for task in anyio.get_running_tasks()
        if task.name and task.name.startswith(KEEPER_TASK_PREFIX)
    )


def closed_port_url(path: str = "") -> str:
    """``http://127.0.0.1:<port><path>`` where nothing listens: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def problems_in_logs(records: Iterable[logging.LogRecord]) -> list[str]:
    """What a fault must never produce: a record at ERROR or above from anyone, and a record with
    a traceback from the library (its warnings carry the cause in the message instead)."""
    found = []
    for record in records:
        ours = record.name.startswith("signalr_asgi_auth") and not record.name.startswith(
            "signalr_asgi_auth.emulator"
        )
        if record.levelno >= logging.ERROR or (ours and record.exc_info):
            found.append(f"{record.name} {record.levelname}: {record.getMessage()}")
    return found


@contextmanager
def trickling_peer(interval: float = 0.1) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` where a slow-loris peer answers every request with one byte of
    an endless response head each ``interval`` seconds: no read timeout ever fires, so only a
    deadline on the whole call ends it. Served by threads, so sync and async tests alike can
    use it; they end with the block."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(interval)
    stop = threading.Event()

    def trickle(connection: socket.socket) -> None:
        with connection:
            connection.settimeout(interval)
            head = b""
            while b"\r\n\r\n" not in head and not stop.is_set():
                try:
                    chunk = connection.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                head += chunk
            answer = b"HTTP/1.1 200 OK\r\nX-Trickle: " + b"a" * 1_000_000
            for index in range(len(answer)):
                if stop.wait(interval):
                    return
                try:
                    connection.sendall(answer[index : index + 1])
                except OSError:
                    return

    def accept() -> None:
        workers = []
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            worker = threading.Thread(target=trickle, args=(connection,), daemon=True)
            worker.start()
            workers.append(worker)
        for worker in workers:
            worker.join(timeout=5)

    acceptor = threading.Thread(target=accept, name="trickling peer", daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        acceptor.join(timeout=5)
        listener.close()
