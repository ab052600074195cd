"""The hostile crowd of issue 18, shared by the test (``test_crowd.py``) and the benchmark
(``benchmarks/crowd.py``): the methods a hub needs for the attacks to reach it, the honest clients
that keep invoking, and the hostile ones (``hostile.py``).

Every client is a real WebSocket to the emulator's client endpoint, opened by an :data:`Opener`
(negotiate, connect; the handshake is the caller's). Every loop is bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx2

from signalr_asgi_auth.hubs import Hub, HubCall

from ..emulator.helpers import TIMEOUT
from ..emulator.hub_client import HubSocket
from .chat import token_client

__all__ = [
    "Honest",
    "Live",
    "Opener",
    "Rounds",
    "Spans",
    "add_crowd_methods",
    "in_spans",
    "main",
    "run_honest",
    "run_honest_plan",
    "run_in_process",
    "token_opener",
]

Opener = Callable[[str], AbstractAsyncContextManager[HubSocket]]
"""A socket to the service for the user named, before its handshake."""

Spans = list[tuple[float, float]]
"""Spans of ``time.monotonic()`` (one clock for every process of the machine)."""

ROOT = Path(__file__).resolve().parents[2]
ECHO_TEXT = "y" * 100
_NAP_LIMIT = 1.0


@dataclass(frozen=True, slots=True)
class Rounds:
    """How the crowd comes: ``count`` rounds of ``quiet`` seconds of honest clients alone, then
    ``attack`` seconds with the crowd, then ``drain`` seconds for the last visits to end;
    interleaved, so that the machine's other work weighs on the quiet and the attacked alike."""

    count: int
    quiet: float
    attack: float
    drain: float = 1.0
    warmup: float = 1.0

    def spans(self, start: float) -> tuple[Spans, Spans]:
        """The quiet spans and the attacked spans, from ``start``."""
        quiet, attacked = [], []
        start += self.warmup
        for _ in range(self.count):
            quiet.append((start, start + self.quiet))
            attacked.append((start + self.quiet, start + self.quiet + self.attack))
            start += self.quiet + self.attack + self.drain
        return quiet, attacked


@dataclass
class Live:
    """What the hub's methods have running now, counted by the methods themselves: a stream
    nobody can stop stays counted."""

    streams: int = 0
    started: int = 0


def add_crowd_methods(hub: Hub, live: Live) -> Hub:
    """Add ``echo`` (the honest clients' method), ``drip`` (a stream that runs until cancelled),
    ``cancelled`` and ``cancelled_stream`` (a handler that lets ``asyncio.CancelledError`` out,
    as when it awaits a task someone cancelled) and ``nap`` (a slow sync method)."""

    @hub.on("echo")
    async def echo(call: HubCall, text: str) -> str:
        return text

    @hub.on("drip")
    async def drip(call: HubCall) -> AsyncIterator[int]:
        live.streams += 1
        live.started += 1
        try:
            for number in itertools.count():
                yield number
                await anyio.sleep(0.05)
        finally:
            live.streams -= 1

    @hub.on("cancelled")
    async def cancelled(call: HubCall) -> None:
        raise asyncio.CancelledError

    @hub.on("cancelled_stream")
    async def cancelled_stream(call: HubCall) -> AsyncIterator[int]:
        yield 1
        raise asyncio.CancelledError

    @hub.on("nap")
    def nap(call: HubCall, seconds: float) -> None:  # sync: a worker thread
        time.sleep(min(float(seconds), _NAP_LIMIT))

    return hub


@dataclass
class Honest:
    """What one honest client saw: each invocation's start (``time.monotonic()``) and round
    trip in seconds, and every failure (an error, a wrong answer, a timeout, a lost socket)."""

    user: str
    samples: list[tuple[float, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def _echo(ws: HubSocket, invocation_id: str) -> str | None:
    """One honest ``echo``; what went wrong, or ``None``."""
    await ws.send(
        {"type": 1, "invocationId": invocation_id, "target": "echo", "arguments": [ECHO_TEXT]}
    )
    while True:
        message = await ws.receive()
        if message.get("invocationId") != invocation_id:
            continue  # broadcasts and the like: not the answer
        if message.get("type") == 3 and message.get("result") == ECHO_TEXT:
            return None
        return f"echo {invocation_id} answered {str(message)[:200]}"


async def run_honest(opener: Opener, honest: Honest, until: float, *, pause: float) -> None:
    """Invoke ``echo`` one call at a time until ``until`` (``time.monotonic()``), ``pause``
    seconds apart; every failure is recorded, and a lost socket ends the client."""
    try:
        async with opener(honest.user) as ws:
            if (reply := await ws.handshake()) != {}:
                honest.failures.append(f"handshake answered {reply}")
                return
            for number in itertools.count(1):
                if time.monotonic() >= until:
                    return
                started = time.monotonic()
                failure = await _echo(ws, str(number))
                honest.samples.append((started, time.monotonic() - started))
                if failure is not None:
                    honest.failures.append(failure)
                await anyio.sleep(pause)
    except Exception as error:  # any end but the deadline is a failure to report
        honest.failures.append(_described(error))


def in_spans(samples: list[tuple[float, float]], spans: Spans) -> list[float]:
    """The round trips of the invocations started in ``spans``."""
    return [x for at, x in samples if any(start <= at < end for start, end in spans)]


async def run_honest_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """The honest clients of ``plan`` (see ``main``), in this process."""
    honest = [Honest(f"honest-{number}") for number in range(len(plan["tokens"]))]
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http, anyio.create_task_group() as tasks:
        for client, token in zip(honest, plan["tokens"], strict=True):
            opener = token_opener(http, plan["url"], token)
            tasks.start_soon(
                partial(run_honest, opener, client, plan["until"], pause=plan["pause"])
            )
    return {
        "samples": [sample for client in honest for sample in client.samples],
        "failures": [failure for client in honest for failure in client.failures],
    }


async def run_in_process(module: str, plan: dict[str, Any], *, until: float) -> Any:
    """``python -m MODULE PLAN`` in the repository, ended at the latest a minute after
    ``until`` (``time.monotonic()``); the JSON it prints."""
    command = [sys.executable, "-m", module, json.dumps(plan)]
    with anyio.fail_after(until - time.monotonic() + 60):
        done = await anyio.run_process(command, cwd=ROOT, check=False)
    if done.returncode != 0:
        msg = f"{module} failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}"
        raise RuntimeError(msg)
    return json.loads(done.stdout)


def token_opener(http: httpx2.AsyncClient, url: str, token: str) -> Opener:
    """Sockets to the resource at ``url`` with one client ``token``, whoever asks."""

    def opener(user: str) -> AbstractAsyncContextManager[HubSocket]:
        return token_client(http, url, token)

    return opener


def _described(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_described(inner) for inner in error.exceptions)
    return f"{type(error).__name__}: {error}"


def main() -> None:
    """``python -m tests.hubs.crowd PLAN``: PLAN is JSON ``{"url": the service, "tokens": a client
    token per honest client, "until": ``time.monotonic()`` to stop at, "pause": seconds between
    invocations}``. Prints ``{"samples": [[started, seconds], ...], "failures": [...]}``."""
    print(json.dumps(anyio.run(run_honest_plan, json.loads(sys.argv[1]))), flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
