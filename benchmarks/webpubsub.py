"""(f) The cost of one client token: the Web PubSub Python SDK's Entra path against ours.

The SDK with an Entra credential cannot sign tokens itself: ``WebPubSubServiceClient(endpoint, hub,
credential).get_client_access_token(user_id=...)`` sends ``POST /api/hubs/{hub}/:generateToken`` for
every token. Here it is pointed at the emulator's ``:generateToken`` (the same URL shape SignalR
uses). It asks its credential for Web PubSub's scope, which the emulator's SignalR data plane would
refuse, so it gets :class:`EmulatorCredential`: a ``TokenCredential`` that returns a cached token
the emulator issued for ``https://signalr.azure.com``. The emulator is plain HTTP on loopback, so
the SDK is told ``enforce_https=False`` (azure-core refuses bearer tokens over HTTP otherwise).

Against it, on the same emulator, with the same credential, in the same process, interleaved:
our ``mode="service"`` without the cache (one ``:generateToken`` per token, like the SDK), with the
cache (one call, then hits), and our key mode (the temporary key signs in memory). Each row's cost
is the median over repeats of a batch's time per token; the ratios are the SDK's cost over ours.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from signalr_asgi_auth import SignalRAuth, SignalRContext

from ._common import Goal, Result, Settings, median
from ._emulated import EmulatorCredential, new_emulator, served

__all__ = ["NAME", "TITLE", "run"]

NAME = "webpubsub"
TITLE = "(f) per-token cost: Web PubSub SDK (Entra) / ours"

_USER = "user-1"
_BATCH_SECONDS = 0.25


def _sdk_client(url: str, credential: EmulatorCredential) -> Callable[[], str]:
    from azure.messaging.webpubsubservice import WebPubSubServiceClient

    client = WebPubSubServiceClient(endpoint=url, hub="chat", credential=credential)

    def token() -> str:
        reply = client.get_client_access_token(
            user_id=_USER, minutes_to_expire=60, enforce_https=False
        )
        value: str = reply["token"]
        return value

    return token


async def _batch(call: Callable[[], Awaitable[object]], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls


async def _measure(url: str, credential: EmulatorCredential, repeats: int) -> dict[str, Any]:
    sdk = _sdk_client(url, credential)

    async def sdk_token() -> str:
        return sdk()  # blocking, like the SDK's callers; the emulator runs in another thread

    def ours(**options: Any) -> SignalRAuth:
        return SignalRAuth(endpoint=url, credential=credential, **options)

    uncached = ours(mode="service", service_token_cache_fraction=0)
    cached = ours(mode="service")
    keyed = ours(mode="key")
    async with uncached as s_uncached, cached as s_cached, keyed as s_key:

        def of(context: SignalRContext) -> Callable[[], Awaitable[str]]:
            return lambda: context.client_token("chat", user_id=_USER)

        rows: dict[str, Callable[[], Awaitable[object]]] = {
            "Web PubSub SDK": sdk_token,
            "service, uncached": of(s_uncached),
            "service, cached": of(s_cached),
            "key": of(s_key),
        }
        sizes: dict[str, int] = {}
        for name, call in rows.items():  # warm up (connections, cache), then size the batches
            await call()
            per_call = await _batch(call, 5)
            sizes[name] = max(int(_BATCH_SECONDS / max(per_call, 1e-7)), 5)
        times: dict[str, list[float]] = {name: [] for name in rows}
        names = list(rows)
        for repeat in range(repeats):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(await _batch(rows[name], sizes[name]))
    return {"seconds_per_token": {name: median(values) for name, values in times.items()}}


def run(settings: Settings) -> list[Result]:
    emulator = new_emulator()
    credential = EmulatorCredential(emulator)
    with served(emulator) as url:
        before = emulator.log.count("signalr.generate_token")
        measured = anyio.run(_measure, url, credential, settings.count(7))
        measured["generate_token_calls"] = emulator.log.count("signalr.generate_token") - before
        measured["generate_token_statuses"] = sorted(
            {e.status for e in emulator.log.entries("signalr.generate_token")}
        )
    cost = measured["seconds_per_token"]
    measured["microseconds_per_token"] = {name: round(v * 1e6, 1) for name, v in cost.items()}
    measured["credential"] = (
        "EmulatorCredential: a cached emulator token for https://signalr.azure.com, given for "
        "any scope (the SDK asks for Web PubSub's)"
    )
    sdk = cost["Web PubSub SDK"]
    results = []
    for name in ("service, uncached", "service, cached", "key"):
        ratio = sdk / cost[name]
        results.append(
            Result(
                benchmark=NAME,
                measure=f"Web PubSub SDK per token / ours ({name})",
                value=ratio,
                goal=Goal("info", text="—"),
                shown=f"{ratio:.1f}x ({sdk * 1e6:.0f} µs vs {cost[name] * 1e6:.1f} µs)",
                details=measured,
            )
        )
    return results
