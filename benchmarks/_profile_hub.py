"""The app's CPU per ``echo`` invocation and per broadcast in Default mode, over real server
connections to the emulator; not a benchmark with a goal, a tool for profiling the hub layer.

``python -m benchmarks._profile_hub [N] [--profile] [--trio]`` from the repository root: the
emulator (uvicorn) and a bare JSON client run in threads of their own, the app (``SignalRAuth``
with one ``Hub``, access-key mode) in the main thread, and only the main thread's CPU clock is
read, so neither the emulator's nor the client's work is counted. Prints ``{"echo_us": ...,
"broadcast_us": ...}``; ``--profile`` adds cProfile's tables for the invocations (on a thread-CPU
clock, so that waiting for the GIL is not counted as work).
"""

from __future__ import annotations

import cProfile
import json
import pstats
import sys
import threading
import time

import anyio
import anyio.to_thread
import httpx2

from signalr_asgi_auth import Hub, SignalRAuth
from signalr_asgi_auth.emulator import Emulator, serve_in_thread
from signalr_asgi_auth.hubs import HubCall
from tests.emulator.hub_client import HubSocket, hub_socket, negotiate

TEXT = "x" * 100
chat = Hub("chat")


@chat.on("echo")
async def echo(call: HubCall, text: str) -> str:
    return text


class Phases:
    def __init__(self) -> None:
        self.ready, self.echo_go, self.echo_done, self.broadcast_go, self.broadcast_done = (
            threading.Event() for _ in range(5)
        )


def run_client(url: str, token: str, count: int, phases: Phases) -> None:
    async def invoke_all(ws: HubSocket, n: int) -> None:
        for i in range(n):
            message = {"type": 1, "invocationId": str(i), "target": "echo", "arguments": [TEXT]}
            await ws.send(message)
            reply = await ws.receive()
            assert reply.get("result") == TEXT, reply

    async def main() -> None:
        async with httpx2.AsyncClient(timeout=30) as http:
            connection_token = (await negotiate(http, url, token)).json()["connectionToken"]
            async with hub_socket(http, url, token, connection_token=connection_token) as ws:
                assert await ws.handshake() == {}
                await invoke_all(ws, 50)  # warm-up
                phases.ready.set()
                await anyio.to_thread.run_sync(phases.echo_go.wait)
                await invoke_all(ws, count)
                phases.echo_done.set()
                await anyio.to_thread.run_sync(phases.broadcast_go.wait)
                got = 0
                while got < count:
                    if (await ws.receive()).get("target") == "newMessage":
                        got += 1
                phases.broadcast_done.set()

    anyio.run(main)


async def measure(url: str, key: str, count: int, profile: bool) -> None:
    phases = Phases()
    auth = SignalRAuth.from_connection_string(
        f"Endpoint={url};AccessKey={key};Version=1.0", hubs=[chat]
    )
    async with auth as context:
        token = await context.client_token("chat", user_id="ann")
        client = threading.Thread(target=run_client, args=(url, token, count, phases), daemon=True)
        client.start()
        await anyio.to_thread.run_sync(phases.ready.wait)
        profiler = cProfile.Profile(time.thread_time) if profile else None
        started = time.thread_time()
        if profiler is not None:
            profiler.enable()
        phases.echo_go.set()
        await anyio.to_thread.run_sync(phases.echo_done.wait)
        if profiler is not None:
            profiler.disable()
        echoed = time.thread_time()
        phases.broadcast_go.set()
        for _ in range(count):
            await chat.clients.all.send("newMessage", "bench", TEXT)
        broadcast = time.thread_time()
        await anyio.to_thread.run_sync(phases.broadcast_done.wait)
        client.join(10)
    per_echo = (echoed - started) / count * 1e6
    per_broadcast = (broadcast - echoed) / count * 1e6
    print(json.dumps({"echo_us": round(per_echo, 1), "broadcast_us": round(per_broadcast, 1)}))
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(35)
        stats.sort_stats("cumulative").print_stats(60)


def main() -> None:
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    count = int(numbers[0]) if numbers else 2000
    emulator = Emulator(service_mode="default")
    with serve_in_thread(emulator.app) as url:
        backend = "trio" if "--trio" in sys.argv else "asyncio"
        anyio.run(
            measure, url, emulator.access_keys[0], count, "--profile" in sys.argv, backend=backend
        )


if __name__ == "__main__":
    main()
