"""REST fan-out across two emulated resources of one tenant, with the real managed identity: sends
reach clients on both, a connection lives on one (404 elsewhere is not an error), a failure at
one endpoint is raised naming it after the other took the call, existence is true if any says so."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from signalr_asgi_auth import (
    Delivery,
    EndpointDeliveryError,
    EndpointsHubClient,
    HubClient,
    PermissionDeniedError,
    ServiceError,
    SignalRAuth,
    SignalRContext,
)
from signalr_asgi_auth._connection_homes import ConnectionHomes
from signalr_asgi_auth.emulator import Emulator, Principal

from .support import FAST, auth_for
from .test_rest import Clients, message

pytestmark = pytest.mark.anyio


class NoTargets:
    """An endpoint set whose every endpoint is down by its probes."""

    connection_homes = ConnectionHomes()

    def message_targets(self) -> list[Any]:
        return []


@pytest.fixture
def sender(east: Emulator, west: Emulator) -> Principal:
    principal = east.add_principal("sender")
    for resource in (east, west):
        resource.assign(principal, "SignalR App Server")
        resource.assign(principal, "SignalR REST API Owner")
    return principal


def apps(
    east: Emulator, west: Emulator, tenant_urls: tuple[str, str], sender: Principal
) -> tuple[SignalRAuth, SignalRAuth, SignalRAuth]:
    """The app under test, on both endpoints; and one app per resource that its clients
    negotiate with (so that each client lands where the test wants it)."""
    both = SignalRAuth.from_connection_strings(
        {
            "east": east.connection_string(tenant_urls[0], client_id=sender.client_id),
            "west": west.connection_string(tenant_urls[1], client_id=sender.client_id),
        },
        **FAST,
    )
    return both, auth_for(east, tenant_urls[0], sender), auth_for(west, tenant_urls[1], sender)


def fan_out(signalr: SignalRContext, hub: str = "chat") -> EndpointsHubClient:
    client = signalr.hub(hub)
    assert isinstance(client, EndpointsHubClient)
    return client


async def test_a_broadcast_reaches_clients_on_every_endpoint(
    east: Emulator, west: Emulator, tenant_urls: tuple[str, str], sender: Principal
) -> None:
    app, east_auth, west_auth = apps(east, west, tenant_urls, sender)
    async with (
        app as signalr,
        east_auth as on_east,
        west_auth as on_west,
        Clients(east) as east_clients,
        Clients(west) as west_clients,
    ):
        alice = await east_clients.connect(on_east, "alice")
        bob = await west_clients.connect(on_west, "bob")
        hub = fan_out(signalr, "Chat")

        assert await hub.send_to_all("news", 1) == Delivery(sent=("east", "west"))
        assert await hub.send_to_user("bob", "direct") == Delivery(sent=("east", "west"))
        assert await alice.receive() == message("news", 1)
        assert await bob.receive() == message("news", 1)
        assert await bob.receive() == message("direct")

        # bob's connection is west's: east's 404 means "not here".
        joined = await hub.add_connection_to_group("room", bob.connection_id)
        assert joined == Delivery(sent=("west",), not_found=("east",))
        await hub.send_to_group("room", "in-room")
        assert await bob.receive() == message("in-room")
        assert await hub.user_exists("bob") is True
        assert await hub.group_exists("room") is True
        assert await hub.user_exists("carol") is False

        with pytest.raises(ServiceError) as gone:
            await hub.add_connection_to_group("room", "no-such-connection")
        assert gone.value.status == 404
        assert "'east', 'west'" not in str(gone.value)
        assert "east, west" in str(gone.value)
    assert hub.name == "chat"
    # The tenant's one identity endpoint (east's) served every app; west has none of its own.
    assert east.log.count("identity.app_service") >= 1
    assert west.log.count("identity.app_service") == 0


async def test_a_failure_at_one_endpoint_names_it_after_the_other_took_the_call(
    east: Emulator, west: Emulator, tenant_urls: tuple[str, str], sender: Principal
) -> None:
    app, _, west_auth = apps(east, west, tenant_urls, sender)
    async with app as signalr, west_auth as on_west, Clients(west) as clients:
        bob = await clients.connect(on_west, "bob")
        hub = fan_out(signalr)
        east.inject("signalr.rest", status=500)

        with pytest.raises(EndpointDeliveryError) as raised:
            await hub.send_to_all("news", 1)

        error = raised.value
        assert error.sent == ("west",)
        assert list(error.failed) == ["east"]
        assert error.status == 500
        assert "endpoint 'east'" in str(error)
        assert "Endpoints that took it: 'west'" in str(error)
        assert await bob.receive() == message("news", 1)

        # An existence check: west's yes is enough; without one, east's failure is raised.
        assert await hub.user_exists("bob") is True
        with pytest.raises(EndpointDeliveryError) as unknown:
            await hub.user_exists("carol")
        assert unknown.value.sent == ("west",)
        east.clear_faults()
        assert await hub.user_exists("carol") is False


async def test_roles_are_per_resource(
    east: Emulator, west: Emulator, tenant_urls: tuple[str, str]
) -> None:
    only_east = east.add_principal("only-east")
    east.assign(only_east, "SignalR App Server")
    east.assign(only_east, "SignalR REST API Owner")
    west.assign(only_east, "SignalR App Server")
    app, _, _ = apps(east, west, tenant_urls, only_east)
    async with app as signalr:
        hub = fan_out(signalr)
        with pytest.raises(EndpointDeliveryError) as raised:
            await hub.add_user_to_group("room", "alice")
    assert raised.value.sent == ("east",)
    assert isinstance(raised.value.failed["west"], PermissionDeniedError)
    assert raised.value.status == 403


async def test_one_endpoint_behaves_as_hub_client(
    east: Emulator, west: Emulator, tenant_urls: tuple[str, str]
) -> None:
    reader = east.add_principal("reader")
    east.assign(reader, "SignalR App Server")
    async with auth_for(east, tenant_urls[0], reader) as on_east:
        assert isinstance(on_east.hub("chat"), HubClient)
        # Over a set of one: the same as HubClient.
        hub = EndpointsHubClient(on_east.endpoints, "chat")
        # The same error HubClient raises, not wrapped.
        with pytest.raises(PermissionDeniedError):
            await hub.send_to_all("news")
        with pytest.raises(PermissionDeniedError):
            await hub.user_exists("bob")
        east.assign(reader, "SignalR REST API Owner")
        assert await hub.send_to_all("news") == Delivery(sent=("",))
        assert "endpoints=['']" in repr(hub)


async def test_no_endpoint_to_send_to_is_a_503() -> None:
    hub = EndpointsHubClient(NoTargets(), "chat")
    with pytest.raises(ServiceError, match="every one is down") as raised:
        await hub.send_to_all("news")
    assert raised.value.status == 503


async def test_a_connection_is_asked_for_where_it_was_found(
    east: Emulator, west: Emulator, tenant_urls: tuple[str, str], sender: Principal
) -> None:
    app, _, west_auth = apps(east, west, tenant_urls, sender)

    def asked(emulator: Emulator) -> int:
        return emulator.log.count("signalr.rest")

    async with app as signalr, west_auth as on_west, Clients(west) as clients:
        bob = await clients.connect(on_west, "bob")
        carol = await clients.connect(on_west, "carol")
        hub = fan_out(signalr)
        # A send to a connection is 202 wherever it goes: it teaches nothing.
        sent = await hub.send_to_connection(bob.connection_id, "one")
        assert sent == Delivery(sent=("east", "west"))
        # A group change is 404 where the connection is not: west is learnt.
        joined = await hub.add_connection_to_group("room", bob.connection_id)
        assert joined == Delivery(sent=("west",), not_found=("east",))
        at_east, at_west = asked(east), asked(west)
        assert await hub.send_to_connection(bob.connection_id, "two") == Delivery(sent=("west",))
        joined = await hub.add_connection_to_group("hall", bob.connection_id)
        assert joined == Delivery(sent=("west",))
        assert (asked(east), asked(west)) == (at_east, at_west + 2)
        assert [await bob.receive() for _ in range(2)] == [message("one"), message("two")]
        # an existence check with one yes teaches too
        assert await hub.connection_exists(carol.connection_id) is True
        at_east = asked(east)
        assert await hub.send_to_connection(carol.connection_id, "hi") == Delivery(sent=("west",))
        assert asked(east) == at_east

        # a failure where it lives is raised naming that endpoint; east is not asked
        west.inject("signalr.rest", status=500)
        with pytest.raises(EndpointDeliveryError) as raised:
            await hub.send_to_connection(bob.connection_id, "three")
        assert (raised.value.sent, list(raised.value.failed)) == ((), ["west"])
        assert raised.value.status == 500
        assert asked(east) == at_east
        west.clear_faults()

        # closed elsewhere: west's 404 sends the next call to every endpoint, which finds none
        west_only = on_west.hub("chat")
        await west_only.close_connection(carol.connection_id)
        with anyio.fail_after(5):
            while await west_only.connection_exists(carol.connection_id):  # noqa: ASYNC110 - on its own schedule
                await anyio.sleep(0.01)
        at_east = asked(east)
        with pytest.raises(ServiceError) as gone:
            await hub.add_connection_to_group("room", carol.connection_id)
        assert gone.value.status == 404
        assert "east, west" in str(gone.value)
        assert asked(east) == at_east + 1

        # closed through the app: forgotten, so the next call asks everyone again
        assert await hub.close_connection(bob.connection_id) == Delivery(sent=("west",))
        at_east = asked(east)
        assert await hub.send_to_connection(bob.connection_id, "after") == Delivery(
            sent=("east", "west")
        )
        assert asked(east) == at_east + 1
