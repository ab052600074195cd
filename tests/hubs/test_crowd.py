"""Issue 18's proof under a hostile crowd, in Default mode on the emulator: while hostile clients
make every client-reachable attack of the issue at once (``hostile.ATTACKS``, in a process of their
own, as a crowd has its own machines), honest clients keep invoking ``echo``. Nothing honest fails,
honest p99 latency stays within 3x a quiet baseline of the same run, no server connection is lost,
no client or stream is left behind (the memory a crowd could make the app hold), and no client's
bytes start a log line. ``benchmarks/crowd.py`` runs the same crowd for a minute with the app in a process of its
own."""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

import anyio
import pytest

from signalr_asgi_auth import SignalRContext
from signalr_asgi_auth.emulator import Emulator
from signalr_asgi_auth.hubs import Hub

from ..support import auth_for, principal_with_role
from .chat import chat_hub
from .crowd import Live, Rounds, Spans, add_crowd_methods, in_spans, run_in_process
from .hostile import ATTACKS

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROUNDS = Rounds(count=3, quiet=2.0, attack=5.0)
HONEST = 4
START = 3.0  # for the two processes to start before the first span
HONEST_PAUSE = 0.01
HOSTILE_PAUSE = 2.0
LIMIT = 32 * 1024  # the hub's max_receive_message_size: ASP.NET Core's default
SETTLE = 10.0
ATTEMPTS = 3


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(service_mode="default")


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def left_behind(hub: Hub, live: Live) -> dict[str, int]:
    """The hub's clients and running streams once every client has gone (waiting a little for
    the service's CloseConnection messages)."""

    def left() -> dict[str, int]:
        clients = sum(connections.clients for connections in hub.running())
        return {"clients": clients, "streams": live.streams}

    with anyio.move_on_after(SETTLE):
        while left() != {"clients": 0, "streams": 0}:  # noqa: ASYNC110 - polling the hub
            await anyio.sleep(0.05)
    return left()


def forged_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The library's log messages that a client's bytes could break into lines or colour."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("signalr_asgi_auth")
        and not record.name.startswith("signalr_asgi_auth.emulator")
        and any(c in record.getMessage() for c in "\r\n\x1b")
    ]


async def crowds(context: SignalRContext, url: str) -> tuple[Spans, Spans, dict[str, Any]]:
    """Run the honest clients and the hostile crowd, each in a process of its own (as a crowd
    has machines of its own, and so that only the app is measured in this one); the quiet and
    attacked spans, what the honest clients saw and the visits each attack made."""
    quiet, attacked = ROUNDS.spans(time.monotonic() + START)
    until = attacked[-1][1]
    honest_tokens = [
        await context.client_token("chat", user_id=f"honest-{n}") for n in range(HONEST)
    ]
    hostile_tokens = [
        await context.client_token("chat", user_id=f"hostile-{n}") for n in range(len(ATTACKS))
    ]
    honest_plan = {"url": url, "tokens": honest_tokens, "until": until, "pause": HONEST_PAUSE}
    hostile_plan = {
        "url": url,
        "tokens": hostile_tokens,
        "attacked": attacked,
        "limit": LIMIT,
        "pause": HOSTILE_PAUSE,
    }
    seen: dict[str, Any] = {}

    async def honest() -> None:
        seen.update(await run_in_process("tests.hubs.crowd", honest_plan, until=until))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(honest)
        seen["visits"] = await run_in_process("tests.hubs.hostile", hostile_plan, until=until)
    return quiet, attacked, seen


async def test_honest_clients_are_served_through_a_hostile_crowd(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="signalr_asgi_auth")
    live = Live()
    chat = add_crowd_methods(chat_hub(max_receive_message_size=LIMIT), live)
    principal = principal_with_role(emulator, "SignalR App Server")
    auth = auth_for(emulator, emulator_url, principal, hubs=[chat], server_connection_count=2)
    misses: list[str] = []
    async with auth as context:
        # Latency is measured on a machine the test shares (CI runs four suites at once on two
        # cores): a round set whose p99 misses the bound is run again, at most ATTEMPTS times in
        # all. Every set must serve every honest call and leave nothing behind; one must meet the
        # bound. A hub that the crowd really slows misses it every time.
        for _ in range(ATTEMPTS):
            quiet, attacked, seen = await crowds(context, emulator_url)
            left = await left_behind(chat, live)
            assert seen["failures"] == []
            assert left == {"clients": 0, "streams": 0}
            assert all(seen["visits"].values()), seen["visits"]
            calm, crowded = (in_spans(seen["samples"], spans) for spans in (quiet, attacked))
            baseline, under_attack = p99(calm), p99(crowded)
            if under_attack <= 3 * baseline:
                break
            misses.append(
                f"p99 {under_attack * 1e3:.1f} vs {baseline * 1e3:.1f} ms; p50 "
                f"{statistics.median(crowded) * 1e3:.1f} vs {statistics.median(calm) * 1e3:.1f} "
                f"ms; {len(crowded)} and {len(calm)} calls"
            )
        servers = auth.health()["server_connections"]["chat"]

    assert len(misses) < ATTEMPTS, misses
    assert (servers["up"], servers["lost"], servers["reconnects"]) == (2, 0, 0), servers
    assert servers["clients"] == 0  # the pool forgot every client, those the app closed too
    assert forged_lines(caplog) == []
