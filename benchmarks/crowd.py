"""(l) Honest clients' p99 invoke latency while a hostile crowd attacks the hub / with no crowd.

The hub app (``benchmarks._hub_server`` in Default mode: ``echo`` and the crowd's methods) runs in
a process of its own on an emulator of its own (in the runner's threads). Four honest clients, in
a process of their own, invoke ``echo`` one call at a time throughout. Six rounds of 4 s quiet then
10 s of attack (a minute of attack in all): during each attack, one hostile client per attack of
``tests/hubs/hostile.py`` (every client-reachable attack of issue 18) visits on a fresh socket
about once a second (out of step with the others) from a third process; the hub's
``max_receive_message_size`` is ASP.NET Core's 32 KB, which the crowd's large messages aim at.
The quiet spans are interleaved with the attacked ones so that the machine's other work weighs on
both alike; the result is the honest p99 under attack over the quiet p99 (goal: at
most 3x). Beside it: honest invocations that failed (goal: none), the hub's clients and streams
and the pool's routes left once everyone has gone, server connections lost (goal: none of these), and the app's resident memory
before the first attack and after the last (its growth: at most 16 MiB; and its peak).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import ExitStack
from typing import Any

import httpx2

from tests.hubs.crowd import Rounds, in_spans
from tests.hubs.hostile import ATTACKS

from ._common import LOADGEN_CPU, ROOT, Goal, Result, Settings, percentile
from ._hub_server import MESSAGE_LIMIT
from ._hub_setup import hub_app

__all__ = ["NAME", "TITLE", "run"]

NAME = "crowd"
TITLE = "(l) honest p99 under a hostile crowd / quiet"

_HONEST = 4
_HONEST_PAUSE = 0.01
_HOSTILE_PAUSE = 1.0  # about: each hostile client's visits are spread (tests/hubs/hostile.py)
_START = 5.0  # for the client processes to start before the first span
_SETTLE = 15.0
_MB = 1024 * 1024
_MEMORY_GOAL = 16  # MiB: one partial message alone held 200 MiB before the limits held


def _tokens(app_url: str, count: int) -> tuple[str, list[str]]:
    """The service's URL and ``count`` client tokens, from the app's negotiate route."""
    tokens = []
    with httpx2.Client(timeout=10) as http:
        for _ in range(count):
            redirect = http.post(f"{app_url}/chat/negotiate").raise_for_status().json()
            tokens.append(redirect["accessToken"])
    return redirect["url"].split("/client/", 1)[0], tokens


def _state(app_url: str) -> dict[str, Any]:
    with httpx2.Client(timeout=10) as http:
        state: dict[str, Any] = http.get(f"{app_url}/crowd/state").raise_for_status().json()
    return state


def _settled(app_url: str) -> dict[str, Any]:
    """The app's state once every client has gone (or after ``_SETTLE`` seconds)."""
    deadline = time.monotonic() + _SETTLE
    while (state := _state(app_url))["clients"] or state["streams"]:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return state


def _start(side: str, plan: dict[str, Any]) -> subprocess.Popen[str]:
    """The honest clients unpinned, the crowd on the load generator's core: the crowd's own
    work must not delay the honest clients' reading more than the app's does."""
    command = [sys.executable, "-m", "benchmarks._crowd_client", side, json.dumps(plan)]
    if side == "hostile":
        command += ["--cpu", str(LOADGEN_CPU)]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _report(process: subprocess.Popen[str], timeout: float) -> Any:
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    if process.returncode != 0:
        msg = f"A crowd client failed ({process.returncode}):\n{err[-2000:]}"
        raise RuntimeError(msg)
    return json.loads(out.strip().splitlines()[-1])


def _measure(rounds: Rounds) -> dict[str, Any]:
    with ExitStack() as stack:
        app = stack.enter_context(hub_app("default"))
        url, tokens = _tokens(app.url, _HONEST + len(ATTACKS))
        before = _state(app.url)
        quiet, attacked = rounds.spans(time.monotonic() + _START)
        until = attacked[-1][1]
        honest = _start(
            "honest",
            {"url": url, "tokens": tokens[:_HONEST], "until": until, "pause": _HONEST_PAUSE},
        )
        hostile = _start(
            "hostile",
            {
                "url": url,
                "tokens": tokens[_HONEST:],
                "attacked": attacked,
                "limit": MESSAGE_LIMIT,
                "pause": _HOSTILE_PAUSE,
            },
        )
        budget = until - time.monotonic() + 60
        seen, visits = _report(honest, budget), _report(hostile, budget)
        after = _settled(app.url)
    return {
        "quiet": quiet,
        "attacked": attacked,
        "seen": seen,
        "visits": visits,
        "before": before,
        "after": after,
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def run(settings: Settings) -> list[Result]:
    rounds = Rounds(
        count=settings.count(6), quiet=settings.seconds(4.0), attack=settings.seconds(10.0)
    )
    measured = _measure(rounds)
    samples = measured["seen"]["samples"]
    quiet, attacked = (in_spans(samples, measured[spans]) for spans in ("quiet", "attacked"))
    p99 = {"quiet": percentile(quiet, 0.99), "attacked": percentile(attacked, 0.99)}
    ratio = p99["attacked"] / p99["quiet"]
    before, after = measured["before"], measured["after"]
    failures = measured["seen"]["failures"]
    servers = after["server_connections"]
    left = after["clients"] + after["streams"] + servers["clients"] + servers["lost"]
    growth = (after["rss"] - before["rss"]) / _MB
    details: dict[str, Any] = {
        "rounds": rounds.count,
        "quiet_seconds": rounds.quiet,
        "attack_seconds": rounds.attack,
        "honest_clients": _HONEST,
        "invocations": {"quiet": len(quiet), "attacked": len(attacked)},
        "p50_ms": {
            "quiet": _ms(percentile(quiet, 0.5)),
            "attacked": _ms(percentile(attacked, 0.5)),
        },
        "p99_ms": {name: _ms(value) for name, value in p99.items()},
        "visits": measured["visits"],
        "failures": failures[:20],
        "before": before,
        "after": after,
    }
    visits = sum(measured["visits"].values())
    return [
        Result(
            benchmark=NAME,
            measure="honest p99 invoke latency, under a hostile crowd / quiet",
            value=ratio,
            goal=Goal("<=", 3.0, "≤ 3x"),
            shown=f"{ratio:.2f}x (p99 {_ms(p99['attacked'])} vs {_ms(p99['quiet'])} ms; p50 "
            f"{details['p50_ms']['attacked']} vs {details['p50_ms']['quiet']} ms; "
            f"{len(attacked)} and {len(quiet)} invocations; {visits} hostile visits of "
            f"{len(ATTACKS)} kinds)",
            details=details,
        ),
        Result(
            benchmark=NAME,
            measure="honest invocations failed, clients and streams left, connections lost",
            value=len(failures) + left,
            goal=Goal("==", 0, "0"),
            shown=f"{len(failures)} failed; {after['clients']} clients, {after['streams']} "
            f"streams and {servers['clients']} routes left; {servers['lost']} server connections "
            "lost",
            details=details,
        ),
        Result(
            benchmark=NAME,
            measure="the app's resident memory, after the crowd minus before (MiB)",
            value=growth,
            goal=Goal("<=", _MEMORY_GOAL, f"≤ {_MEMORY_GOAL} MiB"),
            shown=f"{growth:+.1f} MiB ({before['rss'] / _MB:.0f} → {after['rss'] / _MB:.0f} MiB, "
            f"peak {after['peak_rss'] / _MB:.0f} MiB)",
            details=details,
        ),
    ]
