"""(c) The middleware's cost on a route that does not use it.

Two server processes with the same routes, one with :class:`SignalRAuthMiddleware` (Entra mode, key
fetched) and one without, pinned to the same core and loaded on their ``/bare`` route at the same
time: a 2% difference is far below what a busy machine does to throughput from one second to the
next, but both servers live through the same seconds. The result is the throughput with the
middleware over the throughput without, per second of each server's own CPU time (goal: at least
0.98, i.e. at most 2% overhead); the wall-clock ratio is reported beside it.
"""

from __future__ import annotations

from ._common import Goal, Result, Settings, running_server
from ._emulated import app_environment, new_emulator, served
from ._throughput import Target, compare_together

__all__ = ["NAME", "TITLE", "run"]

NAME = "middleware"
TITLE = "(c) bare route with / without the middleware, throughput"

BARE = "/bare?negotiateVersion=1&user=user-1"


def run(settings: Settings) -> list[Result]:
    emulator = new_emulator()
    with (
        served(emulator) as emulator_url,
        running_server(["--no-middleware"]) as without,
        running_server([], env=app_environment(emulator, emulator_url)) as with_middleware,
    ):
        measured = compare_together(
            Target("without", without.url, BARE, without.pid),
            Target("with", with_middleware.url, BARE, with_middleware.pid),
            settings=settings,
            rounds=8,
            duration=3.0,
        )
    ratio = measured["ratio_per_server_cpu"]
    overhead = (1 - ratio) * 100
    return [
        Result(
            benchmark=NAME,
            measure="throughput per server CPU s, with the middleware / without",
            value=ratio,
            goal=Goal(">=", 0.98, "≥ 0.98x (≤ 2% overhead)"),
            shown=f"{ratio:.3f}x ({overhead:+.1f}% overhead; wall clock {measured['ratio']:.3f}x, "
            f"{measured['median_rps']['with']} vs {measured['median_rps']['without']} req/s)",
            details=measured,
        )
    ]
