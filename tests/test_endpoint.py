"""Endpoints: normalisation, the URLs and audiences built from them, and refusing bad URLs."""

from __future__ import annotations

from typing import Any

import pytest

from signalr_asgi_auth._endpoint import ServiceEndpoint, normalize_url
from signalr_asgi_auth._errors import ConfigurationError

HOST = "https://abc.service.signalr.net"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(HOST, HOST, id="plain"),
        pytest.param(f"{HOST}/", HOST, id="trailing-slash"),
        pytest.param(f"{HOST}:443", HOST, id="https-default-port"),
        pytest.param("http://localhost:80", "http://localhost", id="http-default-port"),
        pytest.param("https://abc.service.signalr.net:80", f"{HOST}:80", id="http-port-on-https"),
        pytest.param("http://localhost:443", "http://localhost:443", id="https-port-on-http"),
        pytest.param("http://127.0.0.1:8888/", "http://127.0.0.1:8888", id="ip-and-port"),
        pytest.param("HTTPS://ABC.Service.SignalR.NET", HOST, id="scheme-and-host-lower-cased"),
        pytest.param(
            "https://proxy.contoso.com/SignalR/", "https://proxy.contoso.com/SignalR", id="path"
        ),
        pytest.param("https://proxy.contoso.com/a//", "https://proxy.contoso.com/a", id="slashes"),
        pytest.param("http://[::1]:8080/", "http://[::1]:8080", id="ipv6"),
        pytest.param("https://[::1]:443", "https://[::1]", id="ipv6-default-port"),
        pytest.param(f"  {HOST}/\n", HOST, id="surrounding-whitespace"),
    ],
)
def test_endpoint_is_normalised(given: str, expected: str) -> None:
    endpoint = ServiceEndpoint.create(given)

    assert endpoint.endpoint == endpoint.client_endpoint == endpoint.server_endpoint == expected


@pytest.mark.parametrize(
    ("given", "port", "expected"),
    [
        (HOST, 8443, f"{HOST}:8443"),
        (f"{HOST}:8443", 443, HOST),
        (f"{HOST}:8443", 9000, f"{HOST}:9000"),
        ("http://localhost:8080", 80, "http://localhost"),
        ("http://localhost", 1, "http://localhost:1"),
        ("http://localhost", 65535, "http://localhost:65535"),
    ],
)
def test_port_overrides_the_endpoints_port(given: str, port: int, expected: str) -> None:
    endpoint = ServiceEndpoint.create(given, port=port)

    assert endpoint.endpoint == expected
    assert endpoint.client_endpoint == endpoint.server_endpoint == expected


@pytest.mark.parametrize("port", [0, -1, 65536, True, "443", 443.0, 443.5])
def test_invalid_port_override(port: Any) -> None:
    # Before: "443" raised TypeError and 443.5 made "https://host:443.5".
    with pytest.raises(ConfigurationError, match="Invalid value for port: it must be an integer"):
        ServiceEndpoint.create(HOST, port=port)


@pytest.mark.parametrize(
    ("given", "base"),
    [
        (HOST, HOST),
        (f"{HOST}:8443", HOST),
        ("https://proxy.contoso.com:8443/signalr/", "https://proxy.contoso.com"),
        ("HTTP://LocalHost:8080/Some/Path", "http://localhost"),
        ("http://[::1]:8080/x", "http://[::1]"),
    ],
)
def test_audience_base_is_scheme_and_host_only(given: str, base: str) -> None:
    assert ServiceEndpoint.create(given).audience_base == base
    assert ServiceEndpoint.create(given, port=9000).audience_base == base


def test_urls_and_audiences() -> None:
    endpoint = ServiceEndpoint.create(
        "https://abc.service.signalr.net:8443",
        client_endpoint="https://Clients.Contoso.com/signalr/",
        server_endpoint="http://internal:8080",
    )

    assert endpoint.endpoint == "https://abc.service.signalr.net:8443"
    assert endpoint.client_audience("app_chat") == (
        "https://abc.service.signalr.net/client/?hub=app_chat"
    )
    assert (
        endpoint.client_url("app_chat")
        == "https://clients.contoso.com/signalr/client/?hub=app_chat"
    )
    assert endpoint.access_key_url == "http://internal:8080/api/v1/auth/accessKey"
    assert endpoint.server_url("/api/health") == "http://internal:8080/api/health"


def test_client_and_server_endpoints_default_to_the_endpoint_with_its_port() -> None:
    endpoint = ServiceEndpoint.create(f"{HOST}:8443")

    assert endpoint.client_url("chat") == f"{HOST}:8443/client/?hub=chat"
    assert endpoint.access_key_url == f"{HOST}:8443/api/v1/auth/accessKey"
    assert endpoint.client_audience("chat") == f"{HOST}/client/?hub=chat"


def test_port_override_does_not_touch_explicit_client_and_server_endpoints() -> None:
    endpoint = ServiceEndpoint.create(
        HOST, port=8443, client_endpoint="https://c.example", server_endpoint="https://s.example:9"
    )

    assert (endpoint.endpoint, endpoint.client_endpoint, endpoint.server_endpoint) == (
        f"{HOST}:8443",
        "https://c.example",
        "https://s.example:9",
    )


def test_access_key_url_with_default_ports_dropped() -> None:
    assert ServiceEndpoint.create("https://a.bc:443").access_key_url == (
        "https://a.bc/api/v1/auth/accessKey"
    )
    assert ServiceEndpoint.create("https://a.bc:80").access_key_url == (
        "https://a.bc:80/api/v1/auth/accessKey"
    )


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("https://abc.service.signalr.net", "abc"),
        ("https://ABC-1.service.signalr.net:443/", "abc-1"),
        ("https://abc.signalr.azure.cn", "abc"),
        ("https://abc.signalr.azure.us", "abc"),
        ("https://abc.privatelink.service.signalr.net", "abc"),
        ("https://a.b.service.signalr.net", None),
        ("https://proxy.contoso.com", None),
        ("http://localhost:8888", None),
        ("https://service.signalr.net", None),
        ("https://abc.service.signalr.net.evil.com", None),
    ],
)
def test_resource_name(given: str, name: str | None) -> None:
    assert ServiceEndpoint.create(given).resource_name == name


def test_host() -> None:
    assert ServiceEndpoint.create("HTTPS://ABC.service.signalr.net:8443/x").host == (
        "abc.service.signalr.net"
    )


BAD_URLS = [
    pytest.param("   ", "got an empty value", id="blank"),
    pytest.param("ftp://abc.service.signalr.net", "URL.$", id="ftp"),
    pytest.param("wss://abc.service.signalr.net", "URL.$", id="wss"),
    pytest.param("abc.service.signalr.net", "URL.$", id="no-scheme"),
    pytest.param("/relative/path", "URL.$", id="relative"),
    pytest.param("//abc.service.signalr.net", "URL.$", id="scheme-relative"),
    pytest.param("https://", "URL.$", id="no-host"),
    pytest.param("https://abc .service.signalr.net", "without spaces", id="space-in-host"),
    pytest.param("https://abc.service.signalr.net/a b", "without spaces", id="space-in-path"),
    pytest.param("https://abc.service.signalr.net/\x00", "control characters", id="nul"),
    pytest.param("https://user@abc.service.signalr.net", "without user information", id="user"),
    pytest.param("https://u:p@abc.service.signalr.net", "without user information", id="password"),
    pytest.param("https://abc.service.signalr.net?x=1", "without a query or fragment", id="query"),
    pytest.param(
        "https://abc.service.signalr.net#top", "without a query or fragment", id="fragment"
    ),
    pytest.param("https://abc.service.signalr.net:0", "port between 1 and 65535", id="port-0"),
    pytest.param("https://abc.service.signalr.net:65536", "valid port", id="port-too-big"),
    pytest.param("https://abc.service.signalr.net:http", "valid port", id="port-name"),
    pytest.param("https://abc$.service.signalr.net", "whose host holds only", id="dollar"),
    pytest.param("https://ab%63.service.signalr.net", "whose host holds only", id="percent"),
    pytest.param("https://exämple.com", "whose host holds only", id="non-ascii"),
    pytest.param("https://[::g]", "with a valid host", id="bad-ipv6"),
    pytest.param("https://[::1", "with a valid host", id="unclosed-ipv6"),
    pytest.param("https://[v1.x]", "whose host holds only", id="ipvfuture"),
    pytest.param("https://[1.2.3.4]", "with a valid host", id="bracketed-ipv4"),
]


@pytest.mark.parametrize(("url", "detail"), BAD_URLS)
@pytest.mark.parametrize("key", ["endpoint", "client_endpoint", "server_endpoint"])
def test_bad_urls_name_the_key(url: Any, detail: str, key: str) -> None:
    arguments: dict[str, Any] = {"endpoint": HOST, key: url}
    match = rf"^Invalid value for {key}: it must be an absolute http:// or https:// .*{detail}"

    with pytest.raises(ConfigurationError, match=match):
        ServiceEndpoint.create(**arguments)


@pytest.mark.parametrize("url", ["", None, 5])
def test_missing_endpoint(url: Any) -> None:
    with pytest.raises(
        ConfigurationError, match=r"^Invalid value for endpoint: .* got an empty value"
    ):
        ServiceEndpoint.create(url)


@pytest.mark.parametrize("key", ["client_endpoint", "server_endpoint"])
def test_empty_client_or_server_endpoint_means_the_endpoint(key: str) -> None:
    arguments: dict[str, Any] = {key: ""}

    assert getattr(ServiceEndpoint.create(HOST, **arguments), key) == HOST


def test_messages_do_not_repeat_the_url() -> None:
    with pytest.raises(ConfigurationError) as caught:
        normalize_url("https://user:Zq9LeakMarker7Yv@host", key="endpoint")

    assert "Zq9LeakMarker7Yv" not in str(caught.value)


def test_endpoint_is_frozen() -> None:
    endpoint = ServiceEndpoint.create(HOST)

    with pytest.raises(AttributeError):
        endpoint.endpoint = "https://other"  # type: ignore[misc]
