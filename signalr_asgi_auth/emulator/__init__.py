"""A local emulator of Azure for tests and development.

It holds a managed-identity endpoint and token service, role assignments, and one Azure SignalR
Service resource: its data plane and its client endpoint (negotiate, WebSocket, JSON hub protocol),
served on 127.0.0.1.

The real azure-identity and real SignalR clients talk to it over HTTP::

    emu = Emulator()
    app_server = emu.add_principal("app-server")
    emu.assign(app_server, "SignalR App Server")
    with serve_in_thread(emu.app) as url:
        os.environ.update(emu.app_service_env(url))
        ...

Several resources of one tenant (for several endpoints and failover) share an
:class:`IdentityAuthority`: ``Emulator(resource_id=resource_id_named("west"), authority=east.authority)``,
or :func:`local_emulators` for a running set.

For examples and local runs, :func:`local_emulator` does all of that (the system-assigned identity
holds SignalR App Server and SignalR REST API Owner), and ``python -m signalr_asgi_auth emulator``
runs one in the foreground.

In Default mode (``Emulator(service_mode="default")``) app servers connect at ``/server/`` with
the service protocol and carry the clients, as on a new Azure resource; in Serverless mode (the
emulator's default) clients need no app server.

Routes, by the names the request log and fault injection use: ``identity.app_service``,
``identity.imds``, ``identity.openid``, ``identity.jwks``, ``signalr.access_key``,
``signalr.health``, ``client.negotiate``, ``client.preflight``, ``client.websocket``,
``server.connect``; the
emulator's own calls to the app's upstream are logged as ``upstream.call`` (see :attr:`Emulator.upstream`).
"""

from ._access_keys import IssuedKey
from ._authority import IdentityAuthority
from ._clock import EmulatorClock
from ._config import (
    EmulatorConfig,
    EmulatorConfigError,
    PrincipalConfig,
    RoleGrant,
    load_config,
    parse_config,
)
from ._connections import ClientConnection, ConnectionRegistry
from ._directory import Assignment, Principal
from ._emulator import DEFAULT_RESOURCE_ID, DEFAULT_TENANT_ID, Emulator, resource_id_named
from ._entra import SIGNALR_AUDIENCES, EntraTokenError
from ._faults import Fault
from ._local import LocalEmulator, LocalEmulators, local_emulator, local_emulators
from ._log import LogEntry, RequestLog
from ._server import ServedApp, serve, serve_in_thread
from ._servers import ServerConnection
from ._upstream import UPSTREAM_ROUTE, ManagedIdentityAuth, UpstreamSettings, UpstreamTemplate

__all__ = [
    "DEFAULT_RESOURCE_ID",
    "DEFAULT_TENANT_ID",
    "SIGNALR_AUDIENCES",
    "UPSTREAM_ROUTE",
    "Assignment",
    "ClientConnection",
    "ConnectionRegistry",
    "Emulator",
    "EmulatorClock",
    "EmulatorConfig",
    "EmulatorConfigError",
    "EntraTokenError",
    "Fault",
    "IdentityAuthority",
    "IssuedKey",
    "LocalEmulator",
    "LocalEmulators",
    "LogEntry",
    "ManagedIdentityAuth",
    "Principal",
    "PrincipalConfig",
    "RequestLog",
    "RoleGrant",
    "ServedApp",
    "ServerConnection",
    "UpstreamSettings",
    "UpstreamTemplate",
    "load_config",
    "local_emulator",
    "local_emulators",
    "parse_config",
    "resource_id_named",
    "serve",
    "serve_in_thread",
]
