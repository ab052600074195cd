"""The hostile clients of issue 18: each attack is one short visit on a fresh socket (what a client
can do through the service), repeated by :func:`run_attack` until a deadline. What the app answers
them does not matter here; the honest clients beside them, and the app's state after, do.

``limit`` is the hub's client message limit in bytes: the oversize messages are just over it, the
flood's just under it.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2

from ..emulator.helpers import TIMEOUT
from ..emulator.hub_client import RS, HubSocket
from .crowd import Opener, Spans, token_opener

__all__ = ["ATTACKS", "Attack", "main", "run_hostile", "run_plan"]

_ANSWER_WAIT = 0.2  # how long a visitor stays to be answered (or closed), unread
_VISIT_LIMIT = 10.0


@dataclass(frozen=True, slots=True)
class Attack:
    """One kind of visit; ``item`` is the issue's item it plays."""

    name: str
    item: str
    visit: Callable[[HubSocket, int], Awaitable[None]]


def _invocation(invocation_id: str, target: str, *arguments: object, kind: int = 1) -> str:
    message = {"type": kind, "invocationId": invocation_id, "target": target}
    return json.dumps({**message, "arguments": list(arguments)}) + RS


async def _shaken(ws: HubSocket) -> None:
    await ws.session.send_text(json.dumps({"protocol": "json", "version": 1}) + RS)


async def reused_stream_ids(ws: HubSocket, limit: int) -> None:
    """Two streams under one id, one cancel, then leave without reading (item 1)."""
    await _shaken(ws)
    stream = _invocation("1", "drip", kind=4)
    await ws.session.send_text(stream + stream)
    await anyio.sleep(_ANSWER_WAIT)
    await ws.session.send_text(json.dumps({"type": 5, "invocationId": "1"}) + RS)


async def cancelled_error(ws: HubSocket, limit: int) -> None:
    """A method and a stream that let ``asyncio.CancelledError`` out (item 2)."""
    await _shaken(ws)
    await ws.session.send_text(
        _invocation("1", "cancelled") + _invocation("2", "cancelled_stream", kind=4)
    )
    await anyio.sleep(_ANSWER_WAIT)


async def oversize(ws: HubSocket, limit: int) -> None:
    """One message just over the client limit (item 3)."""
    await _shaken(ws)
    await ws.session.send_text(_invocation("1", "echo", "x" * (limit + 1024)))
    await anyio.sleep(_ANSWER_WAIT)


async def near_limit_flood(ws: HubSocket, limit: int) -> None:
    """Twenty messages just under the client limit, sent at once, never read: the service
    batches them with other clients' frames into one WebSocket message (item 3)."""
    await _shaken(ws)
    message = _invocation("1", "nope", "x" * (limit - 256))
    for _ in range(20):
        await ws.session.send_text(message)
    await anyio.sleep(_ANSWER_WAIT)


async def endless_message(ws: HubSocket, limit: int) -> None:
    """A message that never ends: pieces with no record separator, past the limit (items 3, 10)."""
    await _shaken(ws)
    await ws.session.send_text('{"type":1,"target":"echo","arguments":["')
    piece = "x" * 4096
    for _ in range(limit // len(piece) + 2):
        await ws.session.send_text(piece)
    await anyio.sleep(_ANSWER_WAIT)


async def fragmented_json(ws: HubSocket, limit: int) -> None:
    """An invocation of 8 KiB in 64-byte WebSocket messages (item 17)."""
    await _shaken(ws)
    message = _invocation("1", "echo", "x" * 8192)
    for start in range(0, len(message), 64):
        await ws.session.send_text(message[start : start + 64])
    await anyio.sleep(_ANSWER_WAIT)


async def never_reads(ws: HubSocket, limit: int) -> None:
    """Asks for answers of 8 KiB and never reads them (item 3: back-pressure)."""
    await _shaken(ws)
    message = _invocation("1", "echo", "x" * 8192)
    for _ in range(32):
        await ws.session.send_text(message)
    await anyio.sleep(1.0)


async def handshake_garbage(ws: HubSocket, limit: int) -> None:
    """A handshake the app must refuse (version 99): a client the app closes itself (item 7)."""
    await ws.session.send_text(json.dumps({"protocol": "json", "version": 99}) + RS)
    await anyio.sleep(_ANSWER_WAIT)


async def garbage_after_handshake(ws: HubSocket, limit: int) -> None:
    """A good handshake with garbage behind it in the same frame (items 7, 17)."""
    await ws.session.send_text(json.dumps({"protocol": "json", "version": 1}) + RS + "{]" + RS)
    await anyio.sleep(_ANSWER_WAIT)


async def close_message(ws: HubSocket, limit: int) -> None:
    """The client's own Close message, then it stays (item 7)."""
    await _shaken(ws)
    await ws.session.send_text(json.dumps({"type": 7}) + RS)
    await anyio.sleep(_ANSWER_WAIT)


async def newline_names(ws: HubSocket, limit: int) -> None:
    """Method names with CR and LF and an ANSI escape, forging a log line (item 14)."""
    await _shaken(ws)
    forged = "nope\r\nINFO signalr_asgi_auth: forged line \x1b[32m✓\x1b[0m"
    unanswered = json.dumps({"type": 1, "target": forged, "arguments": []}) + RS
    await ws.session.send_text(_invocation("1", forged) + _invocation("2", forged, kind=4))
    await ws.session.send_text(unanswered)  # no invocation id: nobody to answer, so it is logged
    await anyio.sleep(_ANSWER_WAIT)


async def slow_sync(ws: HubSocket, limit: int) -> None:
    """A slow sync method, so that many such clients fill the worker threads (item 6)."""
    await _shaken(ws)
    await ws.session.send_text(_invocation("1", "nap", 0.5))
    await anyio.sleep(0.6)


ATTACKS = (
    Attack("reused stream ids, cancel, leave", "1", reused_stream_ids),
    Attack("CancelledError out of a method and a stream", "2", cancelled_error),
    Attack("a message over the client limit", "3", oversize),
    Attack("twenty near-limit messages at once", "3", near_limit_flood),
    Attack("a message that never ends", "3, 10", endless_message),
    Attack("JSON in 64-byte pieces", "17", fragmented_json),
    Attack("large answers never read", "3", never_reads),
    Attack("a handshake the app refuses", "7", handshake_garbage),
    Attack("garbage after the handshake", "7", garbage_after_handshake),
    Attack("the client's Close message", "7", close_message),
    Attack("CR, LF and ANSI in method names", "14", newline_names),
    Attack("a slow sync method", "6", slow_sync),
)


async def run_attack(
    opener: Opener, attack: Attack, until: float, *, limit: int, pause: float, seed: int = 0
) -> int:
    """Visit with ``attack`` until ``until`` (``time.monotonic()``), about ``pause`` seconds
    between visits (0.5x to 1.5x, drawn from ``seed``: a crowd does not march in step); how many
    visits were made. A visit the app cuts short counts all the same."""
    pauses = random.Random(seed)  # spreading visits, not a secret
    await anyio.sleep(pauses.uniform(0, pause))
    visits = 0
    while time.monotonic() < until:
        visits += 1
        try:
            with anyio.move_on_after(_VISIT_LIMIT):
                async with opener("hostile") as ws:
                    await attack.visit(ws, limit)
        except Exception:  # the app may close a hostile socket at any time
            pass
        await anyio.sleep(pause * pauses.uniform(0.5, 1.5))
    return visits


async def run_hostile(
    openers: list[Opener], attacked: Spans, *, limit: int, pause: float
) -> dict[str, int]:
    """One client per attack (``openers[n]`` for ``ATTACKS[n]``) visits during each attacked
    span; the visits each attack made."""
    visits = dict.fromkeys((kind.name for kind in ATTACKS), 0)

    async def attack(number: int, opener: Opener, until: float, seed: int) -> None:
        kind = ATTACKS[number]
        made = await run_attack(opener, kind, until, limit=limit, pause=pause, seed=seed)
        visits[kind.name] += made

    for round_number, (start, until) in enumerate(attacked):
        await anyio.sleep(max(start - time.monotonic(), 0))
        async with anyio.create_task_group() as crowd:
            for number, opener in enumerate(openers):
                crowd.start_soon(attack, number, opener, until, round_number * 100 + number)
    return visits


async def run_plan(plan: dict[str, Any]) -> dict[str, int]:
    """The crowd of ``plan`` (see ``main``), in this process."""
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
        openers = [token_opener(http, plan["url"], token) for token in plan["tokens"]]
        spans = [(start, end) for start, end in plan["attacked"]]
        return await run_hostile(openers, spans, limit=plan["limit"], pause=plan["pause"])


def main() -> None:
    """``python -m tests.hubs.hostile PLAN``: PLAN is JSON ``{"url": the service, "tokens": a
    client token per attack, "attacked": [[start, end], ...] in ``time.monotonic()``, "limit":
    bytes, "pause": seconds between visits}``. Prints the visits each attack made, as JSON."""
    print(json.dumps(anyio.run(run_plan, json.loads(sys.argv[1]))), flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
