"""(d) p99 negotiate latency while an Entra token refresh is in flight, against none in flight.

The emulator issues managed-identity tokens that live 4 seconds, so the server's Entra keeper
refreshes each at half-life, and every identity request is answered 2 seconds late
(``emulator.inject("identity.app_service", delay=2)``): a refresh is in flight about half the time.
One load phase on the negotiate route keeps every request's start and latency; the emulator's log
says when each identity request arrived, so each negotiation is sorted into "a refresh in flight"
(from just before the identity request to a moment after its answer, where the token is read and
stored) or "none in flight". Both sets come from the same seconds of the same run. The result is the
first set's p99 over the second's (goal: at most 1.2).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from typing import Any

from ._common import Goal, Result, Settings, percentile, run_loadgen, running_server
from ._emulated import app_environment, new_emulator, served

__all__ = ["NAME", "TITLE", "run"]

NAME = "refresh"
TITLE = "(d) p99 negotiate latency, refresh in flight / none"

NEGOTIATE = "/chat/negotiate?negotiateVersion=1&user=user-1"
_TOKEN_LIFETIME = 4.0
_DELAY = 2.0
_BEFORE = 0.05  # the request leaves the server a moment before the emulator logs it
_AFTER = 0.25  # after the answer: parsing and storing the token, waking the keeper
_CONNECTIONS = 8


def _windows(arrivals: Sequence[float]) -> list[tuple[float, float]]:
    return [(at - _BEFORE, at + _DELAY + _AFTER) for at in sorted(arrivals)]


def _in_flight(start: float, windows: list[tuple[float, float]], starts: list[float]) -> bool:
    index = bisect.bisect_right(starts, start) - 1
    return index >= 0 and windows[index][0] <= start <= windows[index][1]


def _summary(latencies: Sequence[float]) -> dict[str, Any]:
    def ms(value: float) -> float:
        return round(value * 1000, 3)

    return {
        "count": len(latencies),
        "p50_ms": ms(percentile(latencies, 0.50)),
        "p99_ms": ms(percentile(latencies, 0.99)),
        "p999_ms": ms(percentile(latencies, 0.999)),
        "max_ms": ms(max(latencies)) if latencies else None,
    }


def run(settings: Settings) -> list[Result]:
    emulator = new_emulator(token_lifetime=_TOKEN_LIFETIME)
    duration = settings.seconds(30.0)
    with (
        served(emulator) as emulator_url,
        running_server([], env=app_environment(emulator, emulator_url)) as server,
    ):
        injected_at = time.time()
        emulator.inject("identity.app_service", delay=_DELAY)
        phase = {
            "url": server.url,
            "path": NEGOTIATE,
            "method": "POST",
            "duration": duration,
            "warmup": 0.5,
            "connections": _CONNECTIONS,
            "samples": True,
            "server_pid": server.pid,
        }
        (report,) = run_loadgen({"phases": [phase]})
        ended_at = time.time()
    identity = [e for e in emulator.log.entries("identity.app_service") if e.at >= injected_at]
    windows = _windows([entry.at for entry in identity])
    window_starts = [start for start, _ in windows]
    during: list[float] = []
    outside: list[float] = []
    for start, latency in report["samples"]:
        (during if _in_flight(start, windows, window_starts) else outside).append(latency)
    if report["ok"] != report["requests"] or not during or not outside:
        msg = (
            f"no comparison: statuses {report['statuses']}, {len(identity)} refreshes, "
            f"{len(during)} negotiations during one and {len(outside)} outside"
        )
        raise RuntimeError(msg)
    p99_during, p99_outside = percentile(during, 0.99), percentile(outside, 0.99)
    ratio = p99_during / p99_outside
    details = {
        "refreshes": len(identity),
        "refresh_statuses": sorted(
            {entry.status for entry in identity if entry.at + _DELAY < ended_at}
        ),
        "identity_delay_s": _DELAY,
        "entra_token_lifetime_s": _TOKEN_LIFETIME,
        "in_flight": _summary(during),
        "none_in_flight": _summary(outside),
        "rps": round(report["rps"]),
        "connections": _CONNECTIONS,
        "seconds": duration,
    }
    return [
        Result(
            benchmark=NAME,
            measure="p99 negotiate latency, refresh in flight / none in flight",
            value=ratio,
            goal=Goal("<=", 1.2, "≤ 1.2x"),
            shown=f"{ratio:.2f}x (p99 {p99_during * 1000:.2f} vs {p99_outside * 1000:.2f} ms; "
            f"{len(identity)} refreshes)",
            details=details,
        )
    ]
