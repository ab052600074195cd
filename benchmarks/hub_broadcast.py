"""(h) Broadcasts the app can push per second: over its server connections / through the REST API.

One hub app in Default mode (``benchmarks._hub_server``) on the emulator, with one client
connected (a bare client in a process of its own, counting what arrives). For a few seconds at a
time, 8 tasks in the app each push one broadcast after another (``newMessage`` with 100
characters): over the server connections (``chat.clients.all.send``, a message written on a
WebSocket the app keeps open) or through the REST API (``hub.send_to_all``, one authenticated HTTP
request answered 202 each). The two alternate for several rounds; the result is the median rate
over server connections over the median rate through REST (goal: at least 10). Every broadcast is
counted on arrival at the client too, and the app process's CPU time per broadcast is shown beside
the rates (the emulator's is not in it).
"""

from __future__ import annotations

import json
import subprocess

import httpx2

from ._common import ROOT, Goal, Result, Settings, median
from ._hub_setup import client_command, hub_app
from ._loadgen import _cpu_seconds

__all__ = ["NAME", "TITLE", "run"]

NAME = "hub_broadcast"
TITLE = "(h) broadcasts per second, server connections / REST send_to_all"

CONCURRENCY = 8


def run(settings: Settings) -> list[Result]:
    rounds = settings.count(4)
    seconds = settings.seconds(2.0)
    rates: dict[str, list[float]] = {"hub": [], "rest": []}
    cpu: dict[str, float] = {"hub": 0.0, "rest": 0.0}
    count: dict[str, int] = {"hub": 0, "rest": 0}
    sent = 0
    with hub_app("default") as app:
        listener = subprocess.Popen(
            client_command("listen", {"app": app.url}),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert listener.stdout is not None
            assert listener.stdin is not None
            if listener.stdout.readline().strip() != "READY":
                msg = "The listening client did not connect."
                raise RuntimeError(msg)
            with httpx2.Client(base_url=app.url, timeout=seconds + 60) as http:
                for _ in range(rounds):
                    for via in ("hub", "rest"):
                        before = _cpu_seconds(app.pid) or 0.0
                        answer = http.post(
                            "/broadcasts",
                            params={"via": via, "seconds": seconds, "concurrency": CONCURRENCY},
                        )
                        answer.raise_for_status()
                        pushed = answer.json()
                        cpu[via] += (_cpu_seconds(app.pid) or 0.0) - before
                        count[via] += pushed["sent"]
                        rates[via].append(pushed["sent"] / pushed["seconds"])
                        sent += pushed["sent"]
            listener.stdin.close()
            received = json.loads(listener.stdout.read().strip().splitlines()[-1])["received"]
            listener.wait(timeout=30)
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait(timeout=5)
    rate = {via: median(values) for via, values in rates.items()}
    app_cpu_us = {via: round(cpu[via] / max(count[via], 1) * 1e6) for via in cpu}
    ratio = rate["hub"] / rate["rest"]
    return [
        Result(
            benchmark=NAME,
            measure="broadcasts per second, server connections / REST send_to_all",
            value=ratio,
            goal=Goal(">=", 10.0, "≥ 10x"),
            shown=f"{ratio:.1f}x ({rate['hub']:.0f} vs {rate['rest']:.0f} per s; "
            f"the app's CPU per broadcast {app_cpu_us['hub']} vs {app_cpu_us['rest']} µs; "
            f"{received} of {sent} arrived)",
            details={
                "rounds": rounds,
                "seconds_per_round": seconds,
                "concurrency": CONCURRENCY,
                "per_second": {via: [round(r) for r in values] for via, values in rates.items()},
                "sent": sent,
                "received_by_the_client": received,
                "app_cpu_per_broadcast_us": app_cpu_us,
            },
        )
    ]
