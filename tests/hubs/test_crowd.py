"""Issue 18's proof under a hostile crowd, in Default mode on the emulator: while hostile clients
make every client-reachable attack of the issue at once (``hostile.ATTACKS``, in a process of their
own, as a crowd has its own machines), honest clients keep invoking ``echo``. Nothing honest fails,
honest p99 latency stays within 3x a quiet baseline of the same run, no server connection is lost,
no stream or client is left behind, the library's memory comes back, and no client's bytes start a
log line. ``benchmarks/crowd.py`` runs the same crowd for a minute with the app in a process of its
own."""

from __future__ import annotations

import logging
import statistics
import time
from functools import partial

import anyio
import httpx2
import pytest

from signalr_asgi_auth import SignalRContext
from signalr_asgi_auth.emulator import Emulator
from signalr_asgi_auth.hubs import Hub

from ..emulator.helpers import TIMEOUT
from ..support import auth_for, principal_with_role
from .chat import chat_hub, raw_client
from .crowd import Honest, Live, Rounds, Spans, add_crowd_methods, run_honest
from .hostile import ATTACKS, run_crowd_process

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROUNDS = Rounds(count=3, quiet=2.0, attack=5.0)
HONEST_CLIENTS = 4
HONEST_PAUSE = 0.01
HOSTILE_PAUSE = 0.3
LIMIT = 64 * 1024  # the client message limit the crowd aims at
SETTLE = 10.0


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(service_mode="default")


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def latencies(honest: list[Honest], spans: Spans) -> list[float]:
    return [x for client in honest for x in client.latencies(spans)]


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


async def hostile_crowd(context: SignalRContext, url: str, attacked: Spans) -> dict[str, int]:
    """Run the crowd in a process of its own over ``attacked``; the visits of each attack."""
    tokens = [
        await context.client_token("chat", user_id=f"hostile-{n}") for n in range(len(ATTACKS))
    ]
    plan = {
        "url": url,
        "tokens": tokens,
        "attacked": attacked,
        "limit": LIMIT,
        "pause": HOSTILE_PAUSE,
    }
    return await run_crowd_process(plan)


async def test_honest_clients_are_served_through_a_hostile_crowd(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="signalr_asgi_auth")
    live = Live()
    chat = add_crowd_methods(chat_hub(), live)
    principal = principal_with_role(emulator, "SignalR App Server")
    auth = auth_for(emulator, emulator_url, principal, hubs=[chat], server_connection_count=2)
    honest = [Honest(f"honest-{number}") for number in range(HONEST_CLIENTS)]
    async with auth as context, httpx2.AsyncClient(timeout=TIMEOUT) as http:
        quiet, attacked = ROUNDS.spans(time.monotonic())
        opener = partial(raw_client, http, emulator_url, context)
        async with anyio.create_task_group() as tasks:
            for client in honest:
                until = attacked[-1][1]
                tasks.start_soon(partial(run_honest, opener, client, until, pause=HONEST_PAUSE))
            visits = await hostile_crowd(context, emulator_url, attacked)
        left = await left_behind(chat, live)
        servers = auth.health()["server_connections"]["chat"]

    assert [failure for client in honest for failure in client.failures] == []
    assert left == {"clients": 0, "streams": 0}
    assert all(visits.values()), visits
    assert (servers["up"], servers["lost"], servers["reconnects"]) == (2, 0, 0), servers
    baseline, under_attack = (p99(latencies(honest, spans)) for spans in (quiet, attacked))
    assert under_attack <= 3 * baseline, f"p99 {under_attack * 1e3:.1f} vs {baseline * 1e3:.1f} ms"
    assert forged_lines(caplog) == []
