"""(k) Several endpoints: failover time, and negotiate throughput with three endpoints / one.

Failover time: an app with two emulated resources of one tenant (``east`` primary, ``west``
secondary, the real managed identity, probes every ``INTERVAL`` seconds with a ``TIMEOUT`` second
timeout, the real clock) negotiates in a loop; east is taken down (its health probe answers 503,
or answers later than the timeout) and the time to the first negotiation that returns west's URL
is measured, then east is brought back and the app waits until it routes there again. The result is
the slowest failover over the bound the issue sets, 2 x the probe interval + the probe timeout
(goal: at most 1).

Throughput: two server processes pinned to one core, loaded together as benchmark (b) loads its
pair: one app with one endpoint, one with three (``east``, ``west``, ``backup:secondary`` from the
``Azure__SignalR__ConnectionString__<name>`` variables), both on negotiate. The ratio is the three-
endpoint app's throughput over the one-endpoint app's, the median of the rounds (goal: at least
0.95). A control row loads two one-endpoint apps the same way: its distance from 1 is the method's
own error, including the difference between two processes that the swapped rounds of (b) cancel
and this pair cannot (their configurations differ).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import anyio
import httpx2

from signalr_asgi_auth import SignalRAuth
from signalr_asgi_auth.emulator import local_emulators

from ._common import Goal, Result, Settings, running_server
from ._throughput import Target, compare_together

__all__ = ["NAME", "TITLE", "run"]

NAME = "endpoints"
TITLE = "(k) several endpoints: failover time; negotiate with three endpoints / one"

INTERVAL = 2.0
TIMEOUT = 0.5
BOUND = 2 * INTERVAL + TIMEOUT
NEGOTIATE = "/chat/negotiate?negotiateVersion=1&user=user-1"


def run(settings: Settings) -> list[Result]:
    return [*_failover(settings), *_throughput(settings)]


# -- failover time ---------------------------------------------------------------------------------


def _failover(settings: Settings) -> list[Result]:
    rounds = max(settings.count(6), 2)
    with local_emulators("east", "west:secondary") as region:
        east = region["east"].emulator
        east_url, west_url = region["east"].url, region["west"].url
        auth = SignalRAuth.from_connection_strings(
            region.connection_strings,
            mode="key",
            health_check_interval=INTERVAL,
            health_check_timeout=TIMEOUT,
        )
        times: dict[str, list[float]] = {"503": [], "slow": []}

        async def measure() -> None:
            async with auth as context:

                async def routed_to(url: str) -> float:
                    started = time.monotonic()
                    while True:
                        reply = await context.negotiate("chat", user_id="user-1")
                        if reply["url"].startswith(url):
                            return time.monotonic() - started
                        await anyio.sleep(0.005)

                await routed_to(east_url)
                for number in range(rounds):
                    kind = "503" if number % 2 == 0 else "slow"
                    # A random phase against the probe schedule, as an outage has.
                    await anyio.sleep(INTERVAL * (number % 5) / 5)
                    if kind == "503":
                        fault = east.inject("signalr.health", status=503)
                    else:
                        fault = east.inject("signalr.health", delay=TIMEOUT * 4)
                    times[kind].append(await routed_to(west_url))
                    east.remove_fault(fault)
                    await routed_to(east_url)

        anyio.run(measure)
    everything = times["503"] + times["slow"]
    worst = max(everything)
    return [
        Result(
            benchmark=NAME,
            measure="failover time (down → first negotiation routed away) / (2 x interval + timeout)",
            value=worst / BOUND,
            goal=Goal("<=", 1.0, "≤ 1 (2 x probe interval + probe timeout)"),
            shown=(
                f"{worst / BOUND:.2f} (slowest {worst:.2f} s of {len(everything)}; bound "
                f"{BOUND:g} s with interval {INTERVAL:g} s, timeout {TIMEOUT:g} s; median 503 "
                f"{statistics.median(times['503']):.2f} s, slow "
                f"{statistics.median(times['slow']):.2f} s)"
            ),
            details={"seconds": times, "interval": INTERVAL, "timeout": TIMEOUT, "bound": BOUND},
        )
    ]


# -- throughput ------------------------------------------------------------------------------------


def _throughput(settings: Settings) -> list[Result]:
    with local_emulators("east", "west", "backup:secondary") as region:
        one = {
            **region["east"].emulator.app_service_env(region["east"].url),
            "AZURE_SIGNALR_CONNECTION_STRING": region["east"].connection_string,
        }
        three = {**region.environment, "AZURE_SIGNALR_CONNECTION_STRING": ""}
        with (
            running_server([], env=one) as single,
            running_server([], env=three) as several,
            running_server([], env=one) as control,
        ):
            for server in (single, several, control):
                reply = httpx2.post(server.url + NEGOTIATE, timeout=10).json()
                if set(reply) != {"url", "accessToken"}:
                    msg = f"negotiate answered {reply!r}"
                    raise RuntimeError(msg)

            def together(candidate: Any, rounds: int) -> dict[str, Any]:
                return compare_together(
                    Target("baseline", single.url, NEGOTIATE, single.pid),
                    Target("candidate", candidate.url, NEGOTIATE, candidate.pid),
                    settings=settings,
                    rounds=rounds,
                    duration=3.0,
                )

            measured = together(several, 8)
            noise = together(control, 4)
        keys = {
            name: local.emulator.log.count("signalr.access_key")
            for name, local in region.resources.items()
        }
        measured["access_key_requests"] = keys
    ratio = measured["ratio"]
    return [
        Result(
            benchmark=NAME,
            measure="negotiate throughput, three endpoints / one endpoint",
            value=ratio,
            goal=Goal(">=", 0.95, "≥ 0.95x"),
            shown=f"{ratio:.3f}x ({measured['median_rps']['candidate']} vs "
            f"{measured['median_rps']['baseline']} req/s; per server CPU s "
            f"{measured['ratio_per_server_cpu']:.3f}x)",
            details=measured,
        ),
        Result(
            benchmark=NAME,
            measure="control: one endpoint / one endpoint, two processes",
            value=noise["ratio"],
            goal=Goal("info", text="— (≈ 1: the method's own error)"),
            shown=f"{noise['ratio']:.3f}x (rounds "
            f"{', '.join(f'{r:.3f}' for r in noise['round_ratios'])})",
            details=noise,
        ),
    ]
