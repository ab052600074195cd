"""(b) Negotiate through uvicorn against a bare JSON endpoint of the same app.

The app: Starlette + :class:`SignalRAuthMiddleware` (Entra mode, its managed identity and temporary
key from the emulator, fetched at startup) with ``negotiate_endpoint("chat")`` and a JSON route of
the same size that reads the same query parameter. Two processes of it are pinned to one core; the
load generator, in another process on the other core, loads one on the bare route and the other on
negotiate at the same time, and swaps them every round. The result is negotiate's throughput over
the bare route's, the median of the rounds (goal: at least 0.9).

Why two processes at once rather than one route after the other: on this kind of machine (a shared
virtual machine), a route's throughput drifts by ±20% from one few-second phase to the next, more
than the difference to be measured. Loaded together, both routes live through the same seconds and
the scheduler gives each half of the core; the ratio of the two throughputs is then the ratio of
their costs per request. A control row measures the bare route against itself the same way: its
distance from 1 is the method's own error (seen here: 1.000 and 1.001, single rounds within 2%).
"""

from __future__ import annotations

from typing import Any

import httpx2

from ._common import Goal, Result, Settings, running_server
from ._emulated import app_environment, new_emulator, served
from ._throughput import Target, compare_together

__all__ = ["NAME", "TITLE", "run"]

NAME = "negotiate"
TITLE = "(b) negotiate / bare JSON route, throughput through uvicorn"

NEGOTIATE = "/chat/negotiate?negotiateVersion=1&user=user-1"
BARE = "/bare?negotiateVersion=1&user=user-1"


def run(settings: Settings) -> list[Result]:
    emulator = new_emulator()
    with served(emulator) as emulator_url:
        environment = app_environment(emulator, emulator_url)
        with (
            running_server([], env=environment) as first,
            running_server([], env=environment) as second,
        ):
            for server in (first, second):
                reply = httpx2.post(server.url + NEGOTIATE, timeout=10).json()
                if set(reply) != {"url", "accessToken"}:
                    msg = f"negotiate answered {reply!r}"
                    raise RuntimeError(msg)

            def routes(baseline: str, candidate: str, rounds: int) -> dict[str, Any]:
                return compare_together(
                    Target("baseline", first.url, baseline, first.pid),
                    Target("candidate", second.url, candidate, second.pid),
                    swapped=(
                        Target("baseline", second.url, baseline, second.pid),
                        Target("candidate", first.url, candidate, first.pid),
                    ),
                    settings=settings,
                    rounds=rounds,
                    duration=3.0,
                )

            measured = routes(BARE, NEGOTIATE, 8)
            control = routes(BARE, BARE, 4)
        measured["access_key_requests"] = emulator.log.count("signalr.access_key")
        measured["identity_requests"] = emulator.log.count("identity.app_service")
    ratio, noise = measured["ratio"], control["ratio"]
    return [
        Result(
            benchmark=NAME,
            measure="negotiate throughput / bare JSON throughput",
            value=ratio,
            goal=Goal(">=", 0.9, "≥ 0.9x"),
            shown=f"{ratio:.3f}x ({measured['median_rps']['candidate']} vs "
            f"{measured['median_rps']['baseline']} req/s; per server CPU s "
            f"{measured['ratio_per_server_cpu']:.3f}x)",
            details=measured,
        ),
        Result(
            benchmark=NAME,
            measure="control: bare JSON throughput / itself",
            value=noise,
            goal=Goal("info", text="— (≈ 1: the method's own error)"),
            shown=f"{noise:.3f}x (rounds {', '.join(f'{r:.3f}' for r in control['round_ratios'])})",
            details=control,
        ),
    ]
