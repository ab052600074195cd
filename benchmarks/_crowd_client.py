"""The clients of benchmark (l), each side in a process of its own, pinned like the others' load
generators. Both reuse the test's crowd (``tests/hubs/crowd.py`` and ``tests/hubs/hostile.py``).

``python -m benchmarks._crowd_client honest PLAN``: PLAN is JSON ``{"url": the service, "tokens":
a client token per honest client, "until": time.monotonic() to stop at, "pause": seconds between
invocations}``. Each honest client invokes ``echo`` one call at a time; prints ``{"samples":
[[started, seconds], ...], "failures": [...]}``.

``python -m benchmarks._crowd_client hostile PLAN``: the hostile crowd of ``tests.hubs.hostile``
(its ``main`` describes PLAN); prints the visits each attack made.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from typing import Any

import anyio
import httpx2

from tests.emulator.helpers import TIMEOUT
from tests.hubs.crowd import Honest, run_honest, token_opener
from tests.hubs.hostile import run_plan

from ._common import pin_to

__all__ = ["main"]


async def _honest(plan: dict[str, Any]) -> dict[str, Any]:
    honest = [Honest(f"honest-{number}") for number in range(len(plan["tokens"]))]
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http, anyio.create_task_group() as tasks:
        for client, token in zip(honest, plan["tokens"], strict=True):
            opener = token_opener(http, plan["url"], token)
            tasks.start_soon(
                partial(run_honest, opener, client, plan["until"], pause=plan["pause"])
            )
    return {
        "samples": [sample for client in honest for sample in client.samples],
        "failures": [failure for client in honest for failure in client.failures],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="the honest and hostile clients of benchmark l")
    parser.add_argument("side", choices=["honest", "hostile"])
    parser.add_argument("plan", type=json.loads)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    args = parser.parse_args()
    pin_to(args.cpu)
    run = _honest if args.side == "honest" else run_plan
    print(json.dumps(anyio.run(run, args.plan)), flush=True)


if __name__ == "__main__":
    main()
