"""An emulator for examples and local runs: served in a thread, with the environment that sends the
app's managed identity to it."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ._config import EmulatorConfig, load_config, parse_config
from ._emulator import Emulator
from ._server import serve_in_thread

__all__ = ["LocalEmulator", "local_emulator"]

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
