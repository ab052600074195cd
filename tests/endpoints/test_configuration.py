"""Configuring several endpoints: the three forms, and the errors that name what to fix."""

from __future__ import annotations

import pytest
from azure.identity import ManagedIdentityCredential

from signalr_asgi_auth import ConfigurationError, Endpoint, SignalRAuth, StickyByUserRouter

KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY3ODkw"


def key_string(host: str) -> str:
    return f"Endpoint=https://{host}.service.signalr.net;AccessKey={KEY};Version=1.0;"


def msi_string(host: str, client_id: str | None = None) -> str:
    identity = f"ClientId={client_id};" if client_id else ""
    return f"Endpoint=https://{host}.service.signalr.net;AuthType=azure.msi;{identity}Version=1.0;"


def test_named_connection_strings_become_endpoints() -> None:
    auth = SignalRAuth.from_connection_strings(
        {
            "east": key_string("east"),
            "west": msi_string("west"),
            "backup:secondary": key_string("b"),
        },
        health_check_interval=10,
    )
    assert [(e.name, e.type, e.endpoint) for e in auth.endpoints] == [
        ("east", "primary", "https://east.service.signalr.net"),
        ("west", "primary", "https://west.service.signalr.net"),
        ("backup", "secondary", "https://b.service.signalr.net"),
    ]
    assert auth.options.health_check_interval == 10
    assert auth.endpoint.endpoint == "https://east.service.signalr.net"  # the first primary
    assert KEY not in repr(auth)
    assert "east" in repr(auth)


def test_type_suffix_is_case_insensitive_and_primary_may_be_explicit() -> None:
    auth = SignalRAuth.from_connection_strings(
        {"a:Primary": key_string("a"), "b:SECONDARY": key_string("b")}
    )
    assert [(e.name, e.type) for e in auth.endpoints] == [("a", "primary"), ("b", "secondary")]


def test_endpoints_in_code_with_a_shared_credential_and_an_own_key() -> None:
    credential = ManagedIdentityCredential()
    auth = SignalRAuth(
        endpoints=[
            Endpoint("https://east.service.signalr.net", name="east"),
            Endpoint(
                "https://west.service.signalr.net",
                name="west",
                type="secondary",
                access_key=KEY,
                client_endpoint="https://chat.example.com",
            ),
        ],
        credential=credential,
        router=StickyByUserRouter(),
    )
    assert [e.client_endpoint for e in auth.endpoints] == [
        "https://east.service.signalr.net",
        "https://chat.example.com",
    ]
    assert KEY not in repr(Endpoint("https://x.service.signalr.net", access_key=KEY))


@pytest.mark.parametrize(
    ("strings", "match"),
    [
        ({}, "No SignalR endpoint is configured"),
        ({"a:secondary": key_string("a")}, "No primary endpoint among 'a'"),
        ({"a:prmary": key_string("a")}, r"endpoint key 'a:prmary'.*unknown endpoint type 'prmary'"),
        ({":secondary": key_string("a")}, "give the endpoint a name"),
        ({"a": key_string("a"), "b": key_string("a")}, "'a' and 'b' are the same resource"),
        ({"a": "Endpoint=https://a.service.signalr.net;Version=1.0;"}, "endpoint 'a'.*AccessKey"),
    ],
)
def test_configuration_errors_name_the_key(strings: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as caught:
        SignalRAuth.from_connection_strings(strings)
    assert KEY not in str(caught.value)


def test_duplicate_names_and_missing_credentials_in_code() -> None:
    with pytest.raises(ConfigurationError, match="Two endpoints are named 'a'"):
        SignalRAuth(
            endpoints=[
                Endpoint("https://a.service.signalr.net", name="a", access_key=KEY),
                Endpoint("https://b.service.signalr.net", name="a", access_key=KEY),
            ]
        )
    with pytest.raises(ConfigurationError, match="Endpoint 'b' has no way to authenticate"):
        SignalRAuth(
            endpoints=[
                Endpoint("https://a.service.signalr.net", name="a", access_key=KEY),
                Endpoint("https://b.service.signalr.net", name="b"),
            ]
        )
    with pytest.raises(ConfigurationError, match="Endpoint 'a': unknown type 'backup'"):
        SignalRAuth(endpoints=[Endpoint("https://a.service.signalr.net", name="a", type="backup")])  # type: ignore[arg-type]
    with pytest.raises(
        ConfigurationError, match="Endpoint 'a' signs with an access key, but mode='service'"
    ):
        SignalRAuth(
            endpoints=[Endpoint("https://a.service.signalr.net", name="a", access_key=KEY)],
            mode="service",
        )
    with pytest.raises(ConfigurationError, match="not both"):
        SignalRAuth(endpoint="https://a.service.signalr.net", endpoints=[], access_key=KEY)
    with pytest.raises(ConfigurationError, match="Endpoint 'a': Invalid value for endpoint"):
        SignalRAuth(endpoints=[Endpoint("ftp://a", name="a", access_key=KEY)])


FORGED = "x\x1b[2K\r✓ Endpoint east: all checks passed\n"
BAD_NAMES = [FORGED, "east\nwest", "a b", "östra", "-east", "e" * 65, "east\u202e"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_an_endpoint_name_outside_the_rule_is_refused_in_every_form(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    rule = "must hold 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or a digit"
    errors: list[str] = []
    with pytest.raises(ConfigurationError, match=rule) as caught:
        SignalRAuth.from_connection_strings({f"{name}:secondary": key_string("a")})
    errors.append(str(caught.value))
    with pytest.raises(ConfigurationError, match=rule) as caught:
        SignalRAuth(
            endpoints=[Endpoint("https://a.service.signalr.net", name=name, access_key=KEY)]
        )
    errors.append(str(caught.value))
    monkeypatch.setenv(f"Azure__SignalR__ConnectionString__{name}", key_string("a"))
    with pytest.raises(ConfigurationError, match=rule) as caught:
        SignalRAuth.from_connection_strings()
    errors.append(str(caught.value))
    for error in errors:  # the message shows the name escaped, on one line
        assert error.isprintable(), error


def test_names_of_letters_digits_dashes_underscores_and_dots_are_kept_as_written() -> None:
    names = ["east-us.2", "West_Europe", "1st", "e" * 64]
    auth = SignalRAuth.from_connection_strings(
        {name: key_string(f"host{i}") for i, name in enumerate(names)}
    )
    assert [e.name for e in auth.endpoints] == names


def test_names_that_differ_only_by_case_are_one_name() -> None:
    match = r"named 'east' and 'EAST' \(names differ by case only"
    with pytest.raises(ConfigurationError, match=match):
        SignalRAuth.from_connection_strings({"east": key_string("a"), "EAST": key_string("b")})
    with pytest.raises(ConfigurationError, match=match):
        SignalRAuth(
            endpoints=[
                Endpoint("https://a.service.signalr.net", name="east", access_key=KEY),
                Endpoint("https://b.service.signalr.net", name="EAST", access_key=KEY),
            ]
        )


def test_an_access_key_string_beside_a_credential_is_refused() -> None:
    with pytest.raises(
        ConfigurationError, match="Endpoint 'a': The connection string holds an AccessKey"
    ):
        SignalRAuth.from_connection_strings(
            {"a": key_string("a")}, credential=ManagedIdentityCredential()
        )


def test_health_check_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match=r"health_check_timeout .* shorter than"):
        SignalRAuth.from_connection_strings(
            {"a": key_string("a")}, health_check_interval=1, health_check_timeout=2
        )
    with pytest.raises(ConfigurationError, match="health_check_interval must be more than zero"):
        SignalRAuth.from_connection_strings({"a": key_string("a")}, health_check_interval=0)


def test_the_environment_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_SIGNALR_CONNECTION_STRING", raising=False)
    monkeypatch.setenv("Azure__SignalR__ConnectionString__east", key_string("east"))
    monkeypatch.setenv("Azure__SignalR__ConnectionString__backup__secondary", key_string("b"))
    for auth in (SignalRAuth.from_connection_strings(), SignalRAuth.from_connection_string()):
        assert sorted((e.name, e.type) for e in auth.endpoints) == [
            ("backup", "secondary"),
            ("east", "primary"),
        ]
    # The plain variable joins as one more, unnamed primary (as .NET merges it).
    monkeypatch.setenv("AZURE_SIGNALR_CONNECTION_STRING", key_string("plain"))
    auth = SignalRAuth.from_connection_strings()
    assert ("", "primary") in [(e.name, e.type) for e in auth.endpoints]


@pytest.mark.parametrize(
    ("variable", "match"),
    [
        (
            "Azure__SignalR__ConnectionString__east__backup",
            "ConnectionString__east__backup: unknown endpoint type",
        ),
        (
            "Azure__SignalR__ConnectionString__a__b__c",
            "write Azure__SignalR__ConnectionString__<name>",
        ),
    ],
)
def test_environment_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, match: str
) -> None:
    monkeypatch.setenv(variable, key_string("east"))
    with pytest.raises(ConfigurationError, match=match) as caught:
        SignalRAuth.from_connection_strings()
    assert KEY not in str(caught.value)


def test_a_bad_connection_string_in_the_environment_names_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("Azure__SignalR__ConnectionString__east", f"Endpoint=nope;AccessKey={KEY}")
    with pytest.raises(ConfigurationError, match=r"ConnectionString__east.*Endpoint") as caught:
        SignalRAuth.from_connection_string()
    assert KEY not in str(caught.value)


def test_one_named_endpoint_behaves_as_the_single_form() -> None:
    auth = SignalRAuth.from_connection_strings({"only": key_string("only")})
    assert auth.authentication == "access_key"
    assert auth.health() == {
        "status": "stopped",
        "authentication": "access_key",
        "client_tokens": "key",
        "endpoint": "https://only.service.signalr.net",
    }
