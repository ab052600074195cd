"""An emulator for examples and local runs: served in a thread, with the environment that sends the
app's managed identity to it."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from ._authority import IdentityAuthority
from ._config import EmulatorConfig, load_config, parse_config
from ._emulator import Emulator, resource_id_named
from ._server import serve_in_thread

__all__ = [
    "LocalEmulator",
    "LocalEmulators",
    "local_emulator",
    "local_emulators",
    "parse_resource_names",
]

_ENDPOINT_TYPES = ("primary", "secondary")

# azure-identity picks Service Fabric over App Service when this is set as well.
_OVERRIDING = ("IDENTITY_SERVER_THUMBPRINT",)


@dataclass(frozen=True, slots=True)
class LocalEmulator:
    """A running emulator: its base ``url``, a managed-identity ``connection_string`` for it, and
    the :class:`Emulator` itself (roles, connections, request log)."""

    url: str
    connection_string: str
    emulator: Emulator

    @property
    def environment(self) -> dict[str, str]:
        """What an app in another process needs: the identity endpoint and the connection string."""
        return {
            **self.emulator.app_service_env(self.url),
            "AZURE_SIGNALR_CONNECTION_STRING": self.connection_string,
        }


@contextmanager
def local_emulator(
    *,
    config: EmulatorConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
    allow_remote: bool = False,
    service_mode: str | None = None,
) -> Iterator[LocalEmulator]:
    """Run an emulator in a thread for the block, with ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``
    set in ``os.environ`` (and put back afterwards), so that azure-identity's managed identity in
    this process gets its tokens from it.

    ``config`` is an :class:`EmulatorConfig`, a parsed configuration, or the path of a JSON file
    (the format is described in ``signalr_asgi_auth.emulator._config``). ``service_mode``
    (``"default"`` or ``"serverless"``) overrides the configuration's. Without a configuration, the
    resource is in Serverless mode and the system-assigned identity holds SignalR App Server and
    SignalR REST API Owner::

        with local_emulator() as local:
            auth = SignalRAuth.from_connection_string(local.connection_string)

    It listens on loopback only: another ``host`` raises :class:`ValueError` unless
    ``allow_remote`` is true, since the emulator hands out tokens and keys to anyone who asks.
    """
    configured = _configured(config)
    if service_mode is not None:
        configured = dataclasses.replace(configured, service_mode=service_mode)
    emulator = configured.build()
    with serve_in_thread(emulator.app, host=host, port=port, allow_remote=allow_remote) as url:
        local = LocalEmulator(
            url=url,
            connection_string=emulator.connection_string(emulator.public_url or url),
            emulator=emulator,
        )
        with _environment(emulator.app_service_env(url), unset=_OVERRIDING):
            yield local


@dataclass(frozen=True, slots=True)
class LocalEmulators:
    """Several running resources of one tenant, by name (in the order given), and that tenant."""

    resources: dict[str, LocalEmulator]
    types: dict[str, str]
    authority: IdentityAuthority

    def __getitem__(self, name: str) -> LocalEmulator:
        return self.resources[name]

    @property
    def connection_strings(self) -> dict[str, str]:
        """``{"<name>[:secondary]": connection string}``, as
        ``SignalRAuth.from_connection_strings`` takes them (primaries keep the bare name)."""
        return {
            name
            if self.types[name] == "primary"
            else f"{name}:{self.types[name]}": local.connection_string
            for name, local in self.resources.items()
        }

    @property
    def environment(self) -> dict[str, str]:
        """What an app in another process needs: the shared identity endpoint and one
        ``Azure__SignalR__ConnectionString__<name>[__secondary]`` variable per resource."""
        first = next(iter(self.resources.values()))
        variables = first.emulator.app_service_env(first.url)
        for name, local in self.resources.items():
            suffix = "" if self.types[name] == "primary" else f"__{self.types[name]}"
            variables[f"Azure__SignalR__ConnectionString__{name}{suffix}"] = local.connection_string
        return variables


@contextmanager
def local_emulators(
    *names: str,
    config: EmulatorConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    host: str = "127.0.0.1",
    allow_remote: bool = False,
    service_mode: str | None = None,
) -> Iterator[LocalEmulators]:
    """Run several SignalR resources of one tenant, each in its own thread on its own port, with
    the managed-identity environment of :func:`local_emulator` (it points at the first; every
    resource trusts the tokens it issues)::

        with local_emulators("east", "west", "backup:secondary") as region:
            auth = SignalRAuth.from_connection_strings(region.connection_strings)
            region["east"].emulator.inject("signalr.health", status=503)   # east goes down

    A name may end in ``:primary`` or ``:secondary`` (the endpoint type its connection-string key
    carries). Each resource is ``config`` built again with the resource id
    ``resource_id_named(name)``, so its roles are its own; change one resource's roles or faults
    through ``region[name].emulator``. Two names by default: ``"east"`` and ``"west"``.
    """
    parsed = parse_resource_names(names or ("east", "west"))
    configured = _configured(config)
    if service_mode is not None:
        configured = dataclasses.replace(configured, service_mode=service_mode)
    if configured.public_url is not None and len(parsed) > 1:
        msg = "public_url names one resource's address; several resources each have their own."
        raise ValueError(msg)
    authority = IdentityAuthority()
    resources: dict[str, LocalEmulator] = {}
    with ExitStack() as stack:
        for name in parsed:
            emulator = configured.build(authority=authority, resource_id=resource_id_named(name))
            url = stack.enter_context(
                serve_in_thread(emulator.app, host=host, port=0, allow_remote=allow_remote)
            )
            resources[name] = LocalEmulator(
                url=url, connection_string=emulator.connection_string(url), emulator=emulator
            )
        first = next(iter(resources.values()))
        stack.enter_context(
            _environment(first.emulator.app_service_env(first.url), unset=_OVERRIDING)
        )
        yield LocalEmulators(resources=resources, types=parsed, authority=authority)


def parse_resource_names(names: Iterable[str]) -> dict[str, str]:
    """``{name: "primary" | "secondary"}`` from ``"<name>[:<type>]"`` entries, checked."""
    parsed: dict[str, str] = {}
    for entry in names:
        name, _, kind = entry.partition(":")
        kind = kind.strip().lower() or "primary"
        name = name.strip()
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            msg = f"A resource name is letters, digits, '-' and '_', got {entry!r}."
            raise ValueError(msg)
        if kind not in _ENDPOINT_TYPES:
            msg = f"An endpoint type is 'primary' or 'secondary', got {entry!r}."
            raise ValueError(msg)
        if name in parsed:
            msg = f"The resource name {name!r} is given twice."
            raise ValueError(msg)
        parsed[name] = kind
    if "primary" not in parsed.values():
        msg = "At least one resource must be a primary."
        raise ValueError(msg)
    return parsed


def _configured(
    config: EmulatorConfig | Mapping[str, Any] | str | os.PathLike[str] | None,
) -> EmulatorConfig:
    if config is None:
        return EmulatorConfig()
    if isinstance(config, EmulatorConfig):
        return config
    if isinstance(config, Mapping):
        return parse_config(dict(config))
    return load_config(config)


@contextmanager
def _environment(values: Mapping[str, str], *, unset: tuple[str, ...]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in (*values, *unset)}
    try:
        for name in unset:
            os.environ.pop(name, None)
        os.environ.update(values)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
