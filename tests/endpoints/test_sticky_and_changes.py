"""The sticky-by-user router, endpoints added and removed while running, and one Entra token for
every endpoint on the same identity."""

from __future__ import annotations

from collections import Counter

import anyio
import pytest

from signalr_asgi_auth import (
    ConfigurationError,
    DefaultRouter,
    Endpoint,
    EndpointInfo,
    RouteRequest,
    SignalRAuth,
    StickyByUserRouter,
)

from ..support import wait_until
from .support import OPTIONS, FastClock, key_string, one_tenant, served, several

pytestmark = pytest.mark.anyio

RESOURCE_GROUP = "/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg-signalr"
USERS = [f"user-{n}" for n in range(3000)]


def info(name: str, kind: str = "primary") -> EndpointInfo:
    url = f"https://{name}.service.signalr.net"
    return EndpointInfo(name=name, type=kind, endpoint=url, client_endpoint=url)  # type: ignore[arg-type]


def assignment(router: StickyByUserRouter, endpoints: list[EndpointInfo]) -> dict[str, str]:
    chosen = {}
    for user in USERS:
        endpoint = router.choose(RouteRequest(hub="chat", user_id=user), endpoints)
        assert endpoint is not None
        chosen[user] = endpoint.name
    return chosen


def test_sticky_is_stable_across_workers_and_even() -> None:
    endpoints = [info("east"), info("west"), info("north"), info("south", "secondary")]
    first = assignment(StickyByUserRouter(), endpoints)
    # another worker: a new router, the endpoints listed in another order
    assert assignment(StickyByUserRouter(), endpoints[::-1]) == first
    counts = Counter(first.values())
    assert set(counts) == {"east", "west", "north"}  # primaries only
    assert min(counts.values()) > 850  # 1000 each expected


def test_sticky_moves_only_the_users_of_an_endpoint_that_went_down() -> None:
    endpoints = [info("east"), info("west"), info("north")]
    router = StickyByUserRouter()
    before = assignment(router, endpoints)
    after = assignment(router, [e for e in endpoints if e.name != "west"])
    moved = {user for user in USERS if before[user] != after[user]}
    assert moved == {user for user in USERS if before[user] == "west"}
    assert Counter(after[user] for user in moved).keys() == {"east", "north"}
    # west back: everyone back where they were
    assert assignment(router, endpoints) == before


def test_sticky_without_a_user_and_secondaries_only_when_no_primary() -> None:
    router = StickyByUserRouter(fallback=DefaultRouter())
    endpoints = [info("east"), info("backup", "secondary")]
    anonymous = {router.choose(RouteRequest("chat", None), endpoints) for _ in range(50)}
    assert anonymous == {endpoints[0]}
    assert router.choose(RouteRequest("chat", "u"), [info("b1", "secondary")]) == info(
        "b1", "secondary"
    )


async def test_sticky_through_negotiation_after_a_failover() -> None:
    with served(3) as pairs:
        auth = several(pairs, ["a", "b", "c"], router=StickyByUserRouter())
        url_to_name = {url: name for name, (_, url) in zip("abc", pairs, strict=True)}

        async def places() -> dict[str, str]:
            found = {}
            for user in USERS[:60]:
                reply = await auth.context.negotiate("chat", user_id=user)
                found[user] = url_to_name[reply["url"].split("/client/")[0]]
            return found

        async with auth:
            before = await places()
            assert await places() == before
            pairs[1][0].inject("signalr.health", status=503)
            await wait_until(lambda: not auth.health()["endpoints"][1]["usable"], within=15)
            after = await places()
    moved = {user for user in before if before[user] != after[user]}
    assert moved == {user for user in before if before[user] == "b"}
    assert moved  # 60 users over 3 endpoints: some were on b


async def test_add_and_remove_with_a_drain() -> None:
    with served(3) as pairs:
        (east, east_url), (west, west_url), (north, north_url) = pairs
        clock = FastClock()
        auth = SignalRAuth.from_connection_strings(
            {"east": key_string(east, east_url)}, clock=clock, **OPTIONS
        )
        async with auth as context:
            endpoints = context.endpoints
            assert endpoints.single is not None
            await auth.add_endpoint(Endpoint(west_url, name="west", access_key=west.access_keys[0]))
            assert endpoints.single is None
            assert [r.name for r in endpoints.message_targets()] == ["east", "west"]
            seen = {
                (await context.negotiate("chat"))["url"].split("/client/")[0] for _ in range(60)
            }
            assert seen == {east_url, west_url}
            await wait_until(lambda: any(e.route == "signalr.health" for e in west.log))
            await auth.add_endpoint(
                Endpoint(north_url, name="north", type="secondary", access_key=north.access_keys[0])
            )
            with pytest.raises(ConfigurationError, match="Two endpoints are named 'north'"):
                await auth.add_endpoint(
                    Endpoint("https://x.service.signalr.net", name="north", access_key="k")
                )
            with pytest.raises(ConfigurationError, match="'north' and 'NORTH'"):
                await auth.add_endpoint(
                    Endpoint("https://x.service.signalr.net", name="NORTH", access_key="k")
                )
            with pytest.raises(ConfigurationError, match="must hold 1 to 64 letters"):
                await auth.add_endpoint(
                    Endpoint("https://x.service.signalr.net", name="x\ny", access_key="k")
                )
            with pytest.raises(ConfigurationError, match="No endpoint is named 'south'"):
                await auth.remove_endpoint("south")

            removed = anyio.Event()
            async with anyio.create_task_group() as tasks:

                async def remove() -> None:
                    await auth.remove_endpoint("east", drain=120)  # 1.2 s real
                    removed.set()

                tasks.start_soon(remove)
                await wait_until(lambda: getattr(endpoints.get("east"), "draining", False))
                # no new negotiations at once; still a message target while draining
                seen = {
                    (await context.negotiate("chat"))["url"].split("/client/")[0] for _ in range(30)
                }
                assert seen == {west_url}
                assert "east" in [r.name for r in endpoints.message_targets()]
                assert auth.health()["endpoints"][0]["status"] == "draining"
                assert not removed.is_set()
                await removed.wait()
            assert [r.name for r in endpoints.all] == ["west", "north"]
            assert [e.name for e in auth.endpoints] == ["west", "north"]
            with pytest.raises(ConfigurationError, match="No primary endpoint"):
                await auth.remove_endpoint("west")
            await auth.remove_endpoint("north")
            assert endpoints.single is not None
            assert endpoints.single.name == "west"


async def test_add_endpoint_needs_the_app_running() -> None:
    auth = SignalRAuth.from_connection_strings(
        {"a": "Endpoint=https://a.service.signalr.net;AccessKey=k;Version=1.0;"}
    )
    with pytest.raises(RuntimeError, match="needs the app running"):
        await auth.add_endpoint(Endpoint("https://b.service.signalr.net", name="b", access_key="k"))


async def test_one_identity_call_per_refresh_for_three_endpoints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Three resources of one tenant; tokens live 3 s and are refreshed at half-life. Real time:
    # azure-identity's own cache keeps a token by the real clock.
    with one_tenant("a", "b", "c", token_lifetime=3) as pairs:
        first, first_url = pairs[0]
        principal = first.add_principal("app")
        first.assign(principal, "SignalR App Server", RESOURCE_GROUP)  # covers all three
        for name, value in first.app_service_env(first_url).items():
            monkeypatch.setenv(name, value)
        strings = {
            name: emulator.connection_string(url, client_id=principal.client_id)
            for name, (emulator, url) in zip(["a", "b", "c:secondary"], pairs, strict=True)
        }
        auth = SignalRAuth.from_connection_strings(strings, mode="key", **OPTIONS)

        def identity_calls() -> int:
            return first.log.count("identity.app_service")

        async with auth as context:
            runtimes = context.endpoints.all
            await wait_until(
                lambda: all(r.keys is not None and r.keys.ready.is_set() for r in runtimes)
            )
            assert identity_calls() == 1
            assert [emulator.log.count("signalr.access_key") for emulator, _ in pairs] == [1, 1, 1]
            assert len({id(r.entra) for r in runtimes}) == 1
            keeper = runtimes[0].entra
            assert keeper is not None
            await wait_until(lambda: keeper.attempts.fetches >= 3, within=30)
            calls, fetches = identity_calls(), keeper.attempts.fetches
            assert fetches <= calls <= fetches + 1  # one may be under way
            assert all(entry["usable"] for entry in auth.health()["endpoints"])


async def test_different_identities_do_not_share(monkeypatch: pytest.MonkeyPatch) -> None:
    with one_tenant("a", "b") as pairs:
        first, first_url = pairs[0]
        one, two = first.add_principal("one"), first.add_principal("two")
        for principal in (one, two):
            first.assign(principal, "SignalR App Server", RESOURCE_GROUP)
        for name, value in first.app_service_env(first_url).items():
            monkeypatch.setenv(name, value)
        auth = SignalRAuth.from_connection_strings(
            {
                "a": pairs[0][0].connection_string(pairs[0][1], client_id=one.client_id),
                "b": pairs[1][0].connection_string(pairs[1][1], client_id=two.client_id),
            },
            clock=FastClock(),
            mode="key",
            **OPTIONS,
        )
        async with auth as context:
            runtimes = context.endpoints.all
            await wait_until(
                lambda: all(r.keys is not None and r.keys.ready.is_set() for r in runtimes)
            )
            assert len({id(r.entra) for r in runtimes}) == 2
            assert first.log.count("identity.app_service") == 2
