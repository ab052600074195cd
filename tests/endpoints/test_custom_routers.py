"""An app's own router: it sees the hub, the user and the Starlette request of each negotiation
(by region header, by hub), and a choice outside the usable endpoints falls back to the default."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from signalr_asgi_auth import (
    EndpointInfo,
    RouteRequest,
    SignalRAuth,
    SignalRAuthMiddleware,
    negotiate_endpoint,
)

from ..faults import running_app
from ..support import wait_until
from .support import served, several

pytestmark = pytest.mark.anyio


class ByRegionAndHub:
    """``X-Region: west`` picks west; hub ``audit`` always goes to the secondary; else default."""

    def __init__(self) -> None:
        self.seen: list[RouteRequest] = []

    def choose(
        self, request: RouteRequest, endpoints: Sequence[EndpointInfo]
    ) -> EndpointInfo | None:
        self.seen.append(request)
        wanted = "backup" if request.hub == "audit" else None
        if request.request is not None:
            wanted = wanted or request.request.headers.get("x-region")
        return next((endpoint for endpoint in endpoints if endpoint.name == wanted), None)


class Stale:
    """Returns an endpoint that is not among those offered (say, kept from an earlier call)."""

    def choose(
        self, request: RouteRequest, endpoints: Sequence[EndpointInfo]
    ) -> EndpointInfo | None:
        return EndpointInfo(
            name="gone", type="primary", endpoint="https://gone", client_endpoint="https://gone"
        )


def app_for(auth: SignalRAuth) -> SignalRAuthMiddleware:
    routes = [
        Route(f"/{hub}/negotiate", negotiate_endpoint(hub, user_id="ann"), methods=["POST"])
        for hub in ("chat", "audit")
    ]
    return SignalRAuthMiddleware(Starlette(routes=routes), auth=auth)


async def test_a_router_reads_the_request_and_the_hub() -> None:
    with served(3) as pairs:
        (_, east_url), (_, west_url), (backup, backup_url) = pairs
        router = ByRegionAndHub()
        auth = several(pairs, ["east", "west", "backup:secondary"], router=router)
        async with running_app(app_for(auth)) as client:

            async def url(path: str, **headers: str) -> str:
                response = await client.post(path, headers=headers)
                assert response.status_code == 200, response.text
                return str(response.json()["url"]).split("/client/")[0]

            assert {await url("/chat/negotiate", **{"X-Region": "west"}) for _ in range(10)} == {
                west_url
            }
            assert {await url("/audit/negotiate") for _ in range(10)} == {backup_url}
            # no header, another hub: the router says None, the default picks among primaries
            assert {await url("/chat/negotiate") for _ in range(40)} == {east_url, west_url}
            # the backup's health fails: it is no longer offered, so audit falls back too
            backup.inject("signalr.health", status=503)
            await wait_until(lambda: not auth.health()["endpoints"][2]["usable"], within=15)
            assert await url("/audit/negotiate") in {east_url, west_url}
    last = router.seen[-1]
    assert (last.hub, last.user_id) == ("audit", "ann")
    assert last.request is not None
    assert last.request.url.path == "/audit/negotiate"


async def test_a_choice_outside_the_usable_endpoints_falls_back_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with served(2) as pairs:
        auth = several(pairs, ["east", "west"], router=Stale())
        with caplog.at_level(logging.WARNING, logger="signalr_asgi_auth"):
            async with auth as context:
                reply = await context.negotiate("chat", user_id="ann")
    assert reply["url"].split("/client/")[0] in {url for _, url in pairs}
    [warning] = [r for r in caplog.records if "router" in r.getMessage()]
    assert "'gone'" in warning.getMessage()
    assert "the default router chooses instead" in warning.getMessage()
