"""What every request gets: :class:`SignalRContext`, the negotiate helper and client-token minting."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from . import _telemetry as telemetry
from ._client_tokens import ClaimValue, build_claims, check_lifetime
from ._endpoint import ServiceEndpoint
from ._errors import SignalRAuthError
from ._options import Options
from ._rest import HubClient
from ._rest_fan_out import EndpointsHubClient
from ._signing import KeySource, StaticKey
from .endpoints import EndpointSet

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
        endpoints: EndpointSet,
        options: Options,
        health: Callable[[], dict[str, Any]],
    ) -> None:
        self._endpoints = endpoints
        self.endpoints = endpoints
        """Every endpoint of the app, for code that works across them (REST fan-out, Default
        mode): see ``docs/design/endpoints.md``. ``endpoints.single is None`` while negotiations
        are routed among several."""
        self._options = options
        self._health = health

    @property
    def endpoint(self) -> ServiceEndpoint:
        """The resource (with several: the first primary)."""
        return self._endpoints.home.config.service

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
        request: Any = None,
        endpoint: str | None = None,
    ) -> dict[str, str]:
        """The reply for a client's negotiate request: ``{"url": ..., "accessToken": ...}``.

        Raises :class:`InvalidInputError` for bad arguments (and for claims or roles that a
        service-issued token cannot carry), :class:`NotReadyError` while no signing key is usable
        (and, for a hub of ``hubs=``, while none of its server connections is up),
        and :class:`ServiceError` when SignalR Service fails to issue a token. A service-issued
        token lives whole minutes: ``lifetime`` is rounded up to the next minute.

        With several endpoints the router picks one (``request``, the Starlette request, is
        handed to it), and the token and URL are that endpoint's; :class:`NoUsableEndpointError`
        when none is usable. ``endpoint`` names the endpoint instead of asking the router
        (:class:`InvalidInputError` for an unknown name, :class:`NoUsableEndpointError` while
        that one is not usable).
        """
        try:
            single = self._endpoints.single
            if endpoint is not None:
                chosen, address = self._endpoints.pin(endpoint, hub)
                issuer = chosen.issuer
            elif single is not None:  # one endpoint: no routing (the hot path)
                address = single.hubs.get(hub)
                servers = single.servers
                if servers is not None and (down := servers.not_ready(address.prefixed)):
                    raise down  # Default mode: the service would refuse the client
                issuer = single.issuer
            else:
                chosen, address = self._endpoints.choose(hub, user_id=user_id, request=request)
                issuer = chosen.issuer
            token = await issuer.issue(
                address,
                user_id=user_id,
                payload=build_claims(user_id=user_id, claims=claims, roles=roles),
                lifetime=self._lifetime(lifetime),
            )
        except SignalRAuthError as exc:  # counted by outcome, never by message or user
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
        endpoint: str | None = None,
    ) -> str:
        """A client access token for ``hub`` alone, for clients that know the service URL
        (:meth:`client_url`).

        A token is valid at one endpoint only, so with several endpoints name it (``endpoint``,
        as for :meth:`negotiate`; the same for :meth:`client_url`), or call :meth:`negotiate`
        for a routed pair: without it this raises :class:`ConfigurationError`.
        """
        if endpoint is not None:
            runtime, address = self._endpoints.pin(endpoint, hub)
        else:
            runtime = self._endpoints.only("client_token")
            address = runtime.hubs.get(hub)
        return await runtime.issuer.issue(
            address,
            user_id=user_id,
            payload=build_claims(user_id=user_id, claims=claims, roles=roles),
            lifetime=self._lifetime(lifetime),
        )

    def client_url(self, hub: str, *, endpoint: str | None = None) -> str:
        """Where clients of ``hub`` connect: ``{client endpoint}/client/?hub={hub}``. With several
        endpoints, ``endpoint`` names which (see :meth:`client_token`)."""
        if endpoint is not None:
            return self._endpoints.named(endpoint).hubs.get(hub).url
        return self._endpoints.only("client_url").hubs.get(hub).url

    def hub(self, name: str, *, endpoint: str | None = None) -> HubClient | EndpointsHubClient:
        """The REST API client for hub ``name``: send to everyone, a user, a group or a connection,
        manage groups, check existence, close connections. Cheap: make one wherever needed.

        With several endpoints (a removed one still draining counts), an
        :class:`EndpointsHubClient` that makes each call at every endpoint a message may reach;
        ``endpoint`` names one to call alone (a :class:`HubClient`, whatever its probes say)."""
        if endpoint is not None:
            return HubClient(self._endpoints.named(endpoint).rest, name)
        everyone = self._endpoints.all
        if len(everyone) == 1:
            return HubClient(everyone[0].rest, name)
        return EndpointsHubClient(self._endpoints, name)

    def health(self) -> dict[str, Any]:
        """A JSON-ready snapshot of the keepers (no secrets); see :meth:`SignalRAuth.health`."""
        return self._health()

    def _lifetime(self, lifetime: float | timedelta | None) -> float:
        return self._options.token_lifetime if lifetime is None else check_lifetime(lifetime)
