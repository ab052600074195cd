"""What the route handlers share: the emulator's parts, so handlers need not know the facade."""

from __future__ import annotations

from dataclasses import dataclass

from ._access_keys import AccessKeyStore
from ._clock import EmulatorClock
from ._directory import Directory, Principal
from ._entra import EntraAuthority
from ._faults import FaultTable
from ._log import RequestLog

__all__ = ["EmulatorState"]


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
