from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from signalr_asgi_auth._connection_string import ConnectionSettings, parse_connection_string
from signalr_asgi_auth._endpoint import ServiceEndpoint
from signalr_asgi_auth._errors import ConfigurationError, ConnectionStringError
from signalr_asgi_auth._secrets import Secret

HOST = "https://abc.service.signalr.net"
# Base64 like a real access key, "=" padding included; no key name inside.
KEY = "bXktc2VjcmV0LWtleS1mb3ItdGhlLXRlc3RzLTAxMjM0NQ=="
# Shaped like an Entra client secret.
APP_SECRET = "qT8Q~hUnTeR2.wXyZ_42-mnopQRS"
# Put into every bad string that holds a secret; must never come back in a message.
LEAK = "Zq9LeakMarker7Yv"


def endpoint(main: str, client: str | None = None, server: str | None = None) -> ServiceEndpoint:
    return ServiceEndpoint(
        endpoint=main, client_endpoint=client or main, server_endpoint=server or main
    )


def settings(
    main: str = HOST,
    *,
    client: str | None = None,
    server: str | None = None,
    auth_type: str | None = None,
    access_key: str | None = None,
    client_id: str | None = None,
    tenant_id: str | None = None,
    client_secret: str | None = None,
    client_cert_path: str | None = None,
    version: str | None = None,
) -> ConnectionSettings:
    return ConnectionSettings(
        endpoint=endpoint(main, client, server),
        auth_type=auth_type,
        access_key=Secret(access_key) if access_key is not None else None,
        client_id=client_id,
        tenant_id=tenant_id,
        client_secret=Secret(client_secret) if client_secret is not None else None,
        client_cert_path=client_cert_path,
        version=version,
    )


GOOD = [
    # The grammar
    pytest.param(
        f"Endpoint={HOST};AccessKey={KEY};Version=1.0;",
        settings(access_key=KEY, version="1.0"),
        id="portal-access-key",
    ),
    pytest.param(
        f"endpoint={HOST};ACCESSKEY={KEY};vErSiOn=1.0",
        settings(access_key=KEY, version="1.0"),
        id="keys-case-insensitive",
    ),
    pytest.param(
        f"  Endpoint = {HOST}/ ;\tAccessKey =  {KEY}\t;  Version= 1.0 ; ",
        settings(access_key=KEY, version="1.0"),
        id="whitespace-around-keys-and-values",
    ),
    pytest.param(
        f";;Endpoint={HOST};;;AccessKey={KEY};;",
        settings(access_key=KEY),
        id="empty-entries-dropped",
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey=a=b==",
        settings(access_key="a=b=="),
        id="value-split-at-first-equals",
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={KEY};Foo=bar;foo=baz;NoEqualsSign;=orphan;Version",
        settings(access_key=KEY),
        id="unknown-keys-and-entries-without-equals-ignored",
    ),
    pytest.param(
        f"AccessKey={KEY};Endpoint=HTTPS://ABC.Service.SignalR.net/",
        settings(access_key=KEY),
        id="any-order-host-lower-cased-trailing-slash-dropped",
    ),
    pytest.param(
        f"Endpoint={HOST}/base/path/;AccessKey={KEY}",
        settings(f"{HOST}/base/path", access_key=KEY),
        id="path-kept",
    ),
    # Ports
    pytest.param(
        f"Endpoint={HOST}:443;AccessKey={KEY}",
        settings(access_key=KEY),
        id="https-443-vanishes",
    ),
    pytest.param(
        f"Endpoint=http://localhost:80;AccessKey={KEY}",
        settings("http://localhost", access_key=KEY),
        id="http-80-vanishes",
    ),
    pytest.param(
        f"Endpoint={HOST};Port=8443;AccessKey={KEY}",
        settings(f"{HOST}:8443", access_key=KEY),
        id="port-added",
    ),
    pytest.param(
        f"Endpoint={HOST}:8443;Port=443;AccessKey={KEY}",
        settings(access_key=KEY),
        id="port-443-overrides-and-vanishes",
    ),
    pytest.param(
        f"Endpoint={HOST};Port=80;AccessKey={KEY}",
        settings(f"{HOST}:80", access_key=KEY),
        id="https-port-80-kept",
    ),
    pytest.param(
        f"Endpoint=http://localhost;Port=443;AccessKey={KEY}",
        settings("http://localhost:443", access_key=KEY),
        id="http-port-443-kept",
    ),
    pytest.param(
        f"Endpoint=http://localhost;Port=8888;AccessKey={KEY};Version=1.0;",
        settings("http://localhost:8888", access_key=KEY, version="1.0"),
        id="emulator",
    ),
    pytest.param(
        f"Endpoint=http://127.0.0.1;Port=00080;AccessKey={KEY}",
        settings("http://127.0.0.1", access_key=KEY),
        id="port-leading-zeros",
    ),
    pytest.param(
        f"Endpoint=http://[::1]:8080;AccessKey={KEY}",
        settings("http://[::1]:8080", access_key=KEY),
        id="ipv6-literal",
    ),
    pytest.param(
        f"Endpoint={HOST};Port=65535;AccessKey={KEY}",
        settings(f"{HOST}:65535", access_key=KEY),
        id="port-65535",
    ),
    # Client and server endpoints
    pytest.param(
        f"Endpoint={HOST};Port=8443;AccessKey={KEY}",
        settings(f"{HOST}:8443", client=f"{HOST}:8443", server=f"{HOST}:8443", access_key=KEY),
        id="client-and-server-default-to-endpoint-with-port",
    ),
    pytest.param(
        f"Endpoint={HOST};ClientEndpoint=https://Chat.Contoso.com:443/signalr/;"
        f"ServerEndpoint=http://10.0.0.4:8080/;AccessKey={KEY}",
        settings(
            client="https://chat.contoso.com/signalr",
            server="http://10.0.0.4:8080",
            access_key=KEY,
        ),
        id="client-and-server-endpoints",
    ),
    pytest.param(
        f"Endpoint={HOST};Port=8443;ClientEndpoint=https://chat.contoso.com;AccessKey={KEY}",
        settings(f"{HOST}:8443", client="https://chat.contoso.com", access_key=KEY),
        id="port-only-for-endpoint",
    ),
    # Versions
    pytest.param(
        f"Endpoint={HOST};AccessKey={KEY};Version=1.12",
        settings(access_key=KEY, version="1.12"),
        id="version-1.12",
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={KEY};Version=1.0-preview",
        settings(access_key=KEY, version="1.0-preview"),
        id="version-preview-suffix",
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={KEY};Version=1.1.2_beta.3",
        settings(access_key=KEY, version="1.1.2_beta.3"),
        id="version-dotted-suffix",
    ),
    # Microsoft Entra ID
    pytest.param(
        f"Endpoint={HOST};AuthType=azure",
        settings(auth_type="azure"),
        id="azure",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=Azure;ClientId=11111111-2222-3333-4444-555555555555",
        settings(auth_type="azure", client_id="11111111-2222-3333-4444-555555555555"),
        id="azure-with-managed-identity-client-id",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.msi;Version=1.0",
        settings(auth_type="azure.msi", version="1.0"),
        id="azure.msi-system-assigned",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=AZURE.MSI;ClientId=cid",
        settings(auth_type="azure.msi", client_id="cid"),
        id="azure.msi-user-assigned-upper-case",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.msi;ClientId=",
        settings(auth_type="azure.msi"),
        id="azure.msi-empty-client-id-is-absent",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.app;ClientId=cid;TenantId=tid;ClientSecret={APP_SECRET}",
        settings(auth_type="azure.app", client_id="cid", tenant_id="tid", client_secret=APP_SECRET),
        id="azure.app-secret",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=Azure.App;ClientId=cid;TenantId=contoso.onmicrosoft.com;"
        "ClientCert=/etc/certs/app.pem",
        settings(
            auth_type="azure.app",
            client_id="cid",
            tenant_id="contoso.onmicrosoft.com",
            client_cert_path="/etc/certs/app.pem",
        ),
        id="azure.app-cert-mixed-case",
    ),
    pytest.param(
        f"Endpoint={HOST};authtype=azure.app;clientid=cid;tenantid=tid;"
        r"clientcertpath=C:\certs\my app.pfx",
        settings(
            auth_type="azure.app",
            client_id="cid",
            tenant_id="tid",
            client_cert_path=r"C:\certs\my app.pfx",
        ),
        id="azure.app-ClientCertPath-alias",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.app;ClientId=cid;TenantId=tid;ClientSecret=a=b==;"
        "ClientCert=",
        settings(auth_type="azure.app", client_id="cid", tenant_id="tid", client_secret="a=b=="),
        id="azure.app-secret-with-equals-and-empty-cert",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=aad",
        settings(auth_type="aad"),
        id="aad-system-assigned",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=AAD;ClientId=cid",
        settings(auth_type="aad", client_id="cid"),
        id="aad-user-assigned-upper-case",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=aad;ClientId=cid;TenantId=tid;ClientSecret={APP_SECRET}",
        settings(auth_type="aad", client_id="cid", tenant_id="tid", client_secret=APP_SECRET),
        id="aad-app-secret",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=aad;ClientId=cid;TenantId=tid;ClientCertPath=app.pem",
        settings(auth_type="aad", client_id="cid", tenant_id="tid", client_cert_path="app.pem"),
        id="aad-app-cert",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.msi;AccessKey={KEY}",
        settings(auth_type="azure.msi"),
        id="access-key-ignored-under-entra",
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={KEY};ClientId=cid;TenantId=tid;ClientSecret={APP_SECRET}",
        settings(access_key=KEY),
        id="entra-keys-ignored-without-auth-type",
    ),
]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_parses(text: str, expected: ConnectionSettings) -> None:
    assert parse_connection_string(text) == expected


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_repr_shows_no_secret(text: str, expected: ConnectionSettings) -> None:
    shown = repr(parse_connection_string(text)) + str(parse_connection_string(text))
    for secret in (expected.access_key, expected.client_secret):
        if secret is not None:
            assert secret.reveal() not in shown
    assert KEY not in shown
    assert APP_SECRET not in shown


BAD = [
    # Shape
    pytest.param("", "connection string is empty", id="empty"),
    pytest.param(" \t\n ", "connection string is empty", id="whitespace-only"),
    pytest.param(";;;", "no Key=Value pair", id="only-semicolons"),
    pytest.param(" ; ;nothing here; ", "no Key=Value pair", id="no-pairs"),
    # Endpoint
    pytest.param(
        f"AccessKey={LEAK}", r"missing Endpoint \(e\.g\. Endpoint=https://", id="no-endpoint"
    ),
    pytest.param(f"Endpoint;AccessKey={LEAK}", "missing Endpoint", id="endpoint-without-equals"),
    pytest.param(
        f"EndPoint=;AccessKey={LEAK}",
        "empty Endpoint. Fix Endpoint in the connection string",
        id="empty-endpoint",
    ),
    pytest.param(
        f"Endpoint=ftp://abc.service.signalr.net;AccessKey={LEAK}",
        "Invalid value for Endpoint: it must be an absolute http:// or https:// URL",
        id="ftp-endpoint",
    ),
    pytest.param(f"Endpoint=/client;AccessKey={LEAK}", "Invalid value for Endpoint", id="relative"),
    pytest.param(
        f"Endpoint=abc.service.signalr.net;AccessKey={LEAK}",
        "Invalid value for Endpoint",
        id="no-scheme",
    ),
    pytest.param(f"Endpoint=https://;AccessKey={LEAK}", "Invalid value for Endpoint", id="no-host"),
    pytest.param(
        f"Endpoint={HOST}/?hub=chat;AccessKey={LEAK}",
        "Invalid value for Endpoint.*without a query",
        id="endpoint-query",
    ),
    pytest.param(
        f"Endpoint=https://user:{LEAK}@abc.service.signalr.net;AccessKey={LEAK}",
        "Invalid value for Endpoint.*without user information",
        id="endpoint-user-info",
    ),
    pytest.param(
        f"Endpoint={HOST}:99999;AccessKey={LEAK}",
        "Invalid value for Endpoint.*valid port",
        id="endpoint-url-port-too-big",
    ),
    pytest.param(
        f"Endpoint={HOST}:0;AccessKey={LEAK}",
        "Invalid value for Endpoint.*port between 1 and 65535",
        id="endpoint-url-port-0",
    ),
    pytest.param(
        f"Endpoint=https://abc.service.signalr.net{LEAK}%41;AccessKey={LEAK}",
        "Invalid value for Endpoint.*host holds only letters",
        id="endpoint-odd-host",
    ),
    pytest.param(
        f"Endpoint=https://abc{LEAK} .service.signalr.net;AccessKey={LEAK}",
        "Invalid value for Endpoint.*without spaces",
        id="endpoint-space",
    ),
    pytest.param(
        f"Endpoint=https://[::zz]/;AccessKey={LEAK}", "Invalid value for Endpoint", id="bad-ipv6"
    ),
    # Port
    pytest.param(
        f"Endpoint={HOST};Port=0;AccessKey={LEAK}", "Port.*between 1 and 65535", id="port-0"
    ),
    pytest.param(
        f"Endpoint={HOST};Port=65536;AccessKey={LEAK}", "Port.*between 1 and 65535", id="port-65536"
    ),
    pytest.param(
        f"Endpoint={HOST};Port=abc;AccessKey={LEAK}", "Port.*between 1 and 65535", id="port-abc"
    ),
    pytest.param(
        f"Endpoint={HOST};Port=;AccessKey={LEAK}", "Invalid value for Port", id="port-empty"
    ),
    pytest.param(
        f"Endpoint={HOST};Port=-1;AccessKey={LEAK}", "Invalid value for Port", id="port-neg"
    ),
    pytest.param(
        f"Endpoint={HOST};Port=+443;AccessKey={LEAK}", "Invalid value for Port", id="port-+"
    ),
    pytest.param(
        f"Endpoint={HOST};Port=4_43;AccessKey={LEAK}", "Invalid value for Port", id="port-_"
    ),
    pytest.param(
        f"Endpoint={HOST};Port=\N{ARABIC-INDIC DIGIT FOUR}43;AccessKey={LEAK}",
        "Invalid value for Port",
        id="port-non-ascii-digit",
    ),
    pytest.param(
        f"Endpoint={HOST};Port={'9' * 5000};AccessKey={LEAK}",
        "Invalid value for Port",
        id="port-5000-digits",
    ),
    pytest.param(
        f"Endpoint={HOST};Port=443{LEAK};AccessKey={LEAK}",
        "Invalid value for Port",
        id="port-glued",
    ),
    # Version
    pytest.param(
        f"Endpoint={HOST};AccessKey={LEAK};Version=2.0", "Version.*1.<minor>", id="version-2.0"
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={LEAK};Version=1", "Invalid value for Version", id="v-1"
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={LEAK};Version=1.", "Invalid value for Version", id="v-1."
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={LEAK};Version=v1.0", "Invalid value for Version", id="v-prefix"
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={LEAK};Version=1.0 {LEAK}",
        "Invalid value for Version",
        id="version-space",
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={LEAK};Version=",
        "Invalid value for Version",
        id="version-empty",
    ),
    # Client and server endpoints
    pytest.param(
        f"Endpoint={HOST};AccessKey={LEAK};ClientEndpoint=ftp://chat.contoso.com",
        "Invalid value for ClientEndpoint.*Fix ClientEndpoint in the connection string",
        id="client-endpoint-ftp",
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={LEAK};ClientEndpoint=",
        "empty ClientEndpoint",
        id="client-endpoint-empty",
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={LEAK};ServerEndpoint=internal:8080",
        "Invalid value for ServerEndpoint",
        id="server-endpoint-no-scheme",
    ),
    # Duplicates
    pytest.param(
        f"Endpoint={HOST};endpoint={HOST};AccessKey={LEAK}",
        "has Endpoint more than once",
        id="duplicate-endpoint",
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={LEAK};ACCESSKEY={LEAK}",
        "has AccessKey more than once",
        id="duplicate-access-key",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=aad;authtype=aad",
        "has AuthType more than once",
        id="duplicate-auth-type",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.app;ClientId=a;TenantId=t;ClientSecret={LEAK};"
        f"clientSECRET={LEAK}",
        "has ClientSecret more than once",
        id="duplicate-client-secret",
    ),
    # AuthType
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.mis;AccessKey={LEAK}",
        r"AuthType in the connection string has an unsupported value: use one of aad, azure, "
        r"azure\.app, azure\.msi",
        id="auth-type-typo",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=ManagedIdentity", "unsupported value", id="auth-type-unknown"
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=;AccessKey={LEAK}", "AuthType.*is empty", id="auth-empty"
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=AZURE.MS\N{LATIN CAPITAL LETTER I WITH DOT ABOVE}",
        "unsupported value",
        id="auth-type-non-ascii",
    ),
    # Access-key mode
    pytest.param(
        f"Endpoint={HOST};Version=1.0",
        "AccessKey is required when AuthType is absent: add AccessKey=<key>",
        id="no-access-key",
    ),
    pytest.param(f"Endpoint={HOST};AccessKey=  ", "AccessKey is required", id="empty-access-key"),
    pytest.param(
        f"Endpoint={HOST};ClientId=cid;ClientSecret={LEAK}",
        r"AuthType=azure\.msi.*\(ClientId, ClientSecret are only read together with AuthType",
        id="entra-keys-without-auth-type",
    ),
    # azure.app
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.app;TenantId=t;ClientSecret={LEAK}",
        r"AuthType=azure\.app needs ClientId",
        id="azure.app-no-client-id",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.app;ClientId=c;ClientSecret={LEAK}",
        r"AuthType=azure\.app needs TenantId",
        id="azure.app-no-tenant-id",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.app;ClientId=c;TenantId=t;AccessKey={LEAK}",
        r"AuthType=azure\.app needs ClientSecret or ClientCert",
        id="azure.app-no-secret-or-cert",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.app;ClientId=c;TenantId=t;ClientSecret={LEAK};ClientCert=a",
        "both ClientSecret and ClientCert",
        id="azure.app-secret-and-cert",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.app;ClientId=c;TenantId=t;ClientCert=a;ClientCertPath=a",
        "both ClientCert and ClientCertPath",
        id="cert-and-cert-path",
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={LEAK};ClientCert=a;clientcertpath=b",
        "both ClientCert and ClientCertPath",
        id="cert-and-cert-path-without-auth-type",
    ),
    # aad
    pytest.param(
        f"Endpoint={HOST};AuthType=aad;TenantId=t",
        "AuthType=aad with TenantId needs ClientId",
        id="aad-tenant-without-client-id",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=aad;TenantId=t;ClientSecret={LEAK}",
        "AuthType=aad with ClientSecret needs ClientId",
        id="aad-secret-without-client-id",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=aad;ClientCertPath=a.pem",
        "AuthType=aad with ClientCertPath needs ClientId",
        id="aad-cert-path-without-client-id",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=aad;ClientId=c;TenantId=t",
        "AuthType=aad with TenantId .* needs ClientSecret or ClientCert",
        id="aad-app-without-secret",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=aad;ClientId=c;ClientSecret={LEAK}",
        "AuthType=aad with ClientSecret .* needs TenantId",
        id="aad-secret-without-tenant",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=aad;ClientId=c;TenantId=t;ClientSecret={LEAK};ClientCert=a",
        "both ClientSecret and ClientCert",
        id="aad-secret-and-cert",
    ),
    # azure.msi, azure
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.msi;ClientId=c;TenantId=t;ClientSecret={LEAK}",
        r"AuthType=azure\.msi does not use TenantId or ClientSecret: .* use AuthType=azure\.app",
        id="azure.msi-with-app-keys",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure;ClientCertPath=a.pem",
        "AuthType=azure does not use ClientCertPath",
        id="azure-with-cert",
    ),
    # A missing ";" glues a key into another key's value
    pytest.param(
        f"Endpoint={HOST} AccessKey={LEAK};Version=1.0",
        "value of Endpoint .* contains 'AccessKey=': a ';' is probably missing before AccessKey",
        id="glued-after-endpoint",
    ),
    pytest.param(
        f"Endpoint={HOST}AccessKey={LEAK}",
        "value of Endpoint .* contains 'AccessKey='",
        id="glued-without-space",
    ),
    pytest.param(
        f"Endpoint={HOST};AccessKey={LEAK}Version=1.0",
        "value of AccessKey .* contains 'Version='",
        id="glued-after-access-key",
    ),
    pytest.param(
        f"Endpoint={HOST};Version=1.0accesskey={LEAK}",
        "value of Version .* contains 'AccessKey='",
        id="glued-after-version",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.app;ClientId=c;TenantId=tClientSecret={LEAK}",
        "value of TenantId .* contains 'ClientSecret='",
        id="glued-after-tenant-id",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.appClientSecret={LEAK}",
        "value of AuthType .* contains 'ClientSecret='",
        id="glued-after-auth-type",
    ),
    pytest.param(
        f"Endpoint={HOST};AuthType=azure.msi;ClientId=c ClientEndpoint=https://x.{LEAK}.com",
        "value of ClientId .* contains 'ClientEndpoint='",
        id="glued-longest-key-name",
    ),
]


@pytest.mark.parametrize(("text", "match"), BAD)
def test_rejects(text: str, match: str) -> None:
    with pytest.raises(ConnectionStringError, match=match):
        parse_connection_string(text)


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


@pytest.mark.parametrize(("text", "match"), [case for case in BAD if LEAK in str(case.values[0])])
def test_messages_never_hold_a_secret(text: str, match: str) -> None:
    with pytest.raises(ConnectionStringError) as caught:
        parse_connection_string(text)
    for exc in _chain(caught.value):
        shown = f"{exc}\n{exc!r}".lower()  # URLs are lower-cased on their way into messages
        assert LEAK.lower() not in shown


@pytest.mark.parametrize("text", [b"Endpoint=https://x;AccessKey=k", None, 42])
def test_rejects_non_str(text: object) -> None:
    with pytest.raises(TypeError, match="must be a str, not"):
        parse_connection_string(text)  # type: ignore[arg-type]


def test_error_is_a_value_error_and_configuration_error() -> None:
    with pytest.raises(ValueError, match="missing Endpoint") as caught:
        parse_connection_string("AccessKey=k")
    assert isinstance(caught.value, ConfigurationError)


def test_settings_hold_only_parsed_fields() -> None:
    names = [field.name for field in dataclasses.fields(ConnectionSettings)]
    assert names == [
        "endpoint",
        "auth_type",
        "access_key",
        "client_id",
        "tenant_id",
        "client_secret",
        "client_cert_path",
        "version",
    ]
    parsed = parse_connection_string(f"Endpoint={HOST};AccessKey={KEY}")
    assert not hasattr(parsed, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.version = "1.0"  # type: ignore[misc]


def test_secrets_are_revealed_only_on_request() -> None:
    parsed = parse_connection_string(
        f"Endpoint={HOST};AuthType=azure.app;ClientId=c;TenantId=t;ClientSecret={APP_SECRET}"
    )
    assert parsed.client_secret is not None
    assert parsed.client_secret.reveal() == APP_SECRET
    assert APP_SECRET not in f"{parsed} {parsed!r} {parsed.client_secret}"


def test_credential_given_makes_access_key_optional() -> None:
    text = f"Endpoint={HOST};Version=1.0"
    assert parse_connection_string(text, credential_given=True) == settings(version="1.0")
    with_key = parse_connection_string(f"{text};AccessKey={KEY}", credential_given=True)
    assert with_key == settings(access_key=KEY, version="1.0")


def test_credential_given_checks_everything_else() -> None:
    with pytest.raises(ConnectionStringError, match=r"AuthType=azure\.app needs TenantId"):
        parse_connection_string(
            f"Endpoint={HOST};AuthType=azure.app;ClientId=c", credential_given=True
        )
