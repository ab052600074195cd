"""Throughput of two routes (or two servers) compared in alternating rounds under one load generator.

One load-generator process runs every phase: a warm-up of each target, then ``rounds`` rounds in
which each target gets ``duration`` seconds of closed-loop load (the order flips every round, so
neither always runs second). Each round gives one ratio; the result is their median. Next to the
wall-clock throughput, each phase reports the server's own CPU time (from /proc), so that a ratio
of requests per server CPU second tells whether a low round was the code or a busy machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._common import Settings, median, run_loadgen

__all__ = ["Target", "compare", "compare_together"]

_CONNECTIONS = 32
_FIRST_WARMUP = 1.0
_PHASE_WARMUP = 0.3


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    url: str
    path: str
    pid: int | None = None
    paths: tuple[str, ...] = ()
    """When given, the requests go round these paths instead of ``path``."""


def _phase(target: Target, *, duration: float, warmup: float) -> dict[str, Any]:
    return {
        "url": target.url,
        "path": target.path,
        "paths": list(target.paths),
        "method": "POST",
        "duration": duration,
        "warmup": warmup,
        "connections": _CONNECTIONS,
        "server_pid": target.pid,
    }


def compare(
    baseline: Target, candidate: Target, *, settings: Settings, rounds: int, duration: float
) -> dict[str, Any]:
    """``candidate``'s throughput over ``baseline``'s: the median of per-round ratios, with every
    round's numbers (requests per second, and per second of the server's CPU)."""
    duration = settings.seconds(duration)
    rounds = max(settings.count(rounds), 2)
    targets = (baseline, candidate)
    phases = [_phase(t, duration=settings.seconds(_FIRST_WARMUP), warmup=0.0) for t in targets]
    order: list[Target] = []
    for number in range(rounds):
        order += targets if number % 2 == 0 else targets[::-1]
    phases += [_phase(t, duration=duration, warmup=_PHASE_WARMUP) for t in order]
    reports = run_loadgen({"phases": phases})[len(targets) :]
    by_label: dict[str, list[dict[str, Any]]] = {baseline.label: [], candidate.label: []}
    for target, report in zip(order, reports, strict=True):
        by_label[target.label].append(report)
    _check(reports)
    return {
        **_summary(by_label, baseline, candidate),
        "loadgen_cpu": {
            label: [r["loadgen_cpu"] for r in runs] for label, runs in by_label.items()
        },
        "ok": {label: [r["ok"] for r in runs] for label, runs in by_label.items()},
        "windows": {label: [r["window"] for r in runs] for label, runs in by_label.items()},
        "rounds": rounds,
        "seconds_per_phase": duration,
        "connections": _CONNECTIONS,
    }


def _summary(
    by_label: dict[str, list[dict[str, Any]]], baseline: Target, candidate: Target
) -> dict[str, Any]:
    """The ratios (median over rounds, and each round's) and the raw numbers behind them."""
    wall = _ratios(by_label, baseline, candidate, "rps")
    cpu = _ratios(by_label, baseline, candidate, "rps_per_server_cpu")
    return {
        "ratio": median(wall),
        "ratio_per_server_cpu": median(cpu),
        "round_ratios": [round(r, 4) for r in wall],
        "round_ratios_per_server_cpu": [round(r, 4) for r in cpu],
        "rps": {label: [round(r["rps"]) for r in runs] for label, runs in by_label.items()},
        "median_rps": {
            label: round(median([r["rps"] for r in runs])) for label, runs in by_label.items()
        },
        "server_cpu": {
            label: [r.get("server_cpu") for r in runs] for label, runs in by_label.items()
        },
    }


def _ratios(
    by_label: dict[str, list[dict[str, Any]]], baseline: Target, candidate: Target, key: str
) -> list[float]:
    pairs = zip(by_label[baseline.label], by_label[candidate.label], strict=True)
    return [c[key] / b[key] for b, c in pairs if b.get(key) and c.get(key)]


def _check(reports: Sequence[dict[str, Any]]) -> None:
    for report in reports:
        if report["failures"] or report["ok"] != report["requests"] or not report["ok"]:
            msg = (
                f"Load on {report['path']} did not get only 200s: statuses {report['statuses']}, "
                f"failures {report['failures']}"
            )
            raise RuntimeError(msg)


def compare_together(
    baseline: Target,
    candidate: Target,
    *,
    settings: Settings,
    rounds: int,
    duration: float,
    swapped: tuple[Target, Target] | None = None,
) -> dict[str, Any]:
    """Like :func:`compare`, for two server processes on the same core loaded at the same time.

    Both are saturated, so the scheduler shares the core between them; whatever else the machine
    runs takes from both alike, and each one's requests per second of its own CPU time compare
    their costs per request. Each round is one simultaneous phase. ``swapped`` (the baseline and
    the candidate again, each on the other's server) is used in every other round, so that a
    difference between the two processes counts against both alike.
    """
    duration = settings.seconds(duration)
    rounds = max(settings.count(rounds), 2)
    pairs = [(baseline, candidate), swapped or (candidate, baseline)]
    warm = [
        _phase(target, duration=settings.seconds(_FIRST_WARMUP), warmup=0.0)
        for target in (baseline, candidate)
    ]
    plan = {
        "phases": [{"together": warm}]
        + [
            {
                "together": [
                    _phase(target, duration=duration, warmup=_PHASE_WARMUP)
                    for target in pairs[number % 2]
                ]
            }
            for number in range(rounds)
        ]
    }
    by_label: dict[str, list[dict[str, Any]]] = {baseline.label: [], candidate.label: []}
    for number, entry in enumerate(run_loadgen(plan)[1:]):
        for target, report in zip(pairs[number % 2], entry["together"], strict=True):
            by_label[target.label].append(report)
    _check([r for runs in by_label.values() for r in runs])
    return {
        **_summary(by_label, baseline, candidate),
        "loadgen_cpu": [r["loadgen_cpu"] for r in by_label[baseline.label]],
        "rounds": rounds,
        "seconds_per_round": duration,
        "connections_each": _CONNECTIONS,
        "simultaneous": True,
    }
