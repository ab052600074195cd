"""(g) An invocation's round trip in Default mode / in Serverless mode with upstream.

The same hub app (``benchmarks._hub_server``: one ``Hub`` with ``echo(text) -> text``) runs twice,
each process on an emulator of its own: once in Default mode (the service hands the invocation to
the app over a server connection, the completion comes back the same way) and once in Serverless
mode (the service POSTs the invocation to the app's upstream URL with a managed-identity token,
which the app verifies, and relays the answer). A bare client in a process of its own holds one
connection to each and invokes ``echo`` with 100 characters, one call at a time, switching
between the two every round so that both live through the same seconds. The result is the median
round trip in Default mode over the median in Serverless mode (goal: at most 0.5). Each app
process's CPU time per call (the emulators' is not in it) is shown beside it.

Both app processes share one core and the client has the other; the emulators run in threads of
the runner. Loopback HTTP is much cheaper than a real network hop: on Azure, Serverless mode adds a
round trip between the service and the app that Default mode does not pay per call.
"""

from __future__ import annotations

from contextlib import ExitStack

from ._common import Goal, Result, Settings, median, percentile
from ._hub_setup import hub_app, run_client
from ._loadgen import _cpu_seconds

__all__ = ["NAME", "TITLE", "run"]

NAME = "hub_roundtrip"
TITLE = "(g) invocation round trip, Default mode / Serverless with upstream"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def run(settings: Settings) -> list[Result]:
    rounds = settings.count(10)
    plan = {"rounds": rounds, "count": settings.count(200), "warmup": settings.count(20)}
    with ExitStack() as stack:
        apps = {mode: stack.enter_context(hub_app(mode)) for mode in ("default", "serverless")}
        cpu_before = {mode: _cpu_seconds(app.pid) or 0.0 for mode, app in apps.items()}
        report = run_client(
            "roundtrips",
            {**plan, "targets": {mode: app.url for mode, app in apps.items()}},
            timeout=600,
        )
        cpu = {
            mode: (_cpu_seconds(app.pid) or 0.0) - cpu_before[mode] for mode, app in apps.items()
        }
    latencies = report["latencies"]
    calls = dict.fromkeys(latencies, plan["rounds"] * (plan["count"] + plan["warmup"]))
    app_cpu_us = {mode: round(cpu[mode] / calls[mode] * 1e6) for mode in latencies}
    p50 = {mode: median(values) for mode, values in latencies.items()}
    p99 = {mode: percentile(values, 0.99) for mode, values in latencies.items()}
    ratio = p50["default"] / p50["serverless"]
    return [
        Result(
            benchmark=NAME,
            measure="invocation round trip p50, Default / Serverless with upstream",
            value=ratio,
            goal=Goal("<=", 0.5, "≤ 0.5x"),
            shown=f"{ratio:.3f}x (p50 {_ms(p50['default'])} vs {_ms(p50['serverless'])} ms; "
            f"p99 {_ms(p99['default'])} vs {_ms(p99['serverless'])} ms; the app's CPU per call "
            f"{app_cpu_us['default']} vs {app_cpu_us['serverless']} µs)",
            details={
                **plan,
                "p50_ms": {mode: _ms(value) for mode, value in p50.items()},
                "p99_ms": {mode: _ms(value) for mode, value in p99.items()},
                "invocations": {mode: len(values) for mode, values in latencies.items()},
                "app_cpu_per_call_us": app_cpu_us,
            },
        )
    ]
