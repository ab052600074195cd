"""What every request gets: :class:`SignalRContext`, the negotiate helper and client-token minting."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from . import _telemetry as telemetry
from ._client_tokens import ClaimValue, build_claims, check_lifetime
from ._endpoint import ServiceEndpoint
from ._errors import NotReadyError, SignalRAuthError
from ._hubs import HubAddresses
from ._options import Options
from ._rest import HubClient, RestClient
from ._signing import ClientTokenIssuer, KeySource, StaticKey

__all__ = ["KeySource", "SignalRContext", "StaticKey"]


class SignalRContext:
    """The SignalR side of a request: ``request.state.signalr``, or the FastAPI ``SignalR`` dependency.

    Negotiation with a key is pure computation: the key is already in memory, kept fresh by the
    background keeper, so no call here touches the network. Service-issued tokens (``mode="service"``,
    or ``"auto"`` without the key) come from SignalR Service, cached. :meth:`hub` gives the REST
    API client, which does call the service.
    """

    def __init__(
        self,
        *,
        endpoint: ServiceEndpoint,
        options: Options,
        issuer: ClientTokenIssuer,
        health: Callable[[], dict[str, Any]],
        rest: RestClient,
        server_connections: Callable[[str], NotReadyError | None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._servers_down = server_connections
        self._options = options
        self._issuer = issuer
        self._health = health
        self._rest = rest
        self._hubs = HubAddresses(endpoint, options.application_name)

    def __repr__(self) -> str:
        return f"SignalRContext(endpoint={self.endpoint.endpoint!r})"

    async def negotiate(
        self,
        hub: str,
        *,
        user_id: str | None = None,
        claims: Mapping[str, ClaimValue] | None = None,
        roles: Sequence[str] = (),
        lifetime: float | timedelta | None = None,
    ) -> dict[str, str]:
        """The reply for a client's negotiate request: ``{"url": ..., "accessToken": ...}``.

        Raises :class:`InvalidInputError` for bad arguments (and for claims or roles that a
        service-issued token cannot carry), :class:`NotReadyError` while no signing key is usable
        (and, for a hub of ``hubs=``, while none of its server connections is up),
        and :class:`ServiceError` when SignalR Service fails to issue a token. A service-issued
        token lives whole minutes: ``lifetime`` is rounded up to the next minute.
        """
        try:
            address = self._hubs.get(hub)
            if self._servers_down is not None and (down := self._servers_down(address.prefixed)):
                raise down  # Default mode: the service would refuse the client
            token = await self._issuer.issue(
                address,
                user_id=user_id,
                payload=build_claims(user_id=user_id, claims=claims, roles=roles),
                lifetime=self._lifetime(lifetime),
            )
        except SignalRAuthError as exc:
            telemetry.count_negotiation(hub, telemetry.error_type(exc))
            raise
        telemetry.count_negotiation(hub, "ok")
        return {"url": address.url, "accessToken": token}

    async def client_token(
        self,
        hub: str,
        *,
        user_id: str | None = None,
        claims: Mapping[str, ClaimValue] | None = None,
        roles: Sequence[str] = (),
        lifetime: float | timedelta | None = None,
    ) -> str:
        """A client access token for ``hub`` alone (for clients that know the service URL)."""
        return await self._issuer.issue(
            self._hubs.get(hub),
            user_id=user_id,
            payload=build_claims(user_id=user_id, claims=claims, roles=roles),
            lifetime=self._lifetime(lifetime),
        )

    def client_url(self, hub: str) -> str:
        """Where clients of ``hub`` connect: ``{client endpoint}/client/?hub={hub}``."""
        return self._hubs.get(hub).url

    def hub(self, name: str) -> HubClient:
        """The REST API client for hub ``name``: send to everyone, a user, a group or a connection,
        manage groups, check existence, close connections. Cheap: make one wherever needed."""
        return HubClient(self._rest, name)

    def health(self) -> dict[str, Any]:
        """A JSON-ready snapshot of the keepers (no secrets); see :meth:`SignalRAuth.health`."""
        return self._health()

    def _lifetime(self, lifetime: float | timedelta | None) -> float:
        return self._options.token_lifetime if lifetime is None else check_lifetime(lifetime)
