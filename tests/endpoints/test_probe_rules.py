"""The health probe's rule, status by status (scripts/mutation found it unasserted): only a 2xx
answer is healthy; a client error, a redirect or a refused connection take an endpoint down."""

from __future__ import annotations

import logging

import pytest

from signalr_asgi_auth import SignalRAuth

from ..faults import closed_port_url
from ..support import wait_until
from .support import health_requests, served, several

pytestmark = pytest.mark.anyio


def entry(auth: SignalRAuth, name: str) -> dict[str, object]:
    [found] = [item for item in auth.health()["endpoints"] if item["name"] == name]
    return dict(found)


@pytest.mark.parametrize("status", [401, 404, 429, 300])
async def test_any_answer_but_2xx_takes_the_endpoint_down(status: int) -> None:
    with served(2) as pairs:
        (east, _), _ = pairs
        auth = several(pairs, ["east", "west:secondary"])
        async with auth:
            east.inject("signalr.health", status=status)
            await wait_until(lambda: not entry(auth, "east")["usable"])

            probe = entry(auth, "east")["probe"]
    assert isinstance(probe, dict)
    assert probe["last_error"] == f"HTTP {status}"
    assert probe["last_result"] == "failed"


@pytest.mark.parametrize("status", [200, 204, 299])
async def test_every_2xx_answer_is_healthy(status: int) -> None:
    with served(2) as pairs:
        (east, _), _ = pairs
        auth = several(pairs, ["east", "west:secondary"])
        async with auth:
            east.inject("signalr.health", status=status)
            before = health_requests(east)
            await wait_until(lambda: health_requests(east) >= before + 3)

            found = entry(auth, "east")
    probe = found["probe"]
    assert isinstance(probe, dict)
    assert found["usable"] is True
    assert probe["last_result"] == "ok"
    assert probe["consecutive_failures"] == 0


async def test_a_refused_connection_takes_the_endpoint_down() -> None:
    with served(1) as pairs:
        (emulator, url) = pairs[0]
        closed = closed_port_url()
        auth = several([(emulator, closed), (emulator, url)], ["east", "west:secondary"])
        async with auth:
            await wait_until(lambda: not entry(auth, "east")["usable"])

            probe = entry(auth, "east")["probe"]
    assert isinstance(probe, dict)
    assert probe["last_error"] == f"ConnectError reaching {closed}/api/health"


async def test_going_down_and_coming_back_are_each_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "signalr_asgi_auth")
    with served(2) as pairs:
        (east, _), _ = pairs
        auth = several(pairs, ["east", "west:secondary"])
        async with auth:
            fault = east.inject("signalr.health", status=503)
            await wait_until(lambda: not entry(auth, "east")["usable"])
            east.remove_fault(fault)
            await wait_until(lambda: bool(entry(auth, "east")["usable"]))

    messages = [
        record.getMessage()
        for record in caplog.records
        if record.name == "signalr_asgi_auth.endpoints._probe"
    ]
    assert messages == [
        "SignalR endpoint 'east' failed 2 health probes in a row (HTTP 503): no negotiations go "
        "there until it recovers.",
        "SignalR endpoint 'east' is healthy again: it takes negotiations.",
    ]
    assert all(
        record.levelno == logging.WARNING
        for record in caplog.records
        if record.name == "signalr_asgi_auth.endpoints._probe"
    )
