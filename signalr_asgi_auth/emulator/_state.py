"""What the route handlers share: the emulator's parts, so handlers need not know the facade."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ._access_keys import AccessKeyStore
from ._clock import EmulatorClock
from ._connections import ConnectionRegistry, NegotiatedConnections
from ._directory import Directory, Principal
from ._entra import EntraAuthority
from ._faults import FaultTable
from ._log import RequestLog
from ._servers import ServerConnections, ServiceModeSetting
from ._upstream import UpstreamTable

__all__ = ["EmulatorState", "PublicAddress"]


class PublicAddress:
    """Where clients reach the emulator, which decides the audience client tokens must carry.

    ``configured`` (``Emulator(public_url=...)``) wins; otherwise every URL the app is being served
    at (the serve helpers report them), so that one emulator served twice accepts both.
    """

    def __init__(self, configured: str | None) -> None:
        self.configured = configured
        self._lock = threading.Lock()
        self._served: list[str] = []

    def serving_started(self, url: str) -> None:
        with self._lock:
            self._served.append(url)

    def serving_stopped(self, url: str) -> None:
        with self._lock:
            if url in self._served:
                self._served.remove(url)

    def urls(self) -> list[str]:
        """The base URLs clients may use, best first; empty when neither configured nor served."""
        if self.configured is not None:
            return [self.configured]
        with self._lock:
            return list(self._served)

    def __repr__(self) -> str:
        return f"PublicAddress({self.urls()!r})"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class EmulatorState:
    """The emulator's parts; :class:`~signalr_asgi_auth.emulator.Emulator` is their public face."""

    clock: EmulatorClock
    directory: Directory
    entra: EntraAuthority
    access_keys: AccessKeyStore
    faults: FaultTable
    log: RequestLog
    system_identity: Principal
    identity_header: str
    resource_keys: tuple[str, str]
    address: PublicAddress
    connections: ConnectionRegistry
    negotiated: NegotiatedConnections
    ping_interval: float
    upstream: UpstreamTable
    service_mode: ServiceModeSetting
    servers: ServerConnections
    server_ping_interval: float
    server_timeout: float
