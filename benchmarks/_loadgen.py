"""The load generator: HTTP/1.1 keep-alive requests on loopback, from a process of its own.

It reads a plan as JSON on stdin and writes one report per phase as JSON on stdout::

    {"phases": [{"url": "http://127.0.0.1:8000", "path": "/chat/negotiate?user=u1",
                 "method": "POST", "duration": 3.0, "warmup": 0.5, "connections": 16,
                 "samples": false}]}

``{"together": [phase, ...]}`` runs those phases at the same time and reports them as
``{"together": [report, ...]}``. ``paths`` (a list) instead of ``path`` spreads the requests over several paths. Each phase opens
``connections`` keep-alive connections, each sending its next request as soon as
the previous answer is read (a closed loop), for ``warmup`` seconds not counted and then
``duration`` seconds counted. With ``samples`` the report has ``[start (epoch s), latency (s)]`` of
every counted request.

It speaks HTTP over anyio's byte streams with a few lines of parsing rather than through httpx2:
a client's per-request cost has to be far below the server's, or the load generator is what gets
measured. (httpx2 costs about as much CPU per request as the uvicorn + Starlette server it would
load, and both benchmarks' ratios would drift towards 1.) Answers are checked: the status line, and
the body's length against ``Content-Length``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import anyio
from anyio.abc import SocketStream

from ._common import pin_to

__all__ = ["main"]

_CONNECT_TIMEOUT = 5.0
_RECEIVE = 65536
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user + system) that process ``pid`` has used, read from /proc (Linux)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


class _Connection:
    """One keep-alive connection and what it has read past the last answer."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def exchange(self, request: bytes) -> int:
        """Send ``request``, read the whole answer; its status code."""
        await self.stream.send(request)
        buffer = self.buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            buffer += await self.stream.receive(_RECEIVE)
        head = buffer[:end].lower()
        status = int(head[9:12])
        marker = head.find(b"content-length:")
        if marker < 0:
            msg = "an answer without Content-Length"
            raise ValueError(msg)
        line_end = head.find(b"\r\n", marker)
        length = int(head[marker + 15 : line_end if line_end >= 0 else len(head)])
        total = end + 4 + length
        while len(buffer) < total:
            buffer += await self.stream.receive(_RECEIVE)
        self.buffer = buffer[total:]
        return status


def _request(method: str, host: str, path: str) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n"
        "User-Agent: signalr-asgi-auth-bench\r\nAccept: */*\r\n\r\n"
    ).encode()


async def _phase(phase: dict[str, Any]) -> dict[str, Any]:
    url = urlsplit(phase["url"])
    host, port = url.hostname or "127.0.0.1", url.port or 80
    method, authority = phase.get("method", "GET"), f"{host}:{port}"
    requests = [_request(method, authority, path) for path in phase.get("paths") or [phase["path"]]]
    warmup, duration = float(phase.get("warmup", 0.0)), float(phase["duration"])
    keep_samples = bool(phase.get("samples", False))
    connections = int(phase.get("connections", 16))
    server_pid: int | None = phase.get("server_pid")
    server_cpu: list[float | None] = []
    counted = 0
    statuses: dict[str, int] = {}
    failures: list[str] = []
    samples: list[tuple[float, float]] = []
    clock = time.perf_counter
    # perf_counter for latencies; the wall clock only to place samples next to the emulator's log.
    wall_offset = time.time() - clock()
    begin = clock()
    cpu_begin = time.process_time()
    measured_from = begin + warmup
    until = measured_from + duration

    async def worker(number: int) -> None:
        nonlocal counted
        with anyio.fail_after(_CONNECT_TIMEOUT):
            stream = await anyio.connect_tcp(host, port)
        connection = _Connection(stream)
        # Each connection walks the paths from its own place: all of them are in use at once.
        position = number * len(requests) // connections
        async with stream:
            while (started := clock()) < until:
                request = requests[position % len(requests)]
                position += 1
                try:
                    status = await connection.exchange(request)
                except (OSError, ValueError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    return
                if started >= measured_from:
                    counted += 1
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
                    if keep_samples:
                        samples.append((started + wall_offset, clock() - started))

    async def measure_server_cpu() -> None:
        await anyio.sleep(max(measured_from - clock(), 0.0))
        server_cpu.append(_cpu_seconds(server_pid))
        await anyio.sleep(max(until - clock(), 0.0))
        server_cpu.append(_cpu_seconds(server_pid))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(measure_server_cpu)
        for number in range(connections):
            tasks.start_soon(worker, number)
    seconds = max(min(clock(), until + 5.0) - measured_from, 1e-9)
    # Near 1.0 means the load generator, not the server, may be the bottleneck.
    busy = (time.process_time() - cpu_begin) / max(clock() - begin, 1e-9)
    ok = statuses.get("200", 0)
    report: dict[str, Any] = {
        "path": phase.get("path") or phase["paths"][0],
        "window": [measured_from + wall_offset, until + wall_offset],
        "requests": counted,
        "ok": ok,
        "statuses": statuses,
        "failures": failures[:5],
        "seconds": seconds,
        "rps": ok / duration,
        "loadgen_cpu": round(busy, 3),
    }
    if server_cpu and server_cpu[0] is not None and server_cpu[-1] is not None:
        used = server_cpu[-1] - server_cpu[0]
        report["server_cpu"] = round(used / duration, 3)
        report["rps_per_server_cpu"] = ok / used if used > 0 else None
    if keep_samples:
        report["samples"] = samples
    return report


async def _together(phases: list[dict[str, Any]]) -> dict[str, Any]:
    reports: list[dict[str, Any]] = [{} for _ in phases]

    async def one(index: int) -> None:
        reports[index] = await _phase(phases[index])

    async with anyio.create_task_group() as tasks:
        for index in range(len(phases)):
            tasks.start_soon(one, index)
    return {"together": reports}


async def _run(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        await _together(phase["together"]) if "together" in phase else await _phase(phase)
        for phase in plan["phases"]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="HTTP/1.1 load on loopback; plan on stdin")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    args = parser.parse_args()
    pin_to(args.cpu)
    plan = json.load(sys.stdin)
    json.dump(anyio.run(_run, plan), sys.stdout)


if __name__ == "__main__":
    main()
