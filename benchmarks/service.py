"""(e) Service-issued client tokens (``mode="service"``): the cache, and single-flight on a cold start.

1. Throughput with the cache against without it. Two server processes in ``mode="service"``, each
   with an emulator of its own (so that each one's log counts only its calls): one with the default
   cache, one with ``service_token_cache_fraction=0`` (no reuse: every negotiation asks the
   service, only concurrent identical ones share a call). The load generator alternates between
   them, spreading negotiations over a pool of user ids; the hit rate is one minus the emulator's
   ``:generateToken`` calls over the negotiations answered, in the measured windows.
2. 1,000 concurrent negotiations for one user on a cold cache, in process, against the emulator:
   how many ``:generateToken`` calls reached it (goal: one).

The emulator answers on loopback in well under a millisecond; a real service is a network round
trip away, so the cache is worth more there than the ratio here says.
"""

from __future__ import annotations

from typing import Any

import anyio

from signalr_asgi_auth import SignalRAuth
from signalr_asgi_auth.emulator import Emulator

from ._common import Goal, Result, Settings, running_server
from ._emulated import EmulatorCredential, app_environment, new_emulator, served
from ._throughput import Target, compare

__all__ = ["NAME", "TITLE", "run"]

NAME = "service"
TITLE = "(e) service-issued tokens: cache on / off, cold-start single-flight"

ROUTE = "signalr.generate_token"
_USERS = 2000
_COLD = 1000


def _calls_in(emulator: Emulator, windows: list[list[float]]) -> int:
    entries = emulator.log.entries(ROUTE)
    return sum(1 for e in entries for start, end in windows if start <= e.at <= end)


def _throughput(settings: Settings) -> Result:
    paths = tuple(f"/chat/negotiate?negotiateVersion=1&user=user-{n}" for n in range(_USERS))
    cached_emulator, uncached_emulator = new_emulator(), new_emulator()
    service = ['--option=mode="service"']
    with (
        served(cached_emulator) as cached_url,
        served(uncached_emulator) as uncached_url,
        running_server(service, env=app_environment(cached_emulator, cached_url)) as cached,
        running_server(
            [*service, "--option=service_token_cache_fraction=0"],
            env=app_environment(uncached_emulator, uncached_url),
        ) as uncached,
    ):
        measured = compare(
            Target("uncached", uncached.url, paths[0], uncached.pid, paths),
            Target("cached", cached.url, paths[0], cached.pid, paths),
            settings=settings,
            rounds=4,
            duration=2.5,
        )
    answered = {label: sum(counts) for label, counts in measured["ok"].items()}
    calls = {
        "cached": _calls_in(cached_emulator, measured["windows"]["cached"]),
        "uncached": _calls_in(uncached_emulator, measured["windows"]["uncached"]),
    }
    hit_rate = {label: 1 - calls[label] / answered[label] for label in calls}
    measured |= {
        "users": _USERS,
        "negotiations": answered,
        "service_calls": calls,
        "hit_rate": {label: round(rate, 4) for label, rate in hit_rate.items()},
        "access_key_requests": cached_emulator.log.count("signalr.access_key")
        + uncached_emulator.log.count("signalr.access_key"),
    }
    del measured["windows"]
    ratio = measured["ratio"]
    return Result(
        benchmark=NAME,
        measure="throughput with the token cache / without",
        value=ratio,
        goal=Goal("info", text="— (hit rate reported)"),
        shown=f"{ratio:.2f}x ({measured['median_rps']['cached']} vs "
        f"{measured['median_rps']['uncached']} req/s; hit rate {hit_rate['cached']:.1%} "
        f"over {_USERS} users, {calls['cached']} service calls)",
        details=measured,
    )


async def _cold_start(emulator: Emulator, url: str) -> dict[str, Any]:
    auth = SignalRAuth(endpoint=url, credential=EmulatorCredential(emulator), mode="service")
    async with auth as signalr:
        before = emulator.log.count(ROUTE)
        replies: list[dict[str, str]] = []

        async def negotiate() -> None:
            replies.append(await signalr.negotiate("chat", user_id="user-cold"))

        async with anyio.create_task_group() as tasks:
            for _ in range(_COLD):
                tasks.start_soon(negotiate)
        calls = emulator.log.count(ROUTE) - before
        health = auth.health()
    return {
        "negotiations": len(replies),
        "distinct_tokens": len({reply["accessToken"] for reply in replies}),
        "service_calls": calls,
        "health_service": health.get("service_tokens"),
    }


def _single_flight() -> Result:
    emulator = new_emulator()
    with served(emulator) as url:
        outcome = anyio.run(_cold_start, emulator, url)
    calls = outcome["service_calls"]
    return Result(
        benchmark=NAME,
        measure=f"{_COLD} concurrent cold negotiations: service calls",
        value=float(calls),
        goal=Goal("==", 1.0, "= 1 call"),
        shown=f"{calls} call{'s' if calls != 1 else ''} for {outcome['negotiations']} negotiations",
        details=outcome,
    )


def run(settings: Settings) -> list[Result]:
    return [_throughput(settings), _single_flight()]
