"""Failover and recovery with the real managed identity against two resources of one emulated
tenant, the clock compressed a hundredfold: negotiation and REST fan-out move away from an endpoint
that goes down and come back; an endpoint healthy but unable to fetch its key is not usable; one
identity call serves both endpoints."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from signalr_asgi_auth import Delivery, EndpointsHubClient, SignalRAuth, SignalRContext
from signalr_asgi_auth.emulator import Emulator, Principal
from signalr_asgi_auth.emulator._roles import ResourceId

from .endpoints.support import FastClock
from .support import FAST, wait_until

pytestmark = pytest.mark.anyio

OPTIONS: dict[str, Any] = {**FAST, "health_check_interval": 30, "health_check_timeout": 0.5}


@pytest.fixture
def app_identity(east: Emulator) -> Principal:
    """Negotiates and sends at every resource of the group (one assignment covers both)."""
    principal = east.add_principal("app")
    group = ResourceId(east.resource_id.subscription, east.resource_id.resource_group)
    east.assign(principal, "SignalR App Server", group)
    east.assign(principal, "SignalR REST API Owner", group)
    return principal


def app(
    east: Emulator,
    west: Emulator,
    tenant_urls: tuple[str, str],
    principal: Principal,
    **options: Any,
) -> SignalRAuth:
    strings = {
        "east": east.connection_string(tenant_urls[0], client_id=principal.client_id),
        "west:secondary": west.connection_string(tenant_urls[1], client_id=principal.client_id),
    }
    return SignalRAuth.from_connection_strings(
        strings, clock=FastClock(), mode="key", **{**OPTIONS, **options}
    )


def signed_by(token: str, emulator: Emulator, url: str) -> dict[str, Any]:
    """The claims of a client token that ``emulator`` accepts: signed with a temporary key it
    issued, for its own client URL."""
    key = emulator.find_key(jwt.get_unverified_header(token)["kid"])
    assert key is not None, "signed with a key this resource did not issue"
    claims: dict[str, Any] = jwt.decode(
        token,
        key.access_key.encode(),
        algorithms=["HS256"],
        leeway=24 * 3600,  # the app's clock runs fast: its iat is ahead of ours
        audience=f"{url.replace(':' + url.rsplit(':', 1)[1], '')}/client/?hub=chat",
    )
    return claims


def usable(auth: SignalRAuth) -> dict[str, bool]:
    return {entry["name"]: entry["usable"] for entry in auth.health()["endpoints"]}


def calls(emulator: Emulator, route: str) -> int:
    return sum(1 for entry in emulator.log if entry.route == route)


async def negotiated_to(context: SignalRContext, count: int = 10) -> set[str]:
    return {
        (await context.negotiate("chat", user_id=f"u{i}"))["url"].split("/client/")[0]
        for i in range(count)
    }


async def keys_ready(context: SignalRContext) -> None:
    await wait_until(
        lambda: all(r.keys is not None and r.keys.ready.is_set() for r in context.endpoints.all)
    )


async def test_negotiate_and_rest_fail_over_and_recover(
    east: Emulator, west: Emulator, tenant_urls: tuple[str, str], app_identity: Principal
) -> None:
    east_url, west_url = tenant_urls
    auth = app(east, west, tenant_urls, app_identity)
    async with auth as context:
        await keys_ready(context)
        hub = context.hub("chat")
        assert isinstance(hub, EndpointsHubClient)
        assert await negotiated_to(context) == {east_url}
        assert await hub.send_to_all("news") == Delivery(sent=("east", "west"))

        fault = east.inject("signalr.health", status=503)
        await wait_until(lambda: not usable(auth)["east"])
        # Negotiation: west's URL, with a token west's own key signed.
        reply = await context.negotiate("chat", user_id="alice")
        assert reply["url"].startswith(west_url)
        assert signed_by(reply["accessToken"], west, west_url)["nameid"] == "alice"
        assert await negotiated_to(context) == {west_url}
        # REST: east is down by its probes, so messages go to west alone.
        assert await hub.send_to_all("news") == Delivery(sent=("west",))

        east.remove_fault(fault)
        await wait_until(lambda: usable(auth)["east"])
        assert await negotiated_to(context) == {east_url}
        assert await hub.send_to_all("news") == Delivery(sent=("east", "west"))
    # One managed identity, one credential: one identity call for both resources' keys and REST.
    assert calls(east, "identity.app_service") == 1
    assert calls(west, "identity.app_service") == 0
    assert (calls(east, "signalr.access_key"), calls(west, "signalr.access_key")) == (1, 1)


@pytest.mark.parametrize("status", [403, 500])
async def test_an_endpoint_healthy_but_unable_to_fetch_its_key_is_not_usable(
    east: Emulator,
    west: Emulator,
    tenant_urls: tuple[str, str],
    app_identity: Principal,
    status: int,
) -> None:
    east_url, west_url = tenant_urls
    east.inject("signalr.access_key", status=status)
    auth = app(east, west, tenant_urls, app_identity, startup_timeout=2)
    async with auth as context:
        await wait_until(lambda: calls(east, "signalr.health") >= 2)
        await wait_until(lambda: usable(auth) == {"east": False, "west": True})
        entry = auth.health()["endpoints"][0]
        assert entry["probe"]["status"] == "up"
        assert "key" in entry["reason"]
        # The only primary cannot sign: negotiations go to the secondary.
        assert await negotiated_to(context) == {west_url}

        east.clear_faults()
        await wait_until(lambda: usable(auth)["east"], within=15)
        assert await negotiated_to(context) == {east_url}
