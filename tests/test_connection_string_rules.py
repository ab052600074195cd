"""Connection-string rules that scripts/mutation found unasserted: the whole text of each refusal
(a message is the recipe the user follows, so a garbled one is a bug), the edges of Port, stray
separators, and key names spelled with look-alike characters."""

from __future__ import annotations

import re

import pytest

from signalr_asgi_auth._connection_string import parse_connection_string
from signalr_asgi_auth._errors import ConnectionStringError
from tests.test_connection_string import HOST, KEY, settings

APP = f"Endpoint={HOST};ClientId=c"

MESSAGES = [
    pytest.param(
        f"Endpoint={HOST};AccessKey={KEY};accesskey={KEY}",
        "The connection string has AccessKey more than once (keys are case-insensitive): keep one.",
        id="repeated-key",
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={KEY};Port=0",
        "Invalid value for Port in the connection string: it must be an integer between 1 and "
        "65535. Remove Port to use the endpoint's port.",
        id="port-zero",
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={KEY};Version=2.0",
        "Invalid value for Version in the connection string: it must be 1.<minor>, optionally "
        "with a suffix, e.g. Version=1.0. Remove Version to use the default.",
        id="version",
    ),
    pytest.param(
        f"Endpoint={HOST};TenantId=t",
        "AccessKey is required when AuthType is absent: add AccessKey=<key> (from the resource's "
        "Keys page), or use Microsoft Entra ID with AuthType=azure.msi (managed identity), "
        "azure.app (app registration), azure (DefaultAzureCredential) or aad. "
        "(TenantId is only read together with AuthType.)",
        id="no-access-key-one-entra-key",
    ),
    pytest.param(
        f"{APP};TenantId=t;ClientSecret=s;ClientCert=c.pem",
        "AccessKey is required when AuthType is absent: add AccessKey=<key> (from the resource's "
        "Keys page), or use Microsoft Entra ID with AuthType=azure.msi (managed identity), "
        "azure.app (app registration), azure (DefaultAzureCredential) or aad. "
        "(ClientId, TenantId, ClientSecret, ClientCert are only read together with AuthType.)",
        id="no-access-key-every-entra-key",
    ),
    pytest.param(
        f"{APP};TenantId=t;AuthType=azure.app;ClientSecret=s;ClientCertPath=c.pem",
        "The connection string has both ClientSecret and ClientCertPath: the app registration "
        "authenticates with one of them, remove the other.",
        id="secret-and-certificate",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.msi;TenantId=t;ClientCert=c.pem",
        "AuthType=azure.msi does not use TenantId or ClientCert: to sign in as an app registration "
        "use AuthType=azure.app, else remove TenantId and ClientCert.",
        id="managed-identity-with-app-keys",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=",
        "AuthType in the connection string is empty: use one of aad, azure, azure.app, azure.msi "
        "(case-insensitive), or remove AuthType and give AccessKey for access-key mode.",
        id="empty-auth-type",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=kerberos",
        "AuthType in the connection string has an unsupported value: use one of aad, azure, "
        "azure.app, azure.msi (case-insensitive), or remove AuthType and give AccessKey for "
        "access-key mode.",
        id="unsupported-auth-type",
    ),
    pytest.param(
        f"{APP};TenantId=t;AuthType=azure.app;ClientCert=a.pem;ClientCertPath=b.pem",
        "The connection string has both ClientCert and ClientCertPath: they are two names for the "
        "certificate file, keep one.",
        id="two-certificate-keys",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.app;TenantId=t;ClientSecret=s",
        "AuthType=azure.app needs ClientId: add ClientId=<application (client) id> of the app "
        "registration.",
        id="app-without-client-id",
    ),
    pytest.param(
        f"{APP};AuthType=azure.app;ClientSecret=s",
        "AuthType=azure.app needs TenantId: add TenantId=<directory (tenant) id> of the app "
        "registration.",
        id="app-without-tenant-id",
    ),
    pytest.param(
        f"{APP};AuthType=azure.app;TenantId=t",
        "AuthType=azure.app needs ClientSecret or ClientCert: add ClientSecret=<secret> or "
        "ClientCert=<path to a PEM or PKCS #12 certificate file>.",
        id="app-without-proof",
    ),
    pytest.param(
        f"{APP};AuthType=aad;TenantId=t",
        "AuthType=aad with TenantId signs in as an app registration and needs ClientSecret or "
        "ClientCert: add one, or remove TenantId to use the user-assigned managed identity that "
        "ClientId names.",
        id="aad-tenant-without-proof",
    ),
    pytest.param(
        f"{APP};AuthType=aad;ClientSecret=s",
        "AuthType=aad with ClientSecret signs in as an app registration and needs TenantId: add "
        "TenantId=<directory (tenant) id>, or remove ClientSecret to use the user-assigned managed "
        "identity that ClientId names.",
        id="aad-proof-without-tenant-id",
    ),
]


@pytest.mark.parametrize(("text", "message"), MESSAGES)
def test_each_refusal_says_what_to_change_in_full(text: str, message: str) -> None:
    with pytest.raises(ConnectionStringError, match=f"^{re.escape(message)}$"):
        parse_connection_string(text)


@pytest.mark.parametrize("port", [1, 65535])
def test_the_first_and_last_ports_are_accepted(port: int) -> None:
    parsed = parse_connection_string(f"Endpoint={HOST};AccessKey={KEY};Port={port}")

    assert parsed.endpoint.endpoint == f"{HOST}:{port}"


def test_an_empty_pair_between_two_is_skipped_not_the_end() -> None:
    parsed = parse_connection_string(f"Endpoint={HOST};;stray;AccessKey={KEY};Version=1.0")

    assert parsed == settings(access_key=KEY, version="1.0")


def test_an_unknown_key_between_two_is_skipped_not_the_end() -> None:
    parsed = parse_connection_string(f"Endpoint={HOST};Region=westeurope;AccessKey={KEY}")

    assert parsed == settings(access_key=KEY)


def test_a_key_name_with_a_kelvin_sign_is_not_that_key() -> None:
    # "\u212a" (KELVIN SIGN) lower-cases to an ASCII "k": a parser that folded it would read a
    # key the string does not have (and .NET's ordinal-ignore-case comparison would not).
    with pytest.raises(ConnectionStringError, match="AccessKey"):
        parse_connection_string(f"Endpoint={HOST};Access\u212aey={KEY}")


@pytest.mark.parametrize(("text", "kind"), [(42, "int"), (None, "NoneType"), (b"x", "bytes")])
def test_a_value_that_is_not_text_is_named_by_its_type(text: object, kind: str) -> None:
    with pytest.raises(TypeError, match=f"^A connection string must be a str, not {kind}\\.$"):
        parse_connection_string(text)  # type: ignore[arg-type]
