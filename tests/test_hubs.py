"""Hub addresses: worked out once per hub name, the same as the endpoint and name rules give."""

from __future__ import annotations

import pytest

from signalr_asgi_auth._endpoint import ServiceEndpoint
from signalr_asgi_auth._errors import InvalidInputError
from signalr_asgi_auth._hubs import HubAddresses

ENDPOINT = ServiceEndpoint.create(
    "https://abc.service.signalr.net:8443", client_endpoint="https://proxy.example/signalr"
)


def test_address_follows_the_endpoint_and_the_application_prefix() -> None:
    address = HubAddresses(ENDPOINT, "app").get("Chat")
    assert address.name == "chat"
    assert address.prefixed == "app_chat"
    assert address.url == ENDPOINT.client_url("app_chat")
    assert address.url == "https://proxy.example/signalr/client/?hub=app_chat"
    assert address.audience == ENDPOINT.client_audience("app_chat")
    assert address.audience == "https://abc.service.signalr.net/client/?hub=app_chat"


def test_without_application_the_prefixed_name_is_the_name() -> None:
    address = HubAddresses(ENDPOINT, None).get("Chat")
    assert (address.name, address.prefixed) == ("chat", "chat")


def test_a_name_is_worked_out_once_and_kept() -> None:
    addresses = HubAddresses(ENDPOINT, None)
    assert addresses.get("chat") is addresses.get("chat")
    assert addresses.get("Chat") == addresses.get("chat")  # kept apart, equal


@pytest.mark.parametrize("hub", ["", "1chat", "chat room", "c" * 129, None, 7, ["chat"], {"a": 1}])
def test_bad_names_are_refused_every_time(hub: object) -> None:
    addresses = HubAddresses(ENDPOINT, None)
    for _ in range(2):
        with pytest.raises(InvalidInputError, match="Invalid hub name"):
            addresses.get(hub)  # type: ignore[arg-type]
    assert "[]" in repr(addresses)  # nothing kept


def test_names_taken_from_requests_cannot_fill_the_memory() -> None:
    addresses = HubAddresses(ENDPOINT, None)
    for number in range(1000):
        assert addresses.get(f"hub{number}").prefixed == f"hub{number}"
    assert repr(addresses).count("'hub") == 256
