"""The emulated tenant's managed identities and their role assignments, seen from one SignalR
resource (several resources of one tenant see the same principals and assignments)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

from ._roles import BuiltInRole, ResourceId, role_named, scope_covers

__all__ = ["Assignment", "Directory", "Principal", "PrincipalStore"]


@dataclass(frozen=True, slots=True)
class Principal:
    """A managed identity: ``client_id`` selects it at the identity endpoint and becomes the token's
    ``appid``; ``object_id`` becomes ``oid``, the id that role assignments name."""

    name: str
    client_id: str
    object_id: str


@dataclass(frozen=True, slots=True)
class Assignment:
    """A role given to a principal at a subscription, resource group or resource scope."""

    principal: Principal
    role: BuiltInRole
    scope: ResourceId
    assignment_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class PrincipalStore:
    """A tenant's principals and role assignments, shared by the :class:`Directory` of each of its
    resources.

    Tests change it from their own thread while the server threads read it, hence the lock.
    """

    __slots__ = ("assignments", "lock", "principals")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.principals: list[Principal] = []
        self.assignments: list[Assignment] = []


class Directory:
    """Principals and role assignments, and the RBAC decision for one SignalR resource.

    ``store`` is the tenant's (shared with its other resources); a new one when not given. An
    assignment is the tenant's, but it covers a resource only through its scope, as in Azure.
    """

    def __init__(self, resource_id: ResourceId, store: PrincipalStore | None = None) -> None:
        self.resource_id = resource_id
        self.store = PrincipalStore() if store is None else store
        self._lock = self.store.lock
        self._principals = self.store.principals
        self._assignments = self.store.assignments

    def add_principal(
        self, name: str, *, client_id: str | None = None, object_id: str | None = None
    ) -> Principal:
        principal = Principal(
            name=name,
            client_id=client_id or str(uuid.uuid4()),
            object_id=object_id or str(uuid.uuid4()),
        )
        with self._lock:
            for known in self._principals:
                if _same(known.client_id, principal.client_id):
                    msg = f"A principal with client id {principal.client_id!r} exists already."
                    raise ValueError(msg)
                if _same(known.object_id, principal.object_id):
                    msg = f"A principal with object id {principal.object_id!r} exists already."
                    raise ValueError(msg)
            self._principals.append(principal)
        return principal

    def find_principal(
        self, *, client_id: str | None = None, object_id: str | None = None
    ) -> Principal | None:
        """The principal with this client id or object id (case-insensitive), or None."""
        with self._lock:
            for principal in self._principals:
                if client_id is not None and _same(principal.client_id, client_id):
                    return principal
                if object_id is not None and _same(principal.object_id, object_id):
                    return principal
        return None

    @property
    def principals(self) -> list[Principal]:
        with self._lock:
            return list(self._principals)

    def assign(
        self, principal: Principal, role: BuiltInRole | str, scope: str | ResourceId | None = None
    ) -> Assignment:
        if principal not in self.principals:
            msg = f"Unknown principal {principal.name!r}: create it with add_principal() first."
            raise ValueError(msg)
        if isinstance(role, str):
            role = role_named(role)
        if scope is None:
            scope = self.resource_id
        elif isinstance(scope, str):
            scope = ResourceId.parse(scope)
        assignment = Assignment(principal, role, scope)
        with self._lock:
            self._assignments.append(assignment)
        return assignment

    def unassign(self, assignment: Assignment) -> None:
        with self._lock:
            if assignment not in self._assignments:
                msg = f"No such role assignment: {assignment.role.name!r} at {assignment.scope}."
                raise ValueError(msg)
            self._assignments.remove(assignment)

    @property
    def assignments(self) -> list[Assignment]:
        with self._lock:
            return list(self._assignments)

    def is_allowed(self, principal_oid: str, action: str) -> bool:
        """Whether an assignment of this principal covers the resource with a role granting
        ``action``."""
        return any(
            _same(assignment.principal.object_id, principal_oid)
            and scope_covers(assignment.scope, self.resource_id)
            and assignment.role.grants(action)
            for assignment in self.assignments
        )


def _same(left: str, right: str) -> bool:
    # Azure compares GUIDs without regard to case.
    return left.lower() == right.lower()
