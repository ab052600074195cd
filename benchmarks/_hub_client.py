"""A bare SignalR client (JSON hub protocol over one WebSocket) for benchmarks (g) and (h), in a
process of its own. It negotiates with the app, connects straight to the service's WebSocket with
the token as a header (as pysignalr and Node do), and sends the handshake.

``python -m benchmarks._hub_client roundtrips PLAN``: PLAN is JSON ``{"targets": {label: app_url},
"rounds": R, "count": N, "warmup": W}``. One connection per target; in each round, each target in
turn gets ``W`` unmeasured and then ``N`` measured invocations of ``echo``, one at a time. Prints
``{"latencies": {label: [seconds, ...]}}``.

``python -m benchmarks._hub_client listen PLAN``: PLAN is ``{"app": app_url}``. Connects, prints
``READY``, counts the ``newMessage`` invocations it receives until its stdin closes, then prints
``{"received": count}``.

A client's own cost per message must stay far below the path measured: it parses only what it
needs (a completion's id, an invocation's target).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from typing import Any
from urllib.parse import quote

import httpx2
from websockets.asyncio.client import ClientConnection, connect

from ._common import pin_to

__all__ = ["main"]

RS = "\x1e"
_TEXT = "y" * 100


async def _connect(app_url: str, user: str) -> ClientConnection:
    async with httpx2.AsyncClient(timeout=10) as http:
        answer = await http.post(f"{app_url}/chat/negotiate?user={quote(user)}")
        answer.raise_for_status()
        redirect = answer.json()
    url = redirect["url"].replace("http", "ws", 1)
    socket = await connect(
        url,
        additional_headers={"Authorization": f"Bearer {redirect['accessToken']}"},
        max_size=None,
        proxy=None,
    )
    await socket.send(json.dumps({"protocol": "json", "version": 1}) + RS)
    handshake = await socket.recv()
    reply = json.loads(str(handshake).split(RS, 1)[0])
    if reply.get("error"):
        msg = f"handshake refused: {reply['error']}"
        raise RuntimeError(msg)
    return socket


async def _invoke(socket: ClientConnection, invocation_id: str) -> None:
    message = {"type": 1, "invocationId": invocation_id, "target": "echo", "arguments": [_TEXT]}
    await socket.send(json.dumps(message) + RS)
    marker = f'"invocationId":"{invocation_id}"'
    while True:
        frame = str(await socket.recv())
        for record in frame.split(RS):
            if marker in record.replace(" ", ""):
                completion = json.loads(record)
                if completion.get("type") == 3:
                    if completion.get("result") != _TEXT:
                        msg = f"echo answered {record[:200]}"
                        raise RuntimeError(msg)
                    return


async def _roundtrips(plan: dict[str, Any]) -> dict[str, Any]:
    sockets = {label: await _connect(url, "bench") for label, url in plan["targets"].items()}
    latencies: dict[str, list[float]] = {label: [] for label in sockets}
    number = 0
    try:
        for _ in range(plan["rounds"]):
            for label, socket in sockets.items():
                for measured in [False] * plan["warmup"] + [True] * plan["count"]:
                    number += 1
                    started = time.perf_counter()
                    await asyncio.wait_for(_invoke(socket, str(number)), 30)
                    if measured:
                        latencies[label].append(time.perf_counter() - started)
    finally:
        for socket in sockets.values():
            await socket.close()
    return {"latencies": latencies}


async def _listen(plan: dict[str, Any]) -> dict[str, Any]:
    socket = await _connect(plan["app"], "listener")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    print("READY", flush=True)
    received = 0

    async def count() -> None:
        nonlocal received
        async for frame in socket:
            received += str(frame).count('"target":"newMessage"')

    counting = asyncio.create_task(count())
    await stop.wait()
    counting.cancel()
    await socket.close()
    return {"received": received}


def main() -> None:
    parser = argparse.ArgumentParser(description="the bare SignalR client of benchmarks g and h")
    parser.add_argument("what", choices=["roundtrips", "listen"])
    parser.add_argument("plan", type=json.loads)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    args = parser.parse_args()
    pin_to(args.cpu)
    run = _roundtrips if args.what == "roundtrips" else _listen
    print(json.dumps(asyncio.run(run(args.plan))), flush=True)


if __name__ == "__main__":
    main()
