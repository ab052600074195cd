"""``python -m benchmarks [NAME ...]``: run the benchmarks, print the table, save the JSON.

Names are the modules' (``mint``, ``negotiate``, ...) or the issues' letters (``a`` to ``l``).
Results go to ``benchmarks/results/<UTC timestamp>.json``. The exit status is 0 when every goal
was met, 1 when one was missed, 2 when a benchmark could not run. ``--quick`` loops are too short to
measure: its exit status says only whether every benchmark ran (0) or not (2).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from . import (
    codec,
    crowd,
    endpoints,
    hub_broadcast,
    hub_memory,
    hub_roundtrip,
    middleware,
    mint,
    negotiate,
    refresh,
    service,
    webpubsub,
    websocket,
)
from ._common import ROOT, Goal, Result, Settings

__all__ = ["main"]

BENCHMARKS: dict[str, ModuleType] = {
    "a": mint,
    "b": negotiate,
    "c": middleware,
    "d": refresh,
    "e": service,
    "f": webpubsub,
    "g": hub_roundtrip,
    "h": hub_broadcast,
    "i": codec,
    "j": hub_memory,
    "k": endpoints,
    "l": crowd,
    "w": websocket,
}

_PACKAGES = (
    "signalr-asgi-auth",
    "starlette",
    "uvicorn",
    "h11",
    "httptools",
    "uvloop",
    "httpx2",
    "anyio",
    "azure-identity",
    "azure-core",
    "pyjwt",
    "msgpack",
    "websockets",
    "wsproto",
    "azure-messaging-webpubsubservice",
)


def _select(names: Sequence[str]) -> list[ModuleType]:
    if not names:
        return list(BENCHMARKS.values())
    by_name = {module.NAME: module for module in BENCHMARKS.values()} | BENCHMARKS
    unknown = [name for name in names if name not in by_name]
    if unknown:
        known = ", ".join(f"{letter} ({m.NAME})" for letter, m in BENCHMARKS.items())
        msg = f"unknown benchmark {', '.join(unknown)}; choose from {known}"
        raise SystemExit(msg)
    return list(dict.fromkeys(by_name[name] for name in names))


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout.strip()
    return None


def _environment() -> dict[str, Any]:
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cpu_affinity": affinity,
        "pinning": os.environ.get("BENCH_PIN") != "0",
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "packages": {name: _version(name) for name in _PACKAGES},
    }


def _load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _failed_row(module: ModuleType, error: BaseException) -> Result:
    return Result(
        benchmark=module.NAME,
        measure=module.TITLE,
        value=float("nan"),
        goal=Goal("==", float("nan"), "runs"),
        shown=f"error: {type(error).__name__}: {error}"[:200],
        details={"traceback": traceback.format_exception(error)},
    )


def _verdict(result: Result) -> str:
    passed = result.passed
    if result.shown.startswith("error:"):
        return "ERROR"
    return "info" if passed is None else "pass" if passed else "FAIL"


def _table(results: Sequence[Result]) -> str:
    rows = [("benchmark", "measure", "measured", "goal", "result")]
    rows += [(r.benchmark, r.measure, r.shown, r.goal.text or "—", _verdict(r)) for r in results]
    widths = [min(max(len(row[i]) for row in rows), 70) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _run(
    modules: Sequence[ModuleType], settings: Settings, echo: Callable[[str], None]
) -> list[Result]:
    results: list[Result] = []
    for module in modules:
        echo(f"==> {module.TITLE}")
        started = time.monotonic()
        try:
            rows: list[Result] = module.run(settings)
        except Exception as error:  # one broken benchmark must not lose the others' numbers
            rows = [_failed_row(module, error)]
        elapsed = time.monotonic() - started
        for row in rows:
            row.details.setdefault("seconds", round(elapsed, 1))
            echo(f"    {row.measure}: {row.shown} [{_verdict(row)}]")
        results += rows
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Run the benchmarks: each result is a ratio against a baseline in the same run.",
        epilog="benchmarks: " + ", ".join(f"{letter}/{m.NAME}" for letter, m in BENCHMARKS.items()),
    )
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="shorter loops: a smoke run")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results", help="where the JSON goes"
    )
    args = parser.parse_args(argv)
    modules = _select(args.names)
    if args.no_pin:
        os.environ["BENCH_PIN"] = "0"
    settings = Settings(quick=args.quick)
    started_at = datetime.now(UTC)
    load_before = _load()
    began = time.monotonic()
    results = _run(modules, settings, lambda line: print(line, flush=True))
    document = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - began, 1),
        "quick": settings.quick,
        "load_average_before": load_before,
        "load_average_after": _load(),
        "environment": _environment(),
        "results": [result.as_json() for result in results],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print()
    print(_table(results))
    print(
        f"\n{len(results)} results in {document['seconds']} s; load average before "
        f"{load_before}, after {document['load_average_after']}; saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
    )
    verdicts = [_verdict(result) for result in results]
    if "ERROR" in verdicts:
        return 2
    if settings.quick:
        print(
            "--quick: every benchmark ran; loops this short measure nothing, so no goal is judged."
        )
        return 0
    return 1 if "FAIL" in verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
