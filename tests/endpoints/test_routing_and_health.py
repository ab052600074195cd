"""Several emulated resources behind one app: routing, health probes, failover and recovery, the
503 when none is usable, with the clock compressed a hundredfold."""

from __future__ import annotations

import json
from collections import Counter

import anyio
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from signalr_asgi_auth import (
    NoUsableEndpointError,
    SignalRAuth,
    SignalRAuthMiddleware,
    SignalRContext,
    negotiate_endpoint,
)

from ..faults import running_app
from ..support import wait_until
from .support import (
    OPTIONS,
    FastClock,
    health_requests,
    one_tenant,
    served,
    several,
    token_claims,
)

pytestmark = pytest.mark.anyio


async def where(context: SignalRContext, count: int, user: str | None = "u") -> Counter[str]:
    """Which client URLs ``count`` negotiations got."""
    seen: Counter[str] = Counter()
    for index in range(count):
        reply = await context.negotiate("chat", user_id=f"{user}{index}" if user else None)
        seen[reply["url"].split("/client/")[0]] += 1
    return seen


def usable(auth: SignalRAuth) -> dict[str, bool]:
    return {entry["name"]: entry["usable"] for entry in auth.health()["endpoints"]}


async def test_random_among_primaries_never_a_usable_secondary() -> None:
    with served(3) as pairs:
        (east, east_url), (west, west_url), (_, backup_url) = pairs
        auth = several(pairs, ["east", "west", "backup:secondary"])
        async with auth as context:
            seen = await where(context, 300)
            # each token is signed with the chosen resource's own key, for its own URL
            reply = await context.negotiate("chat", user_id="alice")
            owner, url = (east, east_url) if reply["url"].startswith(east_url) else (west, west_url)
            assert token_claims(reply["accessToken"], owner, url)["nameid"] == "alice"
    assert set(seen) == {east_url, west_url}
    assert backup_url not in seen
    assert min(seen.values()) > 90  # uniform: 150 each expected; 90 is > 7 standard deviations off


async def test_failover_to_the_secondary_and_recovery() -> None:
    with served(2) as pairs:
        (east, east_url), (_, backup_url) = pairs
        auth = several(pairs, ["east", "backup:secondary"])
        async with auth as context:
            assert set(await where(context, 20)) == {east_url}
            fault = east.inject("signalr.health", status=503)
            await wait_until(lambda: not usable(auth)["east"])
            assert set(await where(context, 20)) == {backup_url}
            report = auth.health()
            assert report["status"] == "degraded"
            entry = report["endpoints"][0]
            assert entry["name"] == "east"
            assert entry["status"] == "unavailable"
            assert entry["probe"]["last_error"] == "HTTP 503"
            assert "health probe failed 2 times in a row (HTTP 503)" in entry["reason"]
            east.remove_fault(fault)
            await wait_until(lambda: usable(auth)["east"])
            assert set(await where(context, 20)) == {east_url}
            assert auth.health()["status"] == "ok"
            # probes carry no credentials, and use the REST API's health route
            heads = [entry for entry in east.log if entry.route == "signalr.health"]
            assert heads
            assert all(entry.method == "HEAD" for entry in heads)
            assert all(entry.query == {"api-version": "2022-06-01"} for entry in heads)
            assert all("authorization" not in entry.headers for entry in heads)


async def test_a_probe_slower_than_its_timeout_takes_the_endpoint_down() -> None:
    with served(2) as pairs:
        (east, _), (_, west_url) = pairs
        auth = several(pairs, ["east", "west:secondary"])
        async with auth as context:
            east.inject("signalr.health", delay=2.0)  # timeout 0.5 s
            await wait_until(lambda: not usable(auth)["east"])
            entry = auth.health()["endpoints"][0]
            assert entry["probe"]["last_error"] == "no answer within 0.5 s"
            assert set(await where(context, 10)) == {west_url}
            east.clear_faults()
            await wait_until(lambda: usable(auth)["east"], within=15)


async def test_one_failed_probe_is_not_enough() -> None:
    with served(2) as pairs:
        (east, east_url), _ = pairs
        auth = several(pairs, ["east", "west:secondary"])
        async with auth as context:
            before = health_requests(east)
            east.inject("signalr.health", status=500, times=1)
            await wait_until(lambda: health_requests(east) >= before + 3)
            assert usable(auth)["east"]
            assert set(await where(context, 10)) == {east_url}


async def test_with_one_endpoint_nothing_is_probed() -> None:
    with served(1) as pairs:
        ((east, _),) = pairs
        auth = several(pairs, ["east"])
        async with auth as context:
            await context.negotiate("chat")
            await anyio.sleep(0.5)  # more than an interval on the compressed clock
            assert "endpoints" not in auth.health()
    assert health_requests(east) == 0


async def test_a_healthy_endpoint_that_cannot_sign_is_not_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One tenant, two resources: the app's identity has its role on the secondary only, so the
    # primary answers its health probes but refuses the key (403).
    with one_tenant("east", "west") as [(east, east_url), (west, west_url)]:
        principal = east.add_principal("app")
        east.assign(principal, "SignalR App Server")
        for name, value in east.app_service_env(east_url).items():
            monkeypatch.setenv(name, value)
        strings = {
            "east:secondary": east.connection_string(east_url, client_id=principal.client_id),
            "west": west.connection_string(west_url, client_id=principal.client_id),
        }
        auth = SignalRAuth.from_connection_strings(
            strings, clock=FastClock(), mode="key", **OPTIONS
        )
        async with auth as context:
            await wait_until(lambda: health_requests(west) >= 2)
            await wait_until(
                lambda: auth.health()["endpoints"][1]["access_key"]["consecutive_failures"] > 0
            )
            assert usable(auth) == {"east": True, "west": False}
            west_entry = auth.health()["endpoints"][1]
            assert west_entry["probe"]["status"] == "up"
            assert "SignalR App Server" in west_entry["reason"]
            # west is the only primary, but cannot sign: negotiations go to the secondary
            assert set(await where(context, 10)) == {east_url}
            # the role arrives: west signs, and takes the negotiations back
            west.assign(principal, "SignalR App Server")
            await wait_until(lambda: usable(auth)["west"], within=20)
            assert set(await where(context, 10)) == {west_url}


async def test_all_down_answers_503_with_a_reason_per_endpoint() -> None:
    with served(2) as pairs:
        (east, _), (west, _) = pairs
        auth = several(pairs, ["east", "west:secondary"])
        app = Starlette(
            routes=[Route("/chat/negotiate", negotiate_endpoint("chat"), methods=["POST"])],
            middleware=[],
        )
        wrapped = SignalRAuthMiddleware(app, auth=auth)
        async with running_app(wrapped) as client:
            assert (await client.post("/chat/negotiate")).status_code == 200
            east.inject("signalr.health", status=503)
            west.inject("signalr.health", status=502)
            await wait_until(lambda: not any(usable(auth).values()))
            response = await client.post("/chat/negotiate")
            assert response.status_code == 503
            assert 1 <= int(response.headers["Retry-After"]) <= 60
            body = response.json()
            assert body["code"] == "no_usable_endpoint"
            assert set(body["endpoints"]) == {"east", "west"}
            assert "HTTP 503" in body["endpoints"]["east"]
            assert "HTTP 502" in body["endpoints"]["west"]
            assert auth.health()["status"] == "unavailable"
            with pytest.raises(NoUsableEndpointError):
                await auth.context.negotiate("chat")
            text = json.dumps(auth.health())
            for emulator, _ in pairs:
                assert emulator.access_keys[0] not in text
                assert emulator.access_keys[0] not in response.text
