"""Naming the endpoint instead of routing: ``negotiate``/``client_token``/``client_url``/``hub``
with ``endpoint=``, and the error for the calls that cannot route when there are several."""

from __future__ import annotations

import pytest

from signalr_asgi_auth import (
    ConfigurationError,
    HubClient,
    InvalidInputError,
    NoUsableEndpointError,
    SignalRAuth,
)

from ..support import FAST, wait_until
from .support import key_string, served, several, token_claims

pytestmark = pytest.mark.anyio


async def test_token_and_url_without_a_name_are_refused_with_several_endpoints() -> None:
    with served(2) as pairs:
        async with several(pairs, ["east", "west"]) as context:
            with pytest.raises(ConfigurationError) as token_error:
                await context.client_token("chat", user_id="alice")
            with pytest.raises(ConfigurationError) as url_error:
                context.client_url("chat")
    for error, call in ((token_error, "client_token"), (url_error, "client_url")):
        text = str(error.value)
        assert text.startswith(f"{call}() cannot choose among several SignalR endpoints")
        assert "negotiate()" in text
        assert "'east', 'west'" in text


async def test_a_named_endpoint_signs_for_its_own_url() -> None:
    with served(3) as pairs:
        (east, east_url), (west, west_url), (_, backup_url) = pairs
        async with several(pairs, ["east", "west", "backup:secondary"]) as context:
            token = await context.client_token("chat", user_id="alice", endpoint="west")
            url = context.client_url("chat", endpoint="west")
            replies = [
                await context.negotiate("chat", user_id=f"u{n}", endpoint="backup")
                for n in range(20)
            ]
    assert token_claims(token, west, west_url)["nameid"] == "alice"
    assert url.startswith(f"{west_url}/client/?hub=chat")
    # a secondary, never chosen by the default router while primaries are usable, when named
    assert {reply["url"].split("/client/")[0] for reply in replies} == {backup_url}
    with pytest.raises(Exception, match="Signature verification failed"):
        token_claims(token, east, east_url)


async def test_an_unknown_name_is_invalid_input_naming_the_endpoints() -> None:
    with served(2) as pairs:
        async with several(pairs, ["east", "west"]) as context:
            for call in (
                lambda: context.negotiate("chat", endpoint="north"),
                lambda: context.client_token("chat", endpoint="north"),
            ):
                with pytest.raises(InvalidInputError, match="'east', 'west'"):
                    await call()
            with pytest.raises(InvalidInputError, match="No SignalR endpoint is named 'north'"):
                context.client_url("chat", endpoint="north")
            with pytest.raises(InvalidInputError, match="No SignalR endpoint is named 3"):
                context.hub("chat", endpoint=3)  # type: ignore[arg-type]


async def test_a_named_endpoint_that_is_down_is_a_503() -> None:
    with served(2) as pairs:
        (_, east_url), (west, west_url) = pairs
        auth = several(pairs, ["east", "west"])
        async with auth as context:
            west.inject("signalr.health", status=503)
            await wait_until(lambda: not auth.health()["endpoints"][1]["usable"], within=15)
            for call in (
                lambda: context.negotiate("chat", endpoint="west"),
                lambda: context.client_token("chat", endpoint="west"),
            ):
                with pytest.raises(NoUsableEndpointError) as caught:
                    await call()
                assert set(caught.value.reasons) == {"west"}
                assert "HTTP 503" in caught.value.reasons["west"]
                assert caught.value.retry_after >= 1
            # the router still has east; west's address needs no probe
            assert (await context.negotiate("chat"))["url"].startswith(east_url)
            assert context.client_url("chat", endpoint="west").startswith(west_url)


async def test_a_named_hub_client_calls_that_endpoint_alone() -> None:
    with served(2) as pairs:
        (east, _), (west, _) = pairs
        # the real clock here: the emulators check the REST tokens' times
        async with several(pairs, ["east", "west"], compressed=False) as context:
            pinned = context.hub("chat", endpoint="west")
            assert isinstance(pinned, HubClient)
            await pinned.send_to_all("news", 1)
            await context.hub("chat", endpoint="east").send_to_user("alice", "news", 2)
    assert [entry.path for entry in west.log.entries("signalr.rest")] == ["/api/hubs/chat/:send"]
    assert [entry.path for entry in east.log.entries("signalr.rest")] == [
        "/api/hubs/chat/users/alice/:send"
    ]


async def test_one_endpoint_needs_no_name() -> None:
    with served(1) as pairs:
        [(emulator, url)] = pairs
        async with SignalRAuth.from_connection_string(key_string(emulator, url), **FAST) as context:
            token = await context.client_token("chat", user_id="bob")
            assert context.client_url("chat").startswith(f"{url}/client/")
            assert isinstance(context.hub("chat"), HubClient)
    assert token_claims(token, emulator, url)["nameid"] == "bob"
