"""The clients of benchmark (l), each side in a process of its own, pinned like the others' load
generators. Both reuse the test's crowd (``tests/hubs/crowd.py`` and ``tests/hubs/hostile.py``).

``python -m benchmarks._crowd_client honest PLAN``: the honest clients of ``tests.hubs.crowd`` (its
``main`` describes PLAN); prints their round trips and failures.

``python -m benchmarks._crowd_client hostile PLAN``: the hostile crowd of ``tests.hubs.hostile``
(its ``main`` describes PLAN); prints the visits each attack made.
"""

from __future__ import annotations

import argparse
import json

import anyio

from tests.hubs.crowd import run_honest_plan
from tests.hubs.hostile import run_plan

from ._common import pin_to

__all__ = ["main"]


def main() -> None:
    parser = argparse.ArgumentParser(description="the honest and hostile clients of benchmark l")
    parser.add_argument("side", choices=["honest", "hostile"])
    parser.add_argument("plan", type=json.loads)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    args = parser.parse_args()
    pin_to(args.cpu)
    run = run_honest_plan if args.side == "honest" else run_plan
    print(json.dumps(anyio.run(run, args.plan)), flush=True)


if __name__ == "__main__":
    main()
