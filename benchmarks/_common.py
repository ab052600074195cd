"""What every benchmark shares: results and goals, statistics, and child processes that always end.

Servers and the load generator run as child processes (``python -m benchmarks._server`` and
``python -m benchmarks._loadgen``) so that neither steals the other's interpreter; on a machine with
two or more cores the server is pinned to one core and the load generator to another. Every child is
killed in a ``finally``, and every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "LOADGEN_CPU",
    "ROOT",
    "SERVER_CPU",
    "Goal",
    "Result",
    "ServerProcess",
    "Settings",
    "median",
    "percentile",
    "pin_to",
    "run_loadgen",
    "running_server",
    "time_rows",
]

ROOT = Path(__file__).resolve().parent.parent

SERVER_CPU = 1
LOADGEN_CPU = 0
_READY = "READY "
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Settings:
    """How long and how often: ``quick`` shortens every loop (a smoke run, not a measurement)."""

    quick: bool = False

    def seconds(self, full: float) -> float:
        return max(full / 5, 0.5) if self.quick else full

    def count(self, full: int) -> int:
        return max(full // 5, 1) if self.quick else full


@dataclass(frozen=True, slots=True)
class Goal:
    """``ratio <= limit`` or ``ratio >= limit``; ``info`` when the issue sets no goal."""

    op: Literal["<=", ">=", "==", "info"]
    limit: float = math.nan
    text: str = ""

    def check(self, value: float) -> bool | None:
        if self.op == "info":
            return None
        if self.op == "<=":
            return value <= self.limit
        if self.op == ">=":
            return value >= self.limit
        return value == self.limit


@dataclass(slots=True)
class Result:
    """One row of the table: ``value`` is the measured ratio (or count), ``shown`` how it prints."""

    benchmark: str
    measure: str
    value: float
    goal: Goal
    shown: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        return self.goal.check(self.value)

    def as_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "measure": self.measure,
            "value": _finite(self.value),
            "shown": self.shown or f"{self.value:.3g}",
            "goal": self.goal.text or "—",
            "passed": self.passed,
            "details": self.details,
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile by the nearest-rank method (p99 is ``fraction=0.99``)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]


def _calls_per_batch(function: Callable[[], object], batch_seconds: float) -> int:
    calls = 1
    while True:
        started = time.perf_counter()
        for _ in range(calls):
            function()
        if time.perf_counter() - started >= batch_seconds:
            return calls
        calls *= 2


def time_rows(
    rows: Mapping[str, Callable[[], object]],
    repeats: int,
    *,
    clock: Callable[[], int] = time.perf_counter_ns,
    batch_seconds: float = 0.02,
) -> dict[str, float]:
    """Nanoseconds per call of each row, in one process, interleaved: each repeat times every row
    once, in rotating order, over enough calls to take about ``batch_seconds``; a row's cost is its
    fastest repeat (what the machine's other work disturbed least)."""
    sizes = {name: _calls_per_batch(function, batch_seconds) for name, function in rows.items()}
    best = dict.fromkeys(rows, float("inf"))
    names = list(rows)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            function, calls = rows[name], sizes[name]
            started = clock()
            for _ in range(calls):
                function()
            best[name] = min(best[name], (clock() - started) / calls)
    return best


def pin_to(cpu: int | None) -> None:
    """Keep this process on one core, when the machine has it (Linux only; otherwise a no-op).
    ``BENCH_PIN=0`` in the environment turns pinning off (``--no-pin``)."""
    if cpu is None or os.environ.get("BENCH_PIN") == "0" or not hasattr(os, "sched_setaffinity"):
        return
    with contextlib.suppress(OSError):
        available = os.sched_getaffinity(0)
        if len(available) >= 2:
            os.sched_setaffinity(0, {sorted(available)[cpu % len(available)]})


def _python_module(module: str, *args: str, cpu: int | None) -> list[str]:
    command = [sys.executable, "-m", module, *args]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    return command


@dataclass(frozen=True, slots=True)
class ServerProcess:
    url: str
    pid: int


@contextlib.contextmanager
def running_server(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cpu: int | None = SERVER_CPU,
    module: str = "benchmarks._server",
) -> Iterator[ServerProcess]:
    """Start ``python -m benchmarks._server ARGS`` (or another ``module`` that prints ``READY
    url`` the same way) once it serves (after its lifespan startup, so the key is already
    fetched). It is stopped, then killed, on exit."""
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            _python_module(module, *args, cpu=cpu),
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            yield ServerProcess(_wait_ready(process, errors), process.pid)
        finally:
            _stop(process)


def _wait_ready(process: subprocess.Popen[str], errors: Any) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + _START_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if selector.select(timeout=min(left, 0.2)):
                line = process.stdout.readline()
                if line.startswith(_READY):
                    return line[len(_READY) :].strip()
                if not line and process.poll() is not None:
                    break
            elif process.poll() is not None:
                break
    errors.seek(0)
    tail = errors.read()[-2000:]
    msg = f"The benchmark server did not start (exit code {process.poll()}):\n{tail}"
    raise RuntimeError(msg)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT)
    if process.stdout is not None:
        process.stdout.close()


def run_loadgen(plan: Mapping[str, Any], *, cpu: int | None = LOADGEN_CPU) -> list[dict[str, Any]]:
    """Run the load generator on ``plan`` (see ``benchmarks._loadgen``); one report per phase."""

    def seconds(phase: Mapping[str, Any]) -> float:
        if "together" in phase:
            return max(seconds(inner) for inner in phase["together"])
        return float(phase["duration"]) + float(phase.get("warmup", 0.0))

    budget = sum(seconds(phase) for phase in plan["phases"]) + 30.0
    completed = subprocess.run(
        _python_module("benchmarks._loadgen", cpu=cpu),
        cwd=ROOT,
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        timeout=budget,
        check=False,
    )
    if completed.returncode != 0:
        msg = f"The load generator failed ({completed.returncode}):\n{completed.stderr[-2000:]}"
        raise RuntimeError(msg)
    reports: list[dict[str, Any]] = json.loads(completed.stdout)
    return reports
