"""How several endpoints are configured: :class:`Endpoint` in code, ``"<name>[:<type>]"`` keys of
connection strings, and the environment variables ``Azure__SignalR__ConnectionString__<name>[__<type>]``.

Everything is checked once, before anything starts; each error names the key or variable to fix.
Where the C# SDK is silent or lenient we are strict: an unknown type suffix is an error (C# makes it
part of the name), and so are duplicate names and duplicate endpoint URLs (C# warns and keeps one).

A name is 1 to 64 ASCII letters, digits, ``-``, ``_`` and ``.``, starting with a letter or a digit: it
is printed in logs, ``health()`` and ``doctor``'s checklist, where a newline or an escape sequence
could forge a line. Names are told apart without regard to case, as .NET configuration keys are
(``Azure:SignalR:ConnectionString:east`` and ``…:EAST`` are one key there, the last one winning):
two names that differ only by case are refused, as other duplicates are.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .._connection_string import ConnectionSettings, parse_connection_string
from .._credentials import AnyCredential
from .._endpoint import ServiceEndpoint
from .._errors import ConfigurationError, ConnectionStringError, printable, shown
from .._secrets import Secret

__all__ = [
    "ENVIRONMENT_PREFIX",
    "Endpoint",
    "EndpointConfig",
    "EndpointType",
    "IdentityKey",
    "check_endpoint_name",
    "check_endpoint_set",
    "endpoint_key_of_variable",
    "endpoints_from_environment",
    "parse_endpoint_key",
    "resolve_endpoints",
    "settings_identity",
]

EndpointType = Literal["primary", "secondary"]
"""Primaries take negotiations; secondaries only while no primary is usable. Both get messages."""

_TYPES: tuple[EndpointType, ...] = ("primary", "secondary")

ENVIRONMENT_PREFIX = "Azure__SignalR__ConnectionString__"
"""``Azure__SignalR__ConnectionString__<name>[__<type>]``: the .NET configuration keys as
environment variables, one per endpoint."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_NAME_RULE = "1 to 64 letters, digits, '-', '_' or '.', starting with a letter or a digit"

IdentityKey = tuple[object, ...]
"""What makes two endpoints' identities the same: they then share one credential and Entra token."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One SignalR resource among several.

    ``url`` is the resource's endpoint (``https://<name>.service.signalr.net``); ``name`` says which
    in logs, ``health()`` and routers; ``type`` is ``"primary"`` or ``"secondary"``. ``credential``
    (an azure-identity credential) overrides the one given to :class:`SignalRAuth` for this
    endpoint; ``access_key`` signs with the resource's own key instead (local development).
    ``client_endpoint`` and ``server_endpoint`` default to ``url``.
    """

    url: str
    name: str = ""
    type: EndpointType = "primary"
    credential: AnyCredential | None = field(default=None, repr=False)
    access_key: str | None = field(default=None, repr=False)
    client_endpoint: str | None = None
    server_endpoint: str | None = None
    settings: ConnectionSettings | None = field(default=None, repr=False, compare=False)
    """Set by :meth:`from_connection_string`: what the connection string says."""

    @classmethod
    def from_connection_string(
        cls, key: str, connection_string: str, *, credential_given: bool = False
    ) -> Endpoint:
        """The endpoint a ``"<name>[:<primary|secondary>]"`` key and its connection string name."""
        name, kind = parse_endpoint_key(key, where=f"endpoint key {shown(key)}")
        try:
            settings = parse_connection_string(connection_string, credential_given=credential_given)
        except ConnectionStringError as exc:
            msg = f"The connection string of endpoint {name!r}: {exc}"
            raise ConnectionStringError(msg) from None
        return cls(
            url=settings.endpoint.endpoint,
            name=name,
            type=kind,
            access_key=settings.access_key.reveal()
            if settings.auth_type is None and settings.access_key and not credential_given
            else None,
            client_endpoint=settings.endpoint.client_endpoint,
            server_endpoint=settings.endpoint.server_endpoint,
            settings=settings,
        )


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """An :class:`Endpoint` checked and resolved: its addresses and how it authenticates.

    Exactly one of ``access_key`` (the resource's key signs) and ``identity`` (an Entra identity,
    shared with every endpoint of the same ``identity``) is set.
    """

    name: str
    type: EndpointType
    service: ServiceEndpoint
    access_key: Secret | None
    identity: IdentityKey | None
    credential: AnyCredential | None = field(repr=False, compare=False)
    settings: ConnectionSettings | None = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        """How messages name it."""
        return repr(self.name) if self.name else "(unnamed)"


def parse_endpoint_key(key: object, *, where: str) -> tuple[str, EndpointType]:
    """``"east"`` → ``("east", "primary")``; ``"backup:secondary"`` → ``("backup", "secondary")``."""
    if not isinstance(key, str):
        msg = f"Invalid {where}: endpoint names are strings, not {type(key).__name__}."
        raise ConfigurationError(msg)
    name, _, kind = key.strip().partition(":")
    name = name.strip()
    if not name:
        msg = f"Invalid {where}: give the endpoint a name, as in 'east' or 'backup:secondary'."
        raise ConfigurationError(msg)
    check_endpoint_name(name, where=where)
    if not kind:
        return name, "primary"
    kind = kind.strip().lower()
    if kind not in _TYPES:
        msg = (
            f"Invalid {where}: unknown endpoint type {shown(kind, 30)}; write '<name>' or "
            "'<name>:primary' or '<name>:secondary'."
        )
        raise ConfigurationError(msg)
    return name, "primary" if kind == "primary" else "secondary"


def check_endpoint_name(name: str, *, where: str) -> None:
    """:class:`ConfigurationError` unless ``name`` follows the rule in this module's docstring."""
    if not _NAME.fullmatch(name):
        msg = f"Invalid {where}: the endpoint name {shown(name, 70)} must hold {_NAME_RULE}."
        raise ConfigurationError(msg)


def endpoint_key_of_variable(variable: str) -> str:
    """``"<name>[:<type>]"`` of an ``Azure__SignalR__ConnectionString__<name>[__<type>]`` variable,
    checked; :class:`ConfigurationError` naming the variable otherwise."""
    parts = variable[len(ENVIRONMENT_PREFIX) :].split("__")
    where = f"environment variable {printable(variable)}"
    if len(parts) > 2 or not all(parts):
        msg = (
            f"Invalid {where}: write {ENVIRONMENT_PREFIX}<name> or "
            f"{ENVIRONMENT_PREFIX}<name>__<primary|secondary>."
        )
        raise ConfigurationError(msg)
    check_endpoint_name(parts[0], where=where)  # before a ':' in it would read as a type
    key = parts[0] if len(parts) == 1 else f"{parts[0]}:{parts[1]}"
    parse_endpoint_key(key, where=where)
    return key


def endpoints_from_environment(environ: Mapping[str, str]) -> list[Endpoint]:
    """The endpoints of ``Azure__SignalR__ConnectionString__<name>[__<type>]`` variables, sorted
    by name (the prefix is matched case-insensitively, as Windows does)."""
    found: list[Endpoint] = []
    prefix = ENVIRONMENT_PREFIX.lower()
    for variable in sorted(environ):
        if not variable.lower().startswith(prefix):
            continue
        key = endpoint_key_of_variable(variable)
        try:
            found.append(Endpoint.from_connection_string(key, environ[variable]))
        except ConfigurationError as exc:
            msg = f"environment variable {printable(variable)}: {exc}"
            raise type(exc)(msg) from None
    return found


def resolve_endpoints(
    endpoints: Sequence[Endpoint],
    *,
    credential: AnyCredential | None,
    service_mode: bool,
) -> list[EndpointConfig]:
    """Check ``endpoints`` as a set and resolve each; ``credential`` serves those without their own."""
    if isinstance(endpoints, str | bytes) or not isinstance(endpoints, Sequence):
        msg = "endpoints must be a list of Endpoint(...)."
        raise ConfigurationError(msg)
    resolved = [
        resolve_endpoint(endpoint, credential=credential, service_mode=service_mode)
        for endpoint in endpoints
    ]
    check_endpoint_set(resolved)
    return resolved


def resolve_endpoint(
    endpoint: Endpoint, *, credential: AnyCredential | None, service_mode: bool
) -> EndpointConfig:
    if not isinstance(endpoint, Endpoint):
        msg = f"endpoints must hold Endpoint(...) objects, not {type(endpoint).__name__}."
        raise ConfigurationError(msg)
    if not isinstance(endpoint.name, str):
        msg = f"Endpoint names are strings, not {type(endpoint.name).__name__}."
        raise ConfigurationError(msg)
    if endpoint.name:  # "" is the one unnamed endpoint (the single-resource forms)
        check_endpoint_name(endpoint.name, where=f"Endpoint(name={shown(endpoint.name, 70)})")
    label = repr(endpoint.name) if endpoint.name else "(unnamed)"
    if endpoint.type not in _TYPES:
        msg = (
            f"Endpoint {label}: unknown type {shown(endpoint.type, 30)}; use 'primary' or "
            "'secondary'."
        )
        raise ConfigurationError(msg)
    try:
        service = ServiceEndpoint.create(
            endpoint.url,
            client_endpoint=endpoint.client_endpoint,
            server_endpoint=endpoint.server_endpoint,
        )
    except ConfigurationError as exc:
        msg = f"Endpoint {label}: {exc}"
        raise ConfigurationError(msg) from None
    own = endpoint.credential
    if own is not None and not callable(getattr(own, "get_token", None)):
        msg = (
            f"Endpoint {label}: credential must be an azure-identity credential, not "
            f"{type(own).__name__}."
        )
        raise ConfigurationError(msg)
    if endpoint.access_key is not None:
        if own is not None:
            msg = f"Endpoint {label}: give it credential= or access_key=, not both."
            raise ConfigurationError(msg)
        if not isinstance(endpoint.access_key, str) or not endpoint.access_key:
            msg = f"Endpoint {label}: access_key must be a non-empty string."
            raise ConfigurationError(msg)
        if service_mode:
            msg = (
                f"Endpoint {label} signs with an access key, but mode='service' asks SignalR "
                "Service for client tokens with a Microsoft Entra identity: give it a credential "
                "(or AuthType in its connection string), or use mode='auto' or 'key'."
            )
            raise ConfigurationError(msg)
        return EndpointConfig(
            name=endpoint.name,
            type=endpoint.type,
            service=service,
            access_key=Secret(endpoint.access_key),
            identity=None,
            credential=None,
            settings=None,
        )
    settings = endpoint.settings
    chosen = (
        own
        if own is not None
        else (credential if settings is None or settings.auth_type is None else None)
    )
    if chosen is None and (settings is None or settings.auth_type is None):
        msg = (
            f"Endpoint {label} has no way to authenticate: pass credential= to SignalRAuth (or "
            "to the Endpoint), or give its connection string an AuthType."
        )
        raise ConfigurationError(msg)
    identity: IdentityKey = (
        ("object", id(chosen)) if chosen is not None else settings_identity(settings)
    )
    return EndpointConfig(
        name=endpoint.name,
        type=endpoint.type,
        service=service,
        access_key=None,
        identity=identity,
        credential=chosen,
        settings=settings if chosen is None else None,
    )


def settings_identity(settings: ConnectionSettings | None) -> IdentityKey:
    """The identity a connection string names. Compared, never shown: the client secret enters
    only as a digest."""
    assert settings is not None
    secret = settings.client_secret
    digest = hashlib.sha256(secret.reveal().encode()).hexdigest() if secret else None
    return (
        "settings",
        settings.auth_type,
        settings.client_id,
        settings.tenant_id,
        settings.client_cert_path,
        digest,
    )


def check_endpoint_set(endpoints: Sequence[EndpointConfig]) -> None:
    """The rules for the set: some endpoint, a primary among them, names and URLs unique."""
    if not endpoints:
        msg = (
            "No SignalR endpoint is configured: pass endpoints=[Endpoint(...)], connection "
            "strings, or set Azure__SignalR__ConnectionString__<name>."
        )
        raise ConfigurationError(msg)
    if not any(endpoint.type == "primary" for endpoint in endpoints):
        listed = ", ".join(endpoint.label for endpoint in endpoints)
        msg = (
            f"No primary endpoint among {listed}: negotiations go to primaries, and to "
            "secondaries only while no primary is usable. Make one of them primary."
        )
        raise ConfigurationError(msg)
    names: dict[str, EndpointConfig] = {}
    urls: dict[str, EndpointConfig] = {}
    for endpoint in endpoints:
        twin = names.get(endpoint.name.lower())
        if twin is not None:
            named = (
                endpoint.label
                if twin.name == endpoint.name
                else f"{twin.label} and {endpoint.label} (names differ by case only, which .NET "
                "configuration keys do not tell apart)"
            )
            msg = (
                f"Two endpoints are named {named}: give each endpoint its own name "
                "(health() and routers tell them apart by it)."
            )
            raise ConfigurationError(msg)
        names[endpoint.name.lower()] = endpoint
        other = urls.get(endpoint.service.endpoint)
        if other is not None:
            msg = (
                f"Endpoints {other.label} and {endpoint.label} are the same resource "
                f"({endpoint.service.endpoint}): remove one of them."
            )
            raise ConfigurationError(msg)
        urls[endpoint.service.endpoint] = endpoint


def describe(endpoint: EndpointConfig) -> dict[str, Any]:
    """The parts of an endpoint's configuration that ``health()`` shows (no secrets)."""
    return {
        "name": endpoint.name,
        "type": endpoint.type,
        "endpoint": endpoint.service.endpoint,
        "authentication": "access_key" if endpoint.access_key is not None else "entra",
    }
