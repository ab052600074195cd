"""The emulated tenant: what several emulated SignalR resources share.

One token-signing key, one managed-identity endpoint secret, one system-assigned identity, one
directory of principals and role assignments, and one clock. Each resource keeps its own resource
id (the scope its role checks use), access keys, connections, service mode and faults.
"""

from __future__ import annotations

import secrets
import threading
import uuid

from ._clock import EmulatorClock
from ._directory import Principal, PrincipalStore
from ._entra import EntraAuthority
from ._roles import ResourceId

__all__ = ["DEFAULT_TENANT_ID", "IdentityAuthority"]

DEFAULT_TENANT_ID = "00000000-0000-0000-0000-0000000000e1"


class IdentityAuthority:
    """A tenant that several :class:`~signalr_asgi_auth.emulator.Emulator` resources trust.

    Pass ``Emulator(authority=first.authority)`` (or let :func:`local_emulators` do it): a token
    from any resource's identity endpoint is then valid at every resource, the same principals
    exist everywhere, and each resource grants what the assignments covering *its* resource id
    grant. :attr:`clock` is shared too, so that moving it moves every resource's time.
    """

    def __init__(
        self,
        *,
        tenant_id: str = DEFAULT_TENANT_ID,
        token_lifetime: float = 24 * 3600,
        clock: EmulatorClock | None = None,
    ) -> None:
        if not tenant_id.strip():
            msg = "tenant_id must not be empty."
            raise ValueError(msg)
        if token_lifetime <= 0:
            msg = "token_lifetime must be positive (seconds)."
            raise ValueError(msg)
        self.tenant_id = tenant_id
        self.clock = EmulatorClock() if clock is None else clock
        self.entra = EntraAuthority(
            tenant_id=tenant_id, clock=self.clock, token_lifetime=token_lifetime
        )
        self.principals = PrincipalStore()
        self.identity_header = secrets.token_urlsafe(24)
        self.system_identity = Principal(
            name="system-assigned", client_id=str(uuid.uuid4()), object_id=str(uuid.uuid4())
        )
        self.principals.principals.append(self.system_identity)
        self._lock = threading.Lock()
        self._resources: list[ResourceId] = []

    def register(self, resource: ResourceId) -> None:
        """Record a resource of this tenant; two resources with one id would share their RBAC
        scope silently, so that is refused."""
        with self._lock:
            if any(str(known).lower() == str(resource).lower() for known in self._resources):
                msg = (
                    f"This authority already has a resource {str(resource)!r}: give each emulated "
                    "resource its own resource_id (see resource_id_named())."
                )
                raise ValueError(msg)
            self._resources.append(resource)

    @property
    def resources(self) -> list[ResourceId]:
        """The resource ids of the emulators sharing this tenant, in creation order."""
        with self._lock:
            return list(self._resources)

    def __repr__(self) -> str:
        return (
            f"IdentityAuthority(tenant_id={self.tenant_id!r}, "
            f"resources={[str(r) for r in self.resources]!r})"
        )
