"""The emulator's configuration file: its identities, their roles, and the resource.

A JSON object; every key is optional::

    {
      "resource_id": "/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.SignalRService/SignalR/<name>",
      "service_mode": "default",
      "ping_interval": 15,
      "public_url": "http://localhost:8888",
      "system_identity": {"roles": ["SignalR App Server"]},
      "upstream": {
        "templates": [
          {
            "url_template": "http://127.0.0.1:8000/upstream/{event}",
            "hub_pattern": "chat",
            "category_pattern": "*",
            "event_pattern": "*",
            "auth": {"type": "managed_identity", "resource": "api://chat-upstream"}
          }
        ],
        "timeout": 20
      },
      "principals": [
        {
          "name": "worker",
          "client_id": "11111111-1111-1111-1111-111111111111",
          "object_id": "22222222-2222-2222-2222-222222222222",
          "roles": [
            "SignalR REST API Reader",
            {"role": "SignalR App Server", "scope": "/subscriptions/<id>/resourceGroups/<group>"}
          ]
        }
      ]
    }

- ``resource_id``: the emulated SignalR resource (the scope that role assignments must cover).
- ``service_mode``: ``"serverless"`` (the default: clients connect with no app server, their
  invocations go to the upstream) or ``"default"`` (app servers connect at ``/server/`` and carry
  the clients, as on a new Azure resource).
- ``ping_interval``: seconds between the pings sent to each client connection (default 15;
  Serverless mode only: in Default mode the app server pings its clients).
- ``public_url``: the base URL clients use, if not the one the emulator is served at; client tokens'
  audiences must name its host.
- ``system_identity.roles``: the roles of the system-assigned identity (used when an app's connection
  string has no ``ClientId``). Absent: **SignalR App Server** and **SignalR REST API Owner** on the
  resource, enough to negotiate and to send with the REST API. ``[]``: none.
- ``upstream``: where client invocations and connection events are POSTed, as in Azure's upstream
  settings: ``templates`` in order (the first match wins), each with a ``url_template`` (``{hub}``,
  ``{category}``, ``{event}`` are filled in), optional ``hub_pattern``, ``category_pattern`` and
  ``event_pattern`` (``*``, a name, or comma-separated names; ``*`` when absent) and optional
  ``auth``: ``{"type": "none"}`` (the default; ``X-ASRS-Signature`` only) or
  ``{"type": "managed_identity", "resource": "<app id URI or client id>"}`` (a bearer token of the
  system-assigned identity for that audience as well). ``timeout``: seconds per call (default 20).
  ``allow_remote``: URLs off this machine (default false: loopback only).
- ``principals``: user-assigned identities. ``name`` is required; ``client_id`` (what a connection
  string's ``ClientId`` selects) and ``object_id`` (the token's ``oid``) are random unless given.
- A role is a built-in role's name, former name or id, alone (at the resource) or as
  ``{"role": ..., "scope": ...}`` with a subscription, resource group or resource scope.

Unknown keys are errors, so that a misspelt one does not silently do nothing.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._endpoint import normalize_url
from ._authority import IdentityAuthority
from ._emulator import DEFAULT_RESOURCE_ID, Emulator
from ._roles import ResourceId, role_named
from ._servers import SERVICE_MODES
from ._upstream import (
    DEFAULT_UPSTREAM_TIMEOUT,
    ManagedIdentityAuth,
    UpstreamSettings,
    UpstreamTemplate,
)

__all__ = [
    "DEFAULT_SYSTEM_ROLES",
    "EmulatorConfig",
    "EmulatorConfigError",
    "PrincipalConfig",
    "RoleGrant",
    "load_config",
    "parse_config",
]


class EmulatorConfigError(ValueError):
    """The configuration file cannot be used; the message names the file, the key and the fix."""


@dataclass(frozen=True, slots=True)
class RoleGrant:
    """A role to assign, at ``scope`` (None: the resource itself)."""

    role: str
    scope: str | None = None


DEFAULT_SYSTEM_ROLES = (RoleGrant("SignalR App Server"), RoleGrant("SignalR REST API Owner"))
"""What the system-assigned identity holds without a configuration: negotiate and REST messaging."""


@dataclass(frozen=True, slots=True)
class PrincipalConfig:
    """A user-assigned managed identity and its roles."""

    name: str
    client_id: str | None = None
    object_id: str | None = None
    roles: tuple[RoleGrant, ...] = ()


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Everything a configuration file can say; the defaults are the demo's."""

    resource_id: str = DEFAULT_RESOURCE_ID
    service_mode: str = "serverless"
    ping_interval: float = 15.0
    public_url: str | None = None
    system_roles: tuple[RoleGrant, ...] = DEFAULT_SYSTEM_ROLES
    principals: tuple[PrincipalConfig, ...] = ()
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)

    def build(
        self, *, authority: IdentityAuthority | None = None, resource_id: str | None = None
    ) -> Emulator:
        """A new emulator with this resource, these identities, role assignments and upstream.

        With ``authority`` it is one more resource of that tenant (``resource_id`` then names it,
        since two resources cannot share an id): a principal the tenant has already (by name) is
        reused, and the roles are assigned again with this resource as the default scope.
        """
        emulator = Emulator(
            resource_id=resource_id or self.resource_id,
            service_mode=self.service_mode,
            ping_interval=self.ping_interval,
            public_url=self.public_url,
            upstream=self.upstream,
            authority=authority,
        )
        for grant in self.system_roles:
            emulator.assign(emulator.system_identity, grant.role, grant.scope)
        known = {principal.name: principal for principal in emulator.principals}
        for principal in self.principals:
            added = known.get(principal.name) or emulator.add_principal(
                principal.name, client_id=principal.client_id, object_id=principal.object_id
            )
            for grant in principal.roles:
                emulator.assign(added, grant.role, grant.scope)
        return emulator


def load_config(path: str | os.PathLike[str]) -> EmulatorConfig:
    """Read and check a configuration file (JSON)."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as error:
        msg = f"Cannot read the emulator configuration {str(source)!r}: {error.strerror}."
        raise EmulatorConfigError(msg) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        msg = f"{source}: not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}."
        raise EmulatorConfigError(msg) from None
    return parse_config(data, source=str(source))


def parse_config(data: object, *, source: str = "configuration") -> EmulatorConfig:
    """Check a configuration already parsed from JSON."""
    top = _object(data, source, "the configuration", _TOP_KEYS)
    defaults = EmulatorConfig()
    resource_id = _string(top.get("resource_id", defaults.resource_id), source, "resource_id")
    try:
        resource = ResourceId.parse(resource_id)
    except ValueError as error:
        msg = f"{source}: resource_id: {error}"
        raise EmulatorConfigError(msg) from None
    if resource.name is None:
        msg = f"{source}: resource_id must name a SignalR resource, not a {resource.level}."
        raise EmulatorConfigError(msg)
    service_mode = top.get("service_mode", defaults.service_mode)
    if service_mode not in SERVICE_MODES:
        msg = f'{source}: service_mode must be "default" or "serverless", got {service_mode!r}.'
        raise EmulatorConfigError(msg)
    ping_interval = top.get("ping_interval", defaults.ping_interval)
    if not _is_number(ping_interval) or ping_interval <= 0:
        msg = (
            f"{source}: ping_interval must be a positive number of seconds, got {ping_interval!r}."
        )
        raise EmulatorConfigError(msg)
    public_url = top.get("public_url")
    if public_url is not None:
        try:
            public_url = normalize_url(_string(public_url, source, "public_url"), key="public_url")
        except ValueError as error:
            msg = f"{source}: {error}"
            raise EmulatorConfigError(msg) from None
    system_roles = defaults.system_roles
    if "system_identity" in top:
        system = _object(top["system_identity"], source, "system_identity", {"roles"})
        system_roles = _roles(system.get("roles", []), source, "system_identity.roles")
    principals = _principals(top.get("principals", []), source)
    upstream = _upstream(top.get("upstream", {}), source)
    return EmulatorConfig(
        resource_id=resource_id,
        service_mode=service_mode,
        ping_interval=float(ping_interval),
        public_url=public_url,
        system_roles=system_roles,
        principals=principals,
        upstream=upstream,
    )


_TOP_KEYS = {
    "resource_id",
    "service_mode",
    "ping_interval",
    "public_url",
    "system_identity",
    "principals",
    "upstream",
}
_UPSTREAM_KEYS = {"templates", "timeout", "allow_remote"}
_TEMPLATE_KEYS = {"url_template", "hub_pattern", "category_pattern", "event_pattern", "auth"}
_PATTERN_KEYS = ("hub_pattern", "category_pattern", "event_pattern")
_PRINCIPAL_KEYS = {"name", "client_id", "object_id", "roles"}


def _upstream(value: object, source: str) -> UpstreamSettings:
    upstream = _object(value, source, "upstream", _UPSTREAM_KEYS)
    templates = upstream.get("templates", [])
    if not isinstance(templates, list):
        msg = f"{source}: upstream.templates must be a list of objects, got {type(templates).__name__}."
        raise EmulatorConfigError(msg)
    timeout = upstream.get("timeout", DEFAULT_UPSTREAM_TIMEOUT)
    if not _is_number(timeout) or timeout <= 0:
        msg = f"{source}: upstream.timeout must be a positive number of seconds, got {timeout!r}."
        raise EmulatorConfigError(msg)
    allow_remote = upstream.get("allow_remote", False)
    if not isinstance(allow_remote, bool):
        msg = f"{source}: upstream.allow_remote must be true or false, got {allow_remote!r}."
        raise EmulatorConfigError(msg)
    items = [
        _template(item, source, f"upstream.templates[{i}]") for i, item in enumerate(templates)
    ]
    try:
        return UpstreamSettings(items, timeout=float(timeout), allow_remote=allow_remote)
    except ValueError as error:
        msg = f"{source}: upstream: {error}"
        raise EmulatorConfigError(msg) from None


def _template(value: object, source: str, where: str) -> UpstreamTemplate:
    entry = _object(value, source, where, _TEMPLATE_KEYS)
    if "url_template" not in entry:
        msg = f"{source}: {where} needs a url_template."
        raise EmulatorConfigError(msg)
    url_template = _string(entry["url_template"], source, f"{where}.url_template")
    patterns = {
        key: _string(entry[key], source, f"{where}.{key}") for key in _PATTERN_KEYS if key in entry
    }
    auth = _auth(entry.get("auth"), source, f"{where}.auth")
    try:
        return UpstreamTemplate(url_template, auth=auth, **patterns)
    except ValueError as error:
        msg = f"{source}: {where}: {error}"
        raise EmulatorConfigError(msg) from None


def _auth(value: object, source: str, where: str) -> ManagedIdentityAuth | None:
    if value is None:
        return None
    entry = _object(value, source, where, {"type", "resource"})
    kind = _string(entry.get("type", ""), source, f"{where}.type")
    # ARM spells it "ManagedIdentity"; the file's own spelling is "managed_identity".
    normalized = kind.replace("_", "").lower()
    if normalized == "none" and "resource" not in entry:
        return None
    if normalized == "managedidentity" and "resource" in entry:
        return ManagedIdentityAuth(_string(entry["resource"], source, f"{where}.resource"))
    msg = (
        f'{source}: {where} must be {{"type": "none"}} or {{"type": "managed_identity", '
        f'"resource": "<the app\'s client id or Application ID URI>"}}, got {value!r}.'
    )
    raise EmulatorConfigError(msg)


def _principals(value: object, source: str) -> tuple[PrincipalConfig, ...]:
    if not isinstance(value, list):
        msg = f"{source}: principals must be a list of objects, got {type(value).__name__}."
        raise EmulatorConfigError(msg)
    principals: list[PrincipalConfig] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        where = f"principals[{index}]"
        entry = _object(item, source, where, _PRINCIPAL_KEYS)
        if "name" not in entry:
            msg = f"{source}: {where} needs a name."
            raise EmulatorConfigError(msg)
        name = _string(entry["name"], source, f"{where}.name")
        if name in seen:
            msg = f"{source}: {where}: the name {name!r} is used twice."
            raise EmulatorConfigError(msg)
        seen.add(name)
        client_id = entry.get("client_id")
        object_id = entry.get("object_id")
        principals.append(
            PrincipalConfig(
                name=name,
                client_id=None
                if client_id is None
                else _string(client_id, source, f"{where}.client_id"),
                object_id=None
                if object_id is None
                else _string(object_id, source, f"{where}.object_id"),
                roles=_roles(entry.get("roles", []), source, f"{where}.roles"),
            )
        )
    return tuple(principals)


def _roles(value: object, source: str, where: str) -> tuple[RoleGrant, ...]:
    if not isinstance(value, list):
        msg = f'{source}: {where} must be a list of role names or {{"role", "scope"}} objects.'
        raise EmulatorConfigError(msg)
    grants: list[RoleGrant] = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if isinstance(item, str):
            grant = RoleGrant(item)
        else:
            entry = _object(item, source, at, {"role", "scope"})
            if "role" not in entry:
                msg = f"{source}: {at} needs a role."
                raise EmulatorConfigError(msg)
            scope = entry.get("scope")
            grant = RoleGrant(
                _string(entry["role"], source, f"{at}.role"),
                None if scope is None else _string(scope, source, f"{at}.scope"),
            )
        try:
            role_named(grant.role)
            if grant.scope is not None:
                ResourceId.parse(grant.scope)
        except ValueError as error:
            msg = f"{source}: {at}: {error}"
            raise EmulatorConfigError(msg) from None
        grants.append(grant)
    return tuple(grants)


def _object(value: object, source: str, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        msg = f"{source}: {where} must be a JSON object, got {type(value).__name__}."
        raise EmulatorConfigError(msg)
    unknown = sorted(set(value) - allowed)
    if unknown:
        msg = (
            f"{source}: {where} has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"the keys are {', '.join(sorted(allowed))}."
        )
        raise EmulatorConfigError(msg)
    return value


def _string(value: object, source: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        msg = f"{source}: {where} must be a non-empty string, got {value!r}."
        raise EmulatorConfigError(msg)
    return value.strip()


def _is_number(value: object) -> bool:
    """A finite number (json.loads reads ``NaN`` and ``Infinity``), not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
