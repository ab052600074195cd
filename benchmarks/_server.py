"""The hub server under load: a small Starlette app in uvicorn, in a process of its own.

``python -m benchmarks._server [--no-middleware] [--option NAME=JSON ...]`` binds 127.0.0.1 on a
free port, runs the app's lifespan (so with the middleware the first key is already fetched), then
prints ``READY http://127.0.0.1:PORT`` on stdout. It stops on SIGTERM.

Routes, the same in every variant so that routing costs the same:

- ``POST /chat/negotiate?user=...``: :func:`negotiate_endpoint`, as a real app mounts it;
- ``POST /bare``: a constant JSON reply shaped and sized like a negotiate reply, the baseline.

With the middleware the app is configured from ``AZURE_SIGNALR_CONNECTION_STRING`` (the runner
points it and the managed identity at its emulator).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from signalr_asgi_auth import SignalRAuth, SignalRAuthMiddleware, negotiate_endpoint

from ._common import pin_to

__all__ = ["build_app", "main"]

# About the length of a negotiate reply's token (HS256, a 36-character kid, a short user id).
_BARE_REPLY = {"url": "http://127.0.0.1/client/?hub=chat", "accessToken": "x" * 330}


async def bare(request: Request) -> JSONResponse:
    # Reads the user id as the negotiate route does, so that only the library's work differs.
    return JSONResponse({**_BARE_REPLY, "user": _user(request)})


def _user(request: Request) -> str | None:
    return request.query_params.get("user")


def build_app(*, middleware: bool, options: dict[str, Any]) -> ASGIApp:
    routes = [
        Route("/chat/negotiate", negotiate_endpoint("chat", user_id=_user)),
        Route("/bare", bare, methods=["GET", "POST"]),
    ]
    stack = []
    if middleware:
        auth = SignalRAuth.from_connection_string(**options)
        stack.append(Middleware(SignalRAuthMiddleware, auth=auth))
    return Starlette(routes=routes, middleware=stack)


async def _serve(app: ASGIApp) -> None:
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections accepted from a socket
    # that says it is TCP, and without it every keep-alive answer after the first waits ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # raises what stopped it
            msg = "uvicorn stopped during startup"
            raise RuntimeError(msg)
        await asyncio.sleep(0.01)
    print(f"READY http://127.0.0.1:{port}", flush=True)
    await task


def _option(text: str) -> tuple[str, Any]:
    name, _, value = text.partition("=")
    return name, json.loads(value)


def main() -> None:
    parser = argparse.ArgumentParser(description="the benchmarks' hub server")
    parser.add_argument("--no-middleware", dest="middleware", action="store_false")
    parser.add_argument("--option", type=_option, action="append", default=[])
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    args = parser.parse_args()
    pin_to(args.cpu)
    app = build_app(middleware=args.middleware, options=dict(args.option))
    asyncio.run(_serve(app))


if __name__ == "__main__":
    main()
