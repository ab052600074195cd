"""Read an Azure SignalR Service connection string into :class:`ConnectionSettings`.

    Endpoint=https://<name>.service.signalr.net;AuthType=azure.msi;ClientId=<guid>;Version=1.0;

The grammar is the C# server SDK's (``ConnectionStringParser``), so a string that works there
works here: ``Key=Value`` pairs separated by ``;``, empty entries dropped; each entry split at its
first ``=`` (so base64 keys ending in ``==`` survive), key and value trimmed; entries without ``=``
and unknown keys ignored; keys case-insensitive, a repeated key an error. ``Endpoint`` is required
(an absolute ``http://`` or ``https://`` URL; the local emulator uses ``http://``); ``Port``
(1..65535) replaces the endpoint's port; ``ClientEndpoint`` and ``ServerEndpoint`` default to the
endpoint; ``Version`` must match ``^1\\.\\d+(?:[\\w\\-.]+)?$``. ``AuthType`` (its value
case-insensitive) picks the credential:

=============  ================================================================================
AuthType       credential
=============  ================================================================================
(absent)       the access key: ``AccessKey`` is required
``azure.app``  an app registration: ``ClientId``, ``TenantId``; ``ClientSecret`` or ``ClientCert``
``azure.msi``  a managed identity: user-assigned with ``ClientId``, else system-assigned
``azure``      ``DefaultAzureCredential``; ``ClientId`` names its managed identity, if given
``aad``        legacy: like ``azure.app`` with ``TenantId``, else like ``azure.msi``
=============  ================================================================================

An ``AccessKey`` next to an Entra ``AuthType`` is ignored, as in C#. An empty value counts as
absent for the credential keys (``AccessKey``, ``ClientId``, ``TenantId``, ``ClientSecret``,
``ClientCert``) and is an error for the others.

Where we deviate from C#, on purpose:

1. An unknown or empty ``AuthType`` is an error that lists the valid values. C# silently falls
   back to access-key mode, which turns a typo such as ``azure.mis`` into a puzzling
   "accesskey is required".
2. ``ClientCertPath`` is accepted as another name for ``ClientCert``: Microsoft's documentation
   uses the one, the SDK reads the other. Giving both is an error.
3. No message holds a value from the string, only key names: a missing ``;`` can put a secret
   inside another key's value. (C# repeats the value of ``Version`` and, in v1.25,
   ``ServerEndpoint``.) For the same reason a repeated *unknown* key is ignored rather than named
   (C# rejects it); its value is never read.
4. Settings that C# resolves silently are errors: both ``ClientSecret`` and ``ClientCert`` (C#
   takes the secret); under ``aad``, ``TenantId``, ``ClientSecret`` or ``ClientCert`` without
   ``ClientId``, or a secret or certificate without ``TenantId`` (C# falls back to a managed
   identity); ``TenantId``, ``ClientSecret`` or ``ClientCert`` under ``azure.msi`` or ``azure``
   (C# ignores them; the documentation's own ``azure.app`` example is mislabelled ``azure.msi``).
5. A value holding another key name followed by ``=`` and more text, as in
   ``AccessKey=<key>Version=1.0``, is an error saying that a ``;`` is probably missing: C# would
   use a wrong key or drop the version silently. Base64 padding never trips it, since its ``=``
   ends the value.
6. A URL must not contain whitespace, and its host may hold only letters, digits, ``-``, ``_``
   and ``.``, or be an IPv6 literal: .NET's ``Uri`` rejects such hosts too, ``urlsplit`` does not.
7. ``ClientId`` under ``azure`` is kept (C# ignores it) so that ``DefaultAzureCredential`` can use
   that user-assigned managed identity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ._endpoint import ServiceEndpoint, normalize_url
from ._errors import ConfigurationError, ConnectionStringError
from ._secrets import Secret

__all__ = ["ConnectionSettings", "parse_connection_string"]

_AUTH_TYPES: Final = ("aad", "azure", "azure.app", "azure.msi")
_KEYS: Final = {
    name.lower(): name
    for name in (
        "AccessKey",
        "AuthType",
        "ClientCert",
        "ClientCertPath",
        "ClientEndpoint",
        "ClientId",
        "ClientSecret",
        "Endpoint",
        "Port",
        "ServerEndpoint",
        "TenantId",
        "Version",
    )
}
# Another key name, "=", and something other than base64 padding: a ";" went missing before it.
# ASCII-only case folding: with Unicode folding the Kelvin sign would pass for a "k".
_GLUED_KEY: Final = re.compile(
    "(" + "|".join(sorted(_KEYS.values(), key=len, reverse=True)) + r")=(?!=|$)",
    re.IGNORECASE | re.ASCII,
)
_VERSION: Final = re.compile(r"1\.\d+(?:[\w\-.]+)?")
_PORT: Final = re.compile(r"0*[0-9]{1,5}", re.ASCII)
_HOST_PUNCTUATION: Final = frozenset("-._")
_EXAMPLE_URL: Final = "https://<name>.service.signalr.net"
_SHAPE: Final = f"Key=Value pairs separated by ';', e.g. Endpoint={_EXAMPLE_URL};AuthType=azure.msi"
_ENTRA_HINT: Final = (
    "AuthType=azure.msi (managed identity), azure.app (app registration), "
    "azure (DefaultAzureCredential) or aad"
)


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """What a connection string says: where the resource is and how to authenticate to it.

    ``auth_type`` is lower-case (``"aad"``, ``"azure"``, ``"azure.app"``, ``"azure.msi"``), or
    ``None`` for access-key mode, where ``access_key`` is set and the Entra fields are ``None``.
    Under an Entra ``auth_type``, ``access_key`` is ``None`` and the other fields are as given
    (``client_cert_path`` comes from ``ClientCert`` or ``ClientCertPath``). Secrets are
    :class:`Secret`, so the repr shows none; the connection string itself is not kept.
    """

    endpoint: ServiceEndpoint
    auth_type: str | None
    access_key: Secret | None
    client_id: str | None
    tenant_id: str | None
    client_secret: Secret | None
    client_cert_path: str | None
    version: str | None


def parse_connection_string(text: str, *, credential_given: bool = False) -> ConnectionSettings:
    """Parse and validate ``text``; raise :class:`ConnectionStringError` saying which key to fix.

    ``credential_given`` says that the caller brings its own Entra credential: then a string without
    ``AuthType`` needs no ``AccessKey`` (one that is there is still returned, so that the caller can
    reject the contradiction). Everything else is checked as usual.
    """
    if not isinstance(text, str):  # for untyped callers, e.g. an unset os.environ.get()
        msg = f"A connection string must be a str, not {type(text).__name__}."
        raise TypeError(msg)
    if not text.strip():
        msg = f"The connection string is empty: expected {_SHAPE}."
        raise ConnectionStringError(msg)
    values = _read_pairs(text)
    _reject_glued_keys(values)
    endpoint = _read_endpoint(values)
    version = values.get("Version")
    if version is not None and not _VERSION.fullmatch(version):
        msg = (
            "Invalid value for Version in the connection string: it must be 1.<minor>, "
            "optionally with a suffix, e.g. Version=1.0. Remove Version to use the default."
        )
        raise ConnectionStringError(msg)
    auth_type = _read_auth_type(values)
    cert_key, cert = _read_cert(values)
    client_id = values.get("ClientId") or None
    tenant_id = values.get("TenantId") or None
    secret = values.get("ClientSecret") or None

    if auth_type is None:
        access_key = values.get("AccessKey") or None
        if access_key is None and not credential_given:
            unread = [key for key in ("ClientId", "TenantId", "ClientSecret") if values.get(key)]
            unread += [cert_key] if cert else []
            msg = (
                "AccessKey is required when AuthType is absent: add AccessKey=<key> (from the "
                f"resource's Keys page), or use Microsoft Entra ID with {_ENTRA_HINT}."
            )
            if unread:
                verb = "is" if len(unread) == 1 else "are"
                msg += f" ({', '.join(unread)} {verb} only read together with AuthType.)"
            raise ConnectionStringError(msg)
        return ConnectionSettings(
            endpoint=endpoint,
            auth_type=None,
            access_key=Secret(access_key) if access_key else None,
            client_id=None,
            tenant_id=None,
            client_secret=None,
            client_cert_path=None,
            version=version,
        )

    if secret and cert:
        msg = (
            f"The connection string has both ClientSecret and {cert_key}: the app registration "
            "authenticates with one of them, remove the other."
        )
        raise ConnectionStringError(msg)
    if auth_type == "azure.app":
        _require_app_registration(
            auth_type, client_id=client_id, tenant_id=tenant_id, proof=bool(secret or cert)
        )
    elif auth_type == "aad":
        _check_legacy_aad(
            client_id=client_id,
            tenant_id=tenant_id,
            proof_key=("ClientSecret" if secret else cert_key) if secret or cert else None,
        )
    else:  # azure.msi, azure: a managed identity or DefaultAzureCredential
        unused = [key for key in ("TenantId", "ClientSecret") if values.get(key)]
        unused += [cert_key] if cert else []
        if unused:
            msg = (
                f"AuthType={auth_type} does not use {' or '.join(unused)}: to sign in as an app "
                f"registration use AuthType=azure.app, else remove {' and '.join(unused)}."
            )
            raise ConnectionStringError(msg)
    return ConnectionSettings(
        endpoint=endpoint,
        auth_type=auth_type,
        access_key=None,
        client_id=client_id,
        tenant_id=tenant_id,
        client_secret=Secret(secret) if secret else None,
        client_cert_path=cert,
        version=version,
    )


def _read_pairs(text: str) -> dict[str, str]:
    """The known keys, by their canonical spelling, with trimmed values."""
    values: dict[str, str] = {}
    seen_any = False
    for entry in text.split(";"):
        raw_key, equals, raw_value = entry.partition("=")
        if not equals:
            continue
        seen_any = True
        key = raw_key.strip()
        name = _KEYS.get(key.lower()) if key.isascii() else None
        if name is None:
            continue
        if name in values:
            msg = (
                f"The connection string has {name} more than once (keys are case-insensitive): "
                "keep one."
            )
            raise ConnectionStringError(msg)
        values[name] = raw_value.strip()
    if not seen_any:
        msg = f"The connection string has no Key=Value pair: expected {_SHAPE}."
        raise ConnectionStringError(msg)
    return values


def _reject_glued_keys(values: dict[str, str]) -> None:
    for name, value in values.items():
        found = _GLUED_KEY.search(value)
        if found:
            glued = _KEYS[found.group(1).lower()]
            msg = (
                f"The value of {name} in the connection string contains '{glued}=': a ';' is "
                f"probably missing before {glued}. Separate every Key=Value pair with ';'."
            )
            raise ConnectionStringError(msg)


def _read_endpoint(values: dict[str, str]) -> ServiceEndpoint:
    endpoint = values.get("Endpoint")
    if endpoint is None:
        msg = f"The connection string is missing Endpoint (e.g. Endpoint={_EXAMPLE_URL})."
        raise ConnectionStringError(msg)
    port = _read_port(values.get("Port"))
    _check_url(endpoint, "Endpoint")
    client_endpoint = values.get("ClientEndpoint")
    server_endpoint = values.get("ServerEndpoint")
    for key, value in (("ClientEndpoint", client_endpoint), ("ServerEndpoint", server_endpoint)):
        if value is not None:
            _check_url(value, key)
    try:
        return ServiceEndpoint.create(
            endpoint, port=port, client_endpoint=client_endpoint, server_endpoint=server_endpoint
        )
    except ConfigurationError as exc:  # each URL passed on its own above; kept as a safety net
        raise ConnectionStringError(str(exc)) from None


def _read_port(value: str | None) -> int | None:
    if value is None:
        return None
    # Digits first, then int(): int() accepts "4_43", "+443" and non-ASCII digits, and its own
    # error message would repeat the value.
    number = int(value) if _PORT.fullmatch(value) else 0
    if not 0 < number < 65536:
        msg = (
            "Invalid value for Port in the connection string: it must be an integer between 1 "
            "and 65535. Remove Port to use the endpoint's port."
        )
        raise ConnectionStringError(msg)
    return number


def _check_url(value: str, key: str) -> None:
    """Reject an unusable URL with a message that names ``key`` and never shows the value."""
    fix = f"Fix {key} in the connection string, e.g. {key}={_EXAMPLE_URL}."
    if not value:
        msg = f"The connection string has an empty {key}. {fix}"
        raise ConnectionStringError(msg)
    try:
        normalize_url(value, key=key)
    except ConfigurationError as exc:
        msg = f"{exc} {fix}"
        raise ConnectionStringError(msg) from None


def _read_auth_type(values: dict[str, str]) -> str | None:
    value = values.get("AuthType")
    if value is None:
        return None
    normalised = value.lower() if value.isascii() else value
    if normalised not in _AUTH_TYPES:
        problem = "is empty" if not value else "has an unsupported value"
        msg = (
            f"AuthType in the connection string {problem}: use one of {', '.join(_AUTH_TYPES)} "
            "(case-insensitive), or remove AuthType and give AccessKey for access-key mode."
        )
        raise ConnectionStringError(msg)
    return normalised


def _read_cert(values: dict[str, str]) -> tuple[str, str | None]:
    """The name the certificate path was given under, for messages, and the path."""
    if "ClientCert" in values and "ClientCertPath" in values:
        msg = (
            "The connection string has both ClientCert and ClientCertPath: they are two names for "
            "the certificate file, keep one."
        )
        raise ConnectionStringError(msg)
    key = "ClientCertPath" if "ClientCertPath" in values else "ClientCert"
    return key, values.get(key) or None


def _require_app_registration(
    auth_type: str, *, client_id: str | None, tenant_id: str | None, proof: bool
) -> None:
    if client_id is None:
        msg = (
            f"AuthType={auth_type} needs ClientId: add ClientId=<application (client) id> of the "
            "app registration."
        )
        raise ConnectionStringError(msg)
    if tenant_id is None:
        msg = (
            f"AuthType={auth_type} needs TenantId: add TenantId=<directory (tenant) id> of the "
            "app registration."
        )
        raise ConnectionStringError(msg)
    if not proof:
        msg = (
            f"AuthType={auth_type} needs ClientSecret or ClientCert: add ClientSecret=<secret> or "
            "ClientCert=<path to a PEM or PKCS #12 certificate file>."
        )
        raise ConnectionStringError(msg)


def _check_legacy_aad(
    *, client_id: str | None, tenant_id: str | None, proof_key: str | None
) -> None:
    """``aad``: an app registration with TenantId, else a user- or system-assigned identity."""
    if client_id is None and (tenant_id or proof_key):
        given = proof_key or "TenantId"
        msg = (
            f"AuthType=aad with {given} needs ClientId: add ClientId=<application (client) id> for "
            f"an app registration, or remove {given} to use the system-assigned managed identity."
        )
        raise ConnectionStringError(msg)
    if tenant_id is not None:
        if proof_key is None:
            msg = (
                "AuthType=aad with TenantId signs in as an app registration and needs ClientSecret "
                "or ClientCert: add one, or remove TenantId to use the user-assigned managed "
                "identity that ClientId names."
            )
            raise ConnectionStringError(msg)
    elif proof_key is not None:
        msg = (
            f"AuthType=aad with {proof_key} signs in as an app registration and needs TenantId: "
            f"add TenantId=<directory (tenant) id>, or remove {proof_key} to use the "
            "user-assigned managed identity that ClientId names."
        )
        raise ConnectionStringError(msg)
