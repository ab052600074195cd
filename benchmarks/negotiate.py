"""(b) Negotiate through uvicorn against a bare JSON endpoint of the same app.

One server process: Starlette + :class:`SignalRAuthMiddleware` (Entra mode, its managed identity and
temporary key from the emulator, fetched at startup) with ``negotiate_endpoint("chat")`` and a
constant JSON route of the same size. The load generator, in another process, alternates between
the two routes; the result is negotiate's throughput over the bare route's (goal: at least 0.9).
"""

from __future__ import annotations

import httpx2

from ._common import Goal, Result, Settings, running_server
from ._emulated import app_environment, new_emulator, served
from ._throughput import Target, compare

__all__ = ["NAME", "TITLE", "run"]

NAME = "negotiate"
TITLE = "(b) negotiate / bare JSON route, throughput through uvicorn"

NEGOTIATE = "/chat/negotiate?negotiateVersion=1&user=user-1"
BARE = "/bare?negotiateVersion=1&user=user-1"


def run(settings: Settings) -> list[Result]:
    emulator = new_emulator()
    with served(emulator) as emulator_url:
        with running_server([], env=app_environment(emulator, emulator_url)) as server:
            reply = httpx2.post(server.url + NEGOTIATE, timeout=10).json()
            if set(reply) != {"url", "accessToken"}:
                msg = f"negotiate answered {reply!r}"
                raise RuntimeError(msg)
            measured = compare(
                Target("bare", server.url, BARE, server.pid),
                Target("negotiate", server.url, NEGOTIATE, server.pid),
                settings=settings,
                rounds=6,
                duration=3.0,
            )
        measured["access_key_requests"] = emulator.log.count("signalr.access_key")
        measured["identity_requests"] = emulator.log.count("identity.app_service")
    ratio = measured["ratio"]
    return [
        Result(
            benchmark=NAME,
            measure="negotiate throughput / bare JSON throughput",
            value=ratio,
            goal=Goal(">=", 0.9, "≥ 0.9x"),
            shown=f"{ratio:.3f}x ({measured['median_rps']['negotiate']} vs "
            f"{measured['median_rps']['bare']} req/s; per server CPU s "
            f"{measured['ratio_per_server_cpu']:.3f}x)",
            details=measured,
        )
    ]
