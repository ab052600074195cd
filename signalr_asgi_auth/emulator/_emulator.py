"""The :class:`Emulator`: one object that is the tenant, its identity endpoint and the resource."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping
from typing import Any, Literal

from .._endpoint import normalize_url
from ._access_keys import AccessKeyStore, IssuedKey
from ._app import ROUTE_NAMES, SERVER_ROUTE, WEBSOCKET_ROUTE, EmulatorApp, build_app
from ._authority import DEFAULT_TENANT_ID, IdentityAuthority
from ._clock import EmulatorClock
from ._connections import ClientConnection, ConnectionRegistry, NegotiatedConnections
from ._directory import Assignment, Directory, Principal
from ._faults import Fault, FaultTable
from ._log import RequestLog
from ._roles import BuiltInRole, ResourceId
from ._servers import ServerConnection, ServerConnections, ServiceModeSetting
from ._state import EmulatorState, PublicAddress
from ._upstream import UpstreamSettings, UpstreamTable

__all__ = ["DEFAULT_RESOURCE_ID", "DEFAULT_TENANT_ID", "Emulator", "resource_id_named"]

_RESOURCE_PREFIX = (
    "/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg-signalr"
    "/providers/Microsoft.SignalRService/SignalR/"
)
DEFAULT_RESOURCE_ID = _RESOURCE_PREFIX + "emulated-signalr"


def resource_id_named(name: str) -> str:
    """The id of a SignalR resource called ``name`` in the default resource group: one per
    resource when several emulators share an authority (same group, so that a role at the group
    covers them all)."""
    return _RESOURCE_PREFIX + name


class Emulator:
    """A local stand-in for Azure: a tenant with managed identities and role assignments, its
    identity endpoint and token service, and one SignalR resource's data plane and client endpoint.

    Serve :attr:`app` on 127.0.0.1 (see :func:`serve_in_thread`) and point the real azure-identity
    at it with :meth:`app_service_env` or :meth:`imds_env`. Everything is in memory and per
    instance.

    ``public_url`` is the base URL clients reach the service at, whose host client tokens' ``aud``
    must name; by default, the URL the serve helpers report. ``ping_interval`` is the seconds
    between the pings each client connection gets (clients give up after 30 s of silence).
    ``upstream`` says where client invocations and connection events go (see :attr:`upstream`).

    ``service_mode`` is the resource's: ``"serverless"`` (the default here; clients connect with no
    app server, invocations go to the upstream) or ``"default"`` (Azure's default for a new
    resource: app servers open connections at ``/server/``, each client is routed to one of them,
    and a client of a hub no server serves is refused). In Default mode the service pings each
    server connection every ``server_ping_interval`` seconds and closes one silent for
    ``server_timeout`` seconds; clients get no pings from the service (their app server sends
    them).
    """

    def __init__(
        self,
        *,
        resource_id: str = DEFAULT_RESOURCE_ID,
        tenant_id: str | None = None,
        access_keys: tuple[str, str] | None = None,
        key_lifetime: float = 90 * 60,
        token_lifetime: float | None = None,
        public_url: str | None = None,
        ping_interval: float = 15.0,
        upstream: UpstreamSettings | None = None,
        service_mode: str = "serverless",
        server_ping_interval: float = 5.0,
        server_timeout: float = 30.0,
        authority: IdentityAuthority | None = None,
    ) -> None:
        resource = ResourceId.parse(resource_id)
        if resource.name is None:
            msg = (
                f"resource_id must name a SignalR resource, not a {resource.level}: {resource_id!r}"
            )
            raise ValueError(msg)
        if access_keys is not None and (len(access_keys) != 2 or not all(access_keys)):
            msg = "access_keys must be two non-empty strings: (primary, secondary)."
            raise ValueError(msg)
        if key_lifetime <= 0:
            msg = "key_lifetime must be positive (seconds)."
            raise ValueError(msg)
        if not ping_interval > 0:
            msg = f"ping_interval must be a positive number of seconds, got {ping_interval!r}."
            raise ValueError(msg)
        if not server_ping_interval > 0 or not server_timeout > 0:
            msg = "server_ping_interval and server_timeout must be positive numbers of seconds."
            raise ValueError(msg)
        mode = ServiceModeSetting(service_mode)
        if public_url is not None:
            public_url = normalize_url(public_url, key="public_url")
        if authority is None:
            authority = IdentityAuthority(
                tenant_id=DEFAULT_TENANT_ID if tenant_id is None else tenant_id,
                token_lifetime=24 * 3600 if token_lifetime is None else token_lifetime,
            )
        elif tenant_id is not None or token_lifetime is not None:
            msg = (
                "tenant_id and token_lifetime belong to the authority: leave them out when "
                "passing authority=."
            )
            raise ValueError(msg)
        authority.register(resource)
        self.authority = authority
        self.clock: EmulatorClock = authority.clock
        self.tenant_id = authority.tenant_id
        self._access_keys = access_keys or (secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        directory = Directory(resource, authority.principals)
        self.system_identity = authority.system_identity
        self.identity_header = authority.identity_header
        self._state = EmulatorState(
            clock=self.clock,
            directory=directory,
            entra=authority.entra,
            access_keys=AccessKeyStore(clock=self.clock, key_lifetime=key_lifetime),
            faults=FaultTable(ROUTE_NAMES, websocket_routes=(WEBSOCKET_ROUTE, SERVER_ROUTE)),
            log=RequestLog(),
            system_identity=self.system_identity,
            identity_header=self.identity_header,
            resource_keys=self._access_keys,
            address=PublicAddress(public_url),
            connections=ConnectionRegistry(self.clock.now),
            negotiated=NegotiatedConnections(),
            ping_interval=ping_interval,
            upstream=UpstreamTable(UpstreamSettings() if upstream is None else upstream),
            service_mode=mode,
            servers=ServerConnections(),
            server_ping_interval=server_ping_interval,
            server_timeout=server_timeout,
        )
        self.app: EmulatorApp = build_app(self._state)
        """The ASGI application serving every route (identity, metadata, SignalR data plane,
        client endpoint). The serve helpers tell it the URL it is served at."""

    # -- the resource ---------------------------------------------------------------------------

    @property
    def resource_id(self) -> ResourceId:
        return self._state.directory.resource_id

    @property
    def access_keys(self) -> tuple[str, str]:
        """The resource's own (primary, secondary) keys, as in access-key connection strings."""
        return self._access_keys

    @property
    def public_url(self) -> str | None:
        """The base URL client tokens' audiences must name: ``public_url`` if it was given, else
        the URL the app is served at (the first, if several), else None (not served yet)."""
        urls = self._state.address.urls()
        return urls[0] if urls else None

    @property
    def ping_interval(self) -> float:
        """Seconds between the pings the client endpoint sends each connection."""
        return self._state.ping_interval

    def connection_string(
        self, base_url: str, *, auth_type: str | None = "azure.msi", client_id: str | None = None
    ) -> str:
        """A connection string for this resource served at ``base_url``.

        ``auth_type=None`` gives an access-key connection string with the primary key.
        """
        endpoint = f"Endpoint={base_url.rstrip('/')};"
        if auth_type is None:
            return f"{endpoint}AccessKey={self._access_keys[0]};Version=1.0;"
        identity = f"ClientId={client_id};" if client_id else ""
        return f"{endpoint}AuthType={auth_type};{identity}Version=1.0;"

    @property
    def service_mode(self) -> str:
        """``"default"`` or ``"serverless"``. Assign to switch, as ``az signalr update
        --service-mode`` does: connections open already stay; new ones follow the new mode."""
        return self._state.service_mode.value

    @service_mode.setter
    def service_mode(self, mode: str) -> None:
        self._state.service_mode.value = mode

    @property
    def upstream(self) -> UpstreamSettings:
        """Where client invocations (category ``messages``) and connection events (``connections``)
        are POSTed: the first matching template of these settings. Assign new settings at any time
        (an app's port is often known only once it runs); calls under way finish with the old.
        Without templates, an invocation the client awaits fails with "no upstream"."""
        return self._state.upstream.settings

    @upstream.setter
    def upstream(self, settings: UpstreamSettings) -> None:
        self._state.upstream.settings = settings

    # -- principals and role assignments --------------------------------------------------------

    def add_principal(
        self, name: str, *, client_id: str | None = None, object_id: str | None = None
    ) -> Principal:
        """A user-assigned managed identity; ids are random UUIDs unless given."""
        return self._state.directory.add_principal(name, client_id=client_id, object_id=object_id)

    @property
    def principals(self) -> list[Principal]:
        """Every managed identity, the system-assigned one first."""
        return self._state.directory.principals

    def find_principal(
        self, *, client_id: str | None = None, object_id: str | None = None
    ) -> Principal | None:
        return self._state.directory.find_principal(client_id=client_id, object_id=object_id)

    def assign(
        self, principal: Principal, role: BuiltInRole | str, scope: str | ResourceId | None = None
    ) -> Assignment:
        """Give ``principal`` a role (by object, name, former name or id) at ``scope``.

        ``scope=None`` means the resource itself; a subscription or resource group scope is
        inherited by the resource.
        """
        return self._state.directory.assign(principal, role, scope)

    def unassign(self, assignment: Assignment) -> None:
        self._state.directory.unassign(assignment)

    @property
    def assignments(self) -> list[Assignment]:
        return self._state.directory.assignments

    def is_allowed(self, principal_oid: str, action: str) -> bool:
        return self._state.directory.is_allowed(principal_oid, action)

    # -- managed identity -----------------------------------------------------------------------

    def app_service_env(self, base_url: str) -> dict[str, str]:
        """Environment variables that send azure-identity's App Service flavour here."""
        return {
            "IDENTITY_ENDPOINT": f"{base_url.rstrip('/')}/msi/token",
            "IDENTITY_HEADER": self.identity_header,
        }

    def imds_env(self, base_url: str) -> dict[str, str]:
        """Environment variables that send azure-identity's IMDS flavour here (no probe)."""
        return {"AZURE_POD_IDENTITY_AUTHORITY_HOST": base_url.rstrip("/")}

    def issue_entra_token(
        self,
        principal: Principal,
        *,
        audience: str = "https://signalr.azure.com",
        lifetime: float | None = None,
        issuer_base: str = "https://sts.windows.net",
        algorithm: Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] = "RS256",
    ) -> str:
        """A token signed by this tenant's key, for tests that need one the identity endpoint won't
        give: another audience, a negative ``lifetime`` (already expired), an unknown principal,
        an ``algorithm`` other than Entra's RS256."""
        issued = self._state.entra.issue(
            principal,
            audience=audience,
            lifetime=lifetime,
            issuer_base=issuer_base,
            algorithm=algorithm,
        )
        return issued.token

    def verify_entra_token(self, token: str, *, audiences: Collection[str]) -> dict[str, Any]:
        """The claims of a token this tenant signed; :class:`EntraTokenError` says why not."""
        return self._state.entra.verify(token, audiences=audiences)

    @property
    def jwks(self) -> dict[str, Any]:
        """The tenant's public signing keys, as the JWKS route publishes them."""
        return self._state.entra.jwks()

    # -- temporary access keys ------------------------------------------------------------------

    @property
    def issued_keys(self) -> list[IssuedKey]:
        return self._state.access_keys.issued

    def valid_keys(self) -> list[IssuedKey]:
        """The issued keys not yet expired at ``clock.now()``."""
        return self._state.access_keys.valid()

    def find_key(self, key_id: str) -> IssuedKey | None:
        return self._state.access_keys.find(key_id)

    # -- client connections ---------------------------------------------------------------------

    @property
    def connections(self) -> list[ClientConnection]:
        """The client connections open now, oldest first: in Serverless mode those past the
        hub-protocol handshake; in Default mode those routed to an app server (which answers the
        handshake)."""
        return self._state.connections.all()

    def find_connection(self, connection_id: str) -> ClientConnection | None:
        return self._state.connections.get(connection_id)

    @property
    def connection_registry(self) -> ConnectionRegistry:
        """Connections by hub, user and group, with group membership (what the REST API uses)."""
        return self._state.connections

    # -- app server connections (Default mode) ---------------------------------------------------

    @property
    def server_connections(self) -> list[ServerConnection]:
        """The app servers' connections open now (past their handshake)."""
        return self._state.servers.all()

    @property
    def pending_client_invocations(self) -> int:
        """Client invocations (ClientInvocation) the service still waits to see completed: each
        ends with the client's completion (which the caller server reports even when it handled it
        itself, as the .NET SDK does) or the client's close."""
        return self._state.servers.pending_invocations()

    def drop_server_connections(self, hub: str | None = None, *, code: int = 1011) -> int:
        """Close the server connections (of ``hub``, or all) from the service side, as a service
        restart does: their clients are closed too and may reconnect. Safe from any thread; the
        number of connections closed."""
        dropped = [s for s in self._state.servers.all() if hub is None or s.hub == hub.lower()]
        for server in dropped:
            server.close(code=code, reason="The service closed the connection.")
        return len(dropped)

    # -- test hooks -----------------------------------------------------------------------------

    @property
    def log(self) -> RequestLog:
        return self._state.log

    def inject(
        self,
        route: str,
        *,
        status: int | None = None,
        delay: float = 0,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
        close: int | None = None,
    ) -> Fault:
        """Change how ``route`` answers its next ``times`` requests (all of them when None).

        ``delay`` seconds pass first; then ``status`` and/or ``body`` replace the real answer
        (status 200 when only a body is given, a small JSON error when only a status is given).
        On the WebSocket routes (``client.websocket``, ``server.connect``) a status refuses the
        upgrade, and ``close`` accepts it and closes the socket at once with that code.
        """
        fault = Fault(
            route,
            status=status,
            delay=delay,
            body=body,
            headers=headers,
            times=times,
            close=close,
        )
        return self._state.faults.add(fault)

    def remove_fault(self, fault: Fault) -> None:
        self._state.faults.remove(fault)

    def clear_faults(self) -> None:
        self._state.faults.clear()

    @property
    def faults(self) -> list[Fault]:
        """The faults still waiting to apply."""
        return self._state.faults.active

    def __repr__(self) -> str:
        return (
            f"Emulator(resource_id={str(self.resource_id)!r}, tenant_id={self.tenant_id!r}, "
            f"principals={len(self._state.directory.principals)}, "
            f"assignments={len(self.assignments)}, connections={len(self._state.connections)}, "
            f"service_mode={self.service_mode!r})"
        )
