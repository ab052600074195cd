"""The hub app of benchmarks (g) and (h): one ``Hub``, served in either service mode, in a process
of its own.

``python -m benchmarks._hub_server default|serverless`` binds 127.0.0.1 on a free port, runs the
lifespan (the key fetched; in Default mode the server connections open), then prints
``READY http://127.0.0.1:PORT``. The app is configured from ``AZURE_SIGNALR_CONNECTION_STRING``
and the managed-identity variables the runner sets; in Serverless mode ``UPSTREAM_AUDIENCE``,
``UPSTREAM_TENANT_ID``, ``UPSTREAM_AUTHORITY`` and ``UPSTREAM_OBJECT_ID`` describe the emulator's
upstream tokens.

Routes:

- ``POST /chat/negotiate?user=...``: ``negotiate_endpoint("chat")``;
- ``POST /upstream/{event}`` (Serverless): ``chat.upstream_endpoint(verifier)``;
- ``POST /broadcasts?via=hub|rest&seconds=S&concurrency=N``: push broadcasts for ``S`` seconds
  from ``N`` tasks, each awaiting one send at a time, over the hub's server connections
  (``chat.clients.all.send``) or through the REST API (``send_to_all``); answers
  ``{"sent": count, "seconds": elapsed}``.

- ``GET /crowd/state`` (Default mode): for (l), the hub's clients, its streams running, the
  server connections' health and the process's resident memory (current and peak, bytes).

The hub has ``echo(text) -> text`` and the methods the hostile crowd of (l) calls
(``tests/hubs/crowd.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from signalr_asgi_auth import (
    Hub,
    SignalRAuth,
    SignalRAuthMiddleware,
    UpstreamVerifier,
    get_context,
    negotiate_endpoint,
)
from tests.hubs.crowd import Live, add_crowd_methods

from ._common import pin_to
from ._server import _serve

__all__ = ["BROADCAST_TEXT", "MESSAGE_LIMIT", "build_app", "main"]

BROADCAST_TEXT = "x" * 100
"""What each broadcast carries (``newMessage("bench", text)``)."""

MESSAGE_LIMIT = 32 * 1024
"""The hub's ``max_receive_message_size`` (ASP.NET Core's default), which (l)'s crowd aims at."""

LIVE = Live()
chat = add_crowd_methods(Hub("chat", max_receive_message_size=MESSAGE_LIMIT), LIVE)


async def broadcasts(request: Request) -> JSONResponse:
    via = request.query_params["via"]
    seconds = float(request.query_params["seconds"])
    concurrency = int(request.query_params["concurrency"])
    if via == "hub":
        send = chat.clients.all.send
    else:
        rest = get_context(request).hub(chat.name)

        async def send(target: str, *arguments: Any) -> None:
            # With several endpoints hub() fans out and returns a Delivery: not needed here.
            await rest.send_to_all(target, *arguments)

    sent = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def pusher() -> None:
        nonlocal sent
        while time.perf_counter() < deadline:
            await send("newMessage", "bench", BROADCAST_TEXT)
            sent += 1

    async with anyio.create_task_group() as tasks:
        for _ in range(concurrency):
            tasks.start_soon(pusher)
    return JSONResponse({"sent": sent, "seconds": time.perf_counter() - started})


def _resident_bytes() -> dict[str, int | None]:
    """The process's resident set now and at its peak (Linux: ``/proc/self/status``)."""
    found: dict[str, int | None] = {"rss": None, "peak_rss": None}
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            key = {"VmRSS": "rss", "VmHWM": "peak_rss"}.get(name)
            if key is not None:
                found[key] = int(value.split()[0]) * 1024
    return found


def _crowd_state(auth: SignalRAuth) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def state(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "clients": sum(connections.clients for connections in chat.running()),
                "streams": LIVE.streams,
                "server_connections": auth.health()["server_connections"][chat.name],
                **_resident_bytes(),
            }
        )

    return state


def _upstream_verifier() -> UpstreamVerifier:
    return UpstreamVerifier(
        audience=os.environ["UPSTREAM_AUDIENCE"],
        tenant_id=os.environ["UPSTREAM_TENANT_ID"],
        authority=os.environ["UPSTREAM_AUTHORITY"],
        allowed_object_ids=[os.environ["UPSTREAM_OBJECT_ID"]],
    )


def build_app(mode: str) -> Starlette:
    """The same hub and routes in either mode; only how the service reaches the hub differs."""
    routes = [
        Route("/chat/negotiate", negotiate_endpoint(chat.name, user_id=lambda r: "bench")),
        Route("/broadcasts", broadcasts, methods=["POST"]),
    ]
    if mode == "default":
        auth = SignalRAuth.from_connection_string(hubs=[chat])
        routes.append(Route("/crowd/state", _crowd_state(auth)))
    else:
        auth = SignalRAuth.from_connection_string()
        endpoint = chat.upstream_endpoint(_upstream_verifier())
        routes.append(Route("/upstream/{event}", endpoint, methods=["POST"]))
    return Starlette(routes=routes, middleware=[Middleware(SignalRAuthMiddleware, auth=auth)])


def main() -> None:
    parser = argparse.ArgumentParser(description="the hub app of benchmarks (g) and (h)")
    parser.add_argument("mode", choices=["default", "serverless"])
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    args = parser.parse_args()
    pin_to(args.cpu)
    asyncio.run(_serve(build_app(args.mode)))


if __name__ == "__main__":
    main()
