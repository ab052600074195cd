"""A local emulator of Azure for tests and development.

It holds a managed-identity endpoint and token service, role assignments, and the data plane of one
Azure SignalR Service resource, served on 127.0.0.1.

The real azure-identity talks to it over HTTP::

    emu = Emulator()
    app_server = emu.add_principal("app-server")
    emu.assign(app_server, "SignalR App Server")
    with serve_in_thread(emu.app) as url:
        os.environ.update(emu.app_service_env(url))
        ...

Routes, by the names the request log and fault injection use: ``identity.app_service``,
``identity.imds``, ``identity.openid``, ``identity.jwks``, ``signalr.access_key``,
``signalr.health``.
"""

from ._access_keys import IssuedKey
from ._clock import EmulatorClock
from ._directory import Assignment, Principal
from ._emulator import DEFAULT_RESOURCE_ID, DEFAULT_TENANT_ID, Emulator
from ._entra import SIGNALR_AUDIENCES, EntraTokenError
from ._faults import Fault
from ._log import LogEntry, RequestLog
from ._server import serve, serve_in_thread

__all__ = [
    "DEFAULT_RESOURCE_ID",
    "DEFAULT_TENANT_ID",
    "SIGNALR_AUDIENCES",
    "Assignment",
    "Emulator",
    "EmulatorClock",
    "EntraTokenError",
    "Fault",
    "IssuedKey",
    "LogEntry",
    "Principal",
    "RequestLog",
    "serve",
    "serve_in_thread",
]
