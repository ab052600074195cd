"""The endpoints of a running app: one :class:`EndpointRuntime` (keepers, issuer, REST client,
server connections, health probe) per endpoint, and the :class:`EndpointSet` that routes among them.

This is the seam the rest of the package builds on (``docs/design/endpoints.md``): negotiation asks
:meth:`EndpointSet.choose`; REST fan-out and Default mode read :meth:`EndpointSet.message_targets`
and each runtime's ``rest`` and ``servers``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Literal

import anyio
import httpx2
from anyio.abc import TaskGroup

from .._client_tokens import SigningKey
from .._connection_homes import ConnectionHomes
from .._credentials import CredentialAdapter
from .._errors import (
    ConfigurationError,
    InvalidInputError,
    NotReadyError,
    NoUsableEndpointError,
    SignalRAuthError,
)
from .._hubs import HubAddress, HubAddresses
from .._keepers import AccessKeyKeeper, EntraTokenKeeper
from .._names import prefixed_hub
from .._options import Options
from .._rest import HubClient, RestClient
from .._secrets import Secret
from .._service_tokens import ServiceTokens
from .._signing import ClientTokenIssuer, StaticKey
from ..server import ServerAuthorization, ServerConnectionPools, ServerHub
from ._config import EndpointConfig, check_endpoint_set, describe
from ._identities import SharedIdentities
from ._probe import HealthProbe
from ._routers import DefaultRouter, EndpointInfo, EndpointRouter, RouteRequest

__all__ = ["EndpointRuntime", "EndpointSet", "signing_status", "static_signing_key", "worst"]

logger = logging.getLogger(__name__)

_MAX_RETRY_AFTER: Final = 60.0
_DRAIN_POLL: Final = 1.0
_CLOSE_REASON: Final = "This SignalR endpoint is being removed; connect again."


def static_signing_key(access_key: Secret) -> SigningKey:
    # The service ignores kid for a resource's own keys (the C# SDK sends a random one); a digest
    # prefix keeps it the same in every worker, which helps when reading logs.
    digest = hashlib.sha256(access_key.reveal().encode()).hexdigest()[:12]
    return SigningKey(key_id=f"key-{digest}", secret=access_key)


class EndpointRuntime:
    """One endpoint while the app runs: what signs its client tokens, calls its REST API, holds
    its server connections, and probes its health."""

    def __init__(
        self,
        config: EndpointConfig,
        *,
        options: Options,
        http: httpx2.AsyncClient,
        server_http: httpx2.AsyncClient,
        identities: SharedIdentities,
        hubs: Sequence[ServerHub],
    ) -> None:
        self.config = config
        self.name = config.name
        self.info = EndpointInfo(
            name=config.name,
            type=config.type,
            endpoint=config.service.endpoint,
            client_endpoint=config.service.client_endpoint,
        )
        self._options = options
        self._http = http
        self._server_http = server_http
        self.hubs = HubAddresses(config.service, options.application_name)
        self.entra: EntraTokenKeeper | None = None
        self.adapter: CredentialAdapter | None = None
        self.keys: AccessKeyKeeper | None = None
        self.service: ServiceTokens | None = None
        self.servers: ServerConnectionPools | None = None
        self.probe: HealthProbe | None = None
        self.probe_error: SignalRAuthError | None = None
        self.draining = False
        self.stopped = False
        self._scopes: list[anyio.CancelScope] = []
        if config.access_key is not None:
            key = static_signing_key(config.access_key)
            self.issuer = ClientTokenIssuer(
                mode="key", options=options, keys=StaticKey(key), service=None
            )
            self.rest = RestClient(endpoint=config.service, options=options, http=http, key=key)
            self._server_connections(hubs, entra=None, key=key)
            return
        self.entra, self.adapter = identities.acquire(config)
        if options.mode != "service":
            self.keys = AccessKeyKeeper(
                endpoint=config.service, entra=self.entra, http=http, options=options
            )
        if options.mode != "key":
            self.service = ServiceTokens(
                endpoint=config.service, entra=self.entra, http=http, options=options
            )
        self.issuer = ClientTokenIssuer(
            mode=options.mode, options=options, keys=self.keys, service=self.service
        )
        if self.keys is not None and self.service is not None:
            self.keys.on_forbidden = self.issuer.key_forbidden
        self.rest = RestClient(
            endpoint=config.service, options=options, http=http, entra=self.entra
        )
        self._server_connections(hubs, entra=self.entra, key=None)

    def __repr__(self) -> str:
        return f"EndpointRuntime({self.name!r}, {self.config.service.endpoint!r})"

    def _server_connections(
        self,
        hubs: Sequence[ServerHub],
        *,
        entra: EntraTokenKeeper | None,
        key: SigningKey | None,
    ) -> None:
        """Default mode: the hubs' server connections, authorized as the rest of the app is."""
        if hubs:
            authorization = ServerAuthorization(entra=entra, key=key, clock=self._options.clock)
            self.servers = ServerConnectionPools(
                hubs,
                endpoint=self.config.service,
                authorization=authorization,
                options=self._options,
                http=self._server_http,
            )

    # -- lifetime -------------------------------------------------------------------------------

    def start(self, task_group: TaskGroup) -> None:
        if self.keys is not None:
            self._spawn(task_group, self.keys.run, "signalr_asgi_auth.AccessKeyKeeper")
        if self.servers is not None:
            self._spawn(task_group, self.servers.run, "signalr_asgi_auth.ServerConnections")

    def _spawn(
        self, task_group: TaskGroup, function: Callable[[], Awaitable[object]], name: str
    ) -> None:
        """Run ``function`` in the app's task group, under a scope that :meth:`stop` cancels."""
        scope = anyio.CancelScope()
        self._scopes.append(scope)

        async def run() -> None:
            with scope:
                await function()

        task_group.start_soon(run, name=name)

    def start_probing(self, task_group: TaskGroup) -> None:
        """Probe ``HEAD /api/health`` from now on (only with more than one endpoint)."""
        if self.probe is not None or self.stopped:
            return
        options = self._options
        self.probe = HealthProbe(
            name=self.name,
            endpoint=self.config.service,
            http=self._http,
            clock=options.clock,
            interval=options.health_check_interval,
            timeout=options.health_check_timeout,
        )
        self._spawn(task_group, self.probe.run, f"signalr_asgi_auth.HealthProbe[{self.name}]")

    # -- draining -------------------------------------------------------------------------------

    def clients(self) -> int | None:
        """Client connections this app holds here (Default mode: its server connections carry
        them); ``None`` in Serverless mode, where they live at the service alone."""
        return self.servers.clients() if self.servers is not None else None

    def hubs_in_use(self) -> list[str]:
        """The hubs this app used here: those it negotiated for, and ``hubs=`` (lower-cased,
        without the application prefix, as the REST API's paths name them)."""
        names = [address.name for address in self.hubs.kept()]
        if self.servers is not None:
            names += [prefixed_hub(name, None) for name in self.servers.names()]
        return list(dict.fromkeys(names))

    async def close_connections(self) -> None:
        """``POST /api/hubs/{hub}/:closeConnections`` here for each hub in use, so that their
        clients reconnect (and negotiate elsewhere). A failure is logged, never raised."""
        for hub in self.hubs_in_use():
            try:
                await HubClient(self.rest, hub).close_all_connections(reason=_CLOSE_REASON)
            except SignalRAuthError as exc:
                logger.warning(
                    "Could not close the connections of hub %r at SignalR endpoint %s while "
                    "removing it (its clients stay until they leave): %s",
                    hub,
                    self.config.label,
                    exc,
                )
            else:
                logger.info(
                    "Closed the connections of hub %r at SignalR endpoint %s.",
                    hub,
                    self.config.label,
                )

    async def stop_server_connections(self) -> None:
        if self.servers is not None:
            await self.servers.stop()

    async def stop(self) -> None:
        """Close its server connections and stop its keepers and probe."""
        self.stopped = True
        await self.stop_server_connections()
        for scope in self._scopes:
            scope.cancel()

    # -- readiness ------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether client tokens can be issued (startup need not wait any longer)."""
        if self.entra is None:
            return True
        if self.keys is None:
            return self.entra.ready.is_set()
        return self.keys.ready.is_set() or self.issuer.service_ready.is_set()

    async def wait_ready(self, deadline: float) -> bool:
        """Wait until client tokens can be issued, at most until ``deadline``; whether they can."""
        with anyio.move_on_after(max(deadline - self._options.clock.now(), 0.0)):
            await self._until_ready()
        return self.ready

    async def _until_ready(self) -> None:
        if self.entra is None or self.ready:
            return
        if self.keys is None:
            await self.entra.ready.wait()
            return
        if self.service is None:
            await self.keys.ready.wait()
            return
        # auto: the key, unless the access-key call answers 403 and the service issues tokens
        await _first_set(self.keys.ready, self.issuer.fallback_ready)
        if not self.keys.ready.is_set():
            self.probe_error = await self.issuer.probe_service()
            if self.probe_error is not None:
                await self.keys.ready.wait()

    # -- usability ------------------------------------------------------------------------------

    def signing_problem(self) -> tuple[str, float] | None:
        """Why no client token can be issued now (and when to ask again), or ``None``."""
        if self.entra is None:
            return None
        if self.keys is not None:
            try:
                self.keys.current()
            except NotReadyError as exc:
                if self.issuer.signing != "service":
                    return str(exc), exc.retry_after
            else:
                return None
        service = self.service
        assert service is not None
        if service.failures and service.last_error is not None:
            return f"SignalR Service does not issue client tokens: {service.last_error}", 5.0
        if not self.entra.valid:
            error = self.entra.attempts.last_error
            why = str(error) if error is not None else "the first request for it is under way."
            return f"No Microsoft Entra token: {why}", 1.0
        return None

    def problem(self, hub: str | None) -> tuple[str, float] | None:
        """Why a negotiation for ``hub`` (as the service names it) cannot come here now, and in
        how many seconds to ask again; ``None`` when it can."""
        if self.draining or self.stopped:
            return "it is being removed", _MAX_RETRY_AFTER
        probe = self.probe
        if probe is not None and not probe.up:
            return probe.problem or "", probe.retry_after(self._options.clock.now())
        signing = self.signing_problem()
        if signing is not None:
            return signing
        if hub is not None and self.servers is not None:
            down = self.servers.not_ready(hub)
            if down is not None:
                return str(down), down.retry_after
        return None

    @property
    def reachable(self) -> bool:
        """Whether messages should go here: not stopped, and not ruled out by its probes."""
        return not self.stopped and (self.probe is None or self.probe.up)

    # -- health ---------------------------------------------------------------------------------

    def status(self) -> str:
        """``ok``, ``degraded``, ``starting``, ``unavailable`` or ``draining``."""
        if self.draining:
            return "draining"
        if self.probe is not None and not self.probe.up:
            return "unavailable"
        status = self.signing_status()
        if self.servers is not None:
            status = worst(status, self.servers.status())
        return status

    def signing_status(self) -> str:
        if self.entra is None:
            return "ok"
        keys = self.keys.health() if self.keys is not None else None
        service = self.service.health() if self.service is not None else None
        entra = self.entra.health()
        return signing_status(
            signing=self.issuer.signing,
            mode=self._options.mode,
            keys=keys,
            service=service,
            entra=entra,
        )

    def health(self) -> dict[str, Any]:
        """``health()["endpoints"]``'s entry: no secrets."""
        report: dict[str, Any] = {**describe(self.config), "status": self.status()}
        problem = self.problem(None)
        report["usable"] = problem is None
        report["reason"] = problem[0] if problem is not None else None
        report["signing"] = self.issuer.signing
        report["probe"] = self.probe.health() if self.probe is not None else None
        return {**report, **self.parts_health(entra=False)}

    def parts_health(self, *, entra: bool) -> dict[str, Any]:
        """The snapshots of the parts in use: the Entra token (if ``entra``), the access key,
        service tokens, server connections."""
        parts: dict[str, Any] = {}
        if entra and self.entra is not None:
            parts["entra_token"] = self.entra.health()
        if self.keys is not None:
            parts["access_key"] = self.keys.health()
        if self.service is not None:
            parts["service_tokens"] = self.service.health()
        if self.servers is not None:
            parts["server_connections"] = self.servers.health()
        return parts


class EndpointSet:
    """Every endpoint of the running app, and the rules that pick among them.

    With one endpoint nothing is probed and negotiation takes the :attr:`single` fast path, as
    before several endpoints existed. With more, each is probed, and :meth:`choose` asks the router
    among the usable ones.
    """

    def __init__(
        self,
        configs: Sequence[EndpointConfig],
        *,
        options: Options,
        http: httpx2.AsyncClient,
        server_http: httpx2.AsyncClient | None = None,
        hubs: Sequence[ServerHub] = (),
        router: EndpointRouter | None = None,
        lazy: bool = False,
    ) -> None:
        self._options = options
        self._http = http
        self._server_http = server_http or http
        """Server connections' own client (``_http_clients.py``): never the calls' pool."""
        self._hubs = hubs
        self._default = DefaultRouter()
        self.router: EndpointRouter = router or self._default
        self.identities = SharedIdentities(options, lazy=lazy)
        self.connection_homes = ConnectionHomes()
        """Where REST fan-out learnt each client connection lives (``_rest_fan_out.py``)."""
        self._endpoints: dict[str, EndpointRuntime] = {}
        self._task_group: TaskGroup | None = None
        for config in configs:
            self._endpoints[config.name] = self._runtime(config)
        self.single: EndpointRuntime | None = None
        """The one endpoint that takes negotiations when there is only one (no routing)."""
        self._changed()

    def __repr__(self) -> str:
        return f"EndpointSet({list(self._endpoints)!r})"

    def __len__(self) -> int:
        return len(self._endpoints)

    def _runtime(self, config: EndpointConfig) -> EndpointRuntime:
        return EndpointRuntime(
            config,
            options=self._options,
            http=self._http,
            server_http=self._server_http,
            identities=self.identities,
            hubs=self._hubs,
        )

    def _changed(self) -> None:
        active = [runtime for runtime in self._endpoints.values() if not runtime.draining]
        self.single = active[0] if len(active) == 1 else None
        self._active = active
        # negotiate's fast path reads these for every request: worked out once per change
        self._tiers = tuple(
            [runtime for runtime in active if runtime.config.type == tier]
            for tier in ("primary", "secondary")
        )
        self._home = (
            self._tiers[0][0] if self._tiers[0] else next(iter(self._endpoints.values()), None)
        )

    @property
    def routes_by_request(self) -> bool:
        """Whether negotiations are routed by a router of the app's, which may read the request
        (the default router never does, so no ``Request`` is built for it)."""
        return self.single is None and self.router is not self._default

    # -- what fan-out and Default mode read -----------------------------------------------------

    @property
    def all(self) -> list[EndpointRuntime]:
        """Every endpoint, draining ones included, in configuration order."""
        return list(self._endpoints.values())

    @property
    def home(self) -> EndpointRuntime:
        """The first primary (the first endpoint while none is left): what a single-resource
        API, such as ``SignalRContext.endpoint``, shows."""
        assert self._home is not None  # a set always has an endpoint
        return self._home

    def get(self, name: str) -> EndpointRuntime | None:
        return self._endpoints.get(name)

    def named(self, name: object) -> EndpointRuntime:
        """The endpoint called ``name`` (draining ones included); :class:`InvalidInputError`,
        naming the endpoints there are, for any other name."""
        runtime = self._endpoints.get(name) if isinstance(name, str) else None
        if runtime is None:
            msg = f"No SignalR endpoint is named {name!r:.80}; the endpoints are {self._names()}."
            raise InvalidInputError(msg)
        return runtime

    def only(self, what: str) -> EndpointRuntime:
        """The one endpoint that takes negotiations, for an API that cannot route (``what``
        names it): :class:`ConfigurationError` with several, saying what to do instead."""
        if self.single is not None:
            return self.single
        msg = (
            f"{what}() cannot choose among several SignalR endpoints: a client token is valid at "
            "one endpoint only, and its URL must be that endpoint's. Call negotiate() for a "
            f"routed {{url, accessToken}} pair, or name the endpoint ({what}(..., endpoint=...)); "
            f"the endpoints are {self._names()}."
        )
        raise ConfigurationError(msg)

    def _names(self) -> str:
        return ", ".join(repr(name) for name in self._endpoints)

    def message_targets(self) -> list[EndpointRuntime]:
        """Where REST sends and group changes go: every endpoint its probes do not rule out,
        primaries and secondaries alike, draining ones included (their clients are still there)."""
        return [runtime for runtime in self._endpoints.values() if runtime.reachable]

    def usable(self, hub: str | None = None) -> list[EndpointRuntime]:
        """The endpoints a negotiation for ``hub`` (as the service names it) may go to now."""
        return [runtime for runtime in self._active if runtime.problem(hub) is None]

    # -- negotiation ----------------------------------------------------------------------------

    def choose(
        self, hub: str, *, user_id: str | None, request: Any = None
    ) -> tuple[EndpointRuntime, HubAddress]:
        """The endpoint for one negotiation, and the hub's addresses there;
        :class:`NoUsableEndpointError` (a 503) when no endpoint is usable."""
        address = self.home.hubs.get(hub)  # checks the name once
        if self.router is self._default:
            # The default router's rule without its request and lists: negotiate's hot path
            # (benchmark (k) holds three endpoints to 0.95x of one). The 503 takes the full path.
            # Secondaries are asked only when no primary is usable.
            prefixed = address.prefixed
            for tier in self._tiers:
                candidates = [runtime for runtime in tier if runtime.problem(prefixed) is None]
                if candidates:
                    fast = self._default.pick(candidates)
                    return fast, address if fast is self.home else fast.hubs.get(hub)
        usable: list[EndpointInfo] = []
        by_name: dict[str, EndpointRuntime] = {}
        reasons: dict[str, str] = {}
        retry_after = _MAX_RETRY_AFTER
        for runtime in self._active:
            problem = runtime.problem(address.prefixed)
            if problem is None:
                usable.append(runtime.info)
                by_name[runtime.name] = runtime
            else:
                reasons[runtime.name] = problem[0]
                retry_after = min(retry_after, problem[1])
        if not usable:
            listed = "; ".join(f"{name or '(unnamed)'}: {why}" for name, why in reasons.items())
            msg = f"No SignalR endpoint can take a negotiation now. {listed}"
            raise NoUsableEndpointError(
                msg, retry_after=max(1.0, math.ceil(retry_after)), reasons=reasons
            )
        route = RouteRequest(hub=hub, user_id=user_id, request=request)
        chosen = self.router.choose(route, usable)
        picked = by_name.get(chosen.name) if chosen is not None else None
        if picked is None or chosen is not picked.info:
            if chosen is not None:
                logger.warning(
                    "The endpoint router %r chose %r, which is not among the usable endpoints; "
                    "the default router chooses instead.",
                    self.router,
                    chosen,
                )
            picked = by_name[self._default.choose(route, usable).name]
        return picked, picked.hubs.get(hub)

    def pin(self, name: object, hub: str) -> tuple[EndpointRuntime, HubAddress]:
        """The endpoint ``name`` for one negotiation the app routed itself, and the hub's
        addresses there; :class:`NoUsableEndpointError` (a 503) while it cannot take one."""
        runtime = self.named(name)
        address = runtime.hubs.get(hub)
        problem = runtime.problem(address.prefixed)
        if problem is not None:
            why, retry_after = problem
            msg = f"The SignalR endpoint {runtime.name!r} cannot take a negotiation now: {why}"
            raise NoUsableEndpointError(
                msg, retry_after=max(1.0, math.ceil(retry_after)), reasons={runtime.name: why}
            )
        return runtime, address

    # -- lifetime -------------------------------------------------------------------------------

    def start(self, task_group: TaskGroup) -> None:
        self._task_group = task_group
        self.identities.start(task_group)
        for runtime in self._endpoints.values():
            runtime.start(task_group)
        self._probe_if_several()

    def _probe_if_several(self) -> None:
        if self._task_group is None or len(self._endpoints) < 2:
            return
        for runtime in self._endpoints.values():
            runtime.start_probing(self._task_group)

    async def wait_ready(self, deadline: float) -> list[EndpointRuntime]:
        """Wait until every endpoint can issue client tokens, at most until ``deadline``; the
        ones that cannot."""
        async with anyio.create_task_group() as tasks:
            for runtime in self._endpoints.values():
                tasks.start_soon(runtime.wait_ready, deadline)
        return [runtime for runtime in self._endpoints.values() if not runtime.ready]

    async def wait_server_connections(self, deadline: float) -> None:
        left = max(deadline - self._options.clock.now(), 0.0)
        with anyio.move_on_after(left):
            for runtime in self._endpoints.values():
                if runtime.servers is not None:
                    await runtime.servers.wait_up()

    async def stop_server_connections(self) -> None:
        async with anyio.create_task_group() as tasks:
            for runtime in self._endpoints.values():
                tasks.start_soon(runtime.stop_server_connections)

    async def aclose(self) -> None:
        await self.identities.aclose()

    # -- runtime changes ------------------------------------------------------------------------

    def check_addition(self, config: EndpointConfig) -> None:
        """:class:`ConfigurationError` if ``config`` cannot join the set as it is."""
        check_endpoint_set([runtime.config for runtime in self._endpoints.values()] + [config])

    async def add(self, config: EndpointConfig) -> EndpointRuntime:
        """Start ``config``'s keepers (and probes); messages go there at once, negotiations once
        it can sign and its probes allow."""
        self.check_addition(config)
        runtime = self._runtime(config)
        self._endpoints[config.name] = runtime
        self._changed()
        if self._task_group is not None:
            runtime.start(self._task_group)
            self._probe_if_several()
        logger.info("Added SignalR endpoint %s (%s).", config.label, config.service.endpoint)
        return runtime

    async def remove(
        self,
        name: str,
        *,
        drain: float,
        close_connections: bool = False,
        clients: Callable[[EndpointRuntime], int | None] = EndpointRuntime.clients,
    ) -> None:
        """Take ``name`` out of negotiation at once; keep it for messages while it drains (until
        ``clients`` says none is left, or ``drain`` seconds; ``None`` from it: not known, the
        full time); then, with ``close_connections``, close the connections of the hubs in use
        there; then stop its server connections and keepers."""
        runtime = self._endpoints.get(name)
        if runtime is None or runtime.draining:
            return
        left = [
            other.config
            for other in self._endpoints.values()
            if other is not runtime and not other.draining
        ]
        check_endpoint_set(left)
        runtime.draining = True
        self._changed()
        logger.info(
            "Removing SignalR endpoint %s: no new negotiations; draining for up to %g s.",
            runtime.config.label,
            drain,
        )
        clock = self._options.clock
        started = clock.now()
        until = started + drain
        try:
            count = clients(runtime)
            while count != 0 and clock.now() < until:
                await clock.sleep(min(_DRAIN_POLL, max(until - clock.now(), 0.0)))
                count = clients(runtime)
            _log_drained(runtime, count, clock.now() - started)
            if close_connections:
                await runtime.close_connections()
        finally:
            with anyio.CancelScope(shield=True):
                del self._endpoints[name]
                self._changed()
                await runtime.stop()
                if runtime.config.identity is not None:
                    await self.identities.release(runtime.config)
        logger.info("Removed SignalR endpoint %s.", runtime.config.label)

    # -- health ---------------------------------------------------------------------------------

    def health(self) -> list[dict[str, Any]]:
        return [runtime.health() for runtime in self._endpoints.values()]

    def status(self) -> str:
        """The app's status over several endpoints (see the README): ``unavailable`` when no
        endpoint can take a negotiation, ``starting`` when none can yet but one is starting,
        ``degraded`` when some can but not every endpoint is ``ok`` (a primary down, a secondary
        failing, one draining), ``ok`` when all are."""
        statuses = [runtime.status() for runtime in self._endpoints.values()]
        if not any(runtime.problem(None) is None for runtime in self._active):
            return "starting" if "starting" in statuses else "unavailable"
        if all(status == "ok" for status in statuses):
            return "ok"
        return "degraded"


def _log_drained(runtime: EndpointRuntime, left: int | None, took: float) -> None:
    if left == 0:
        logger.info(
            "SignalR endpoint %s drained after %.1f s: no clients left.", runtime.config.label, took
        )
    elif left is None:
        logger.info(
            "SignalR endpoint %s drained after %.1f s: drain time over (Serverless mode: its "
            "clients cannot be counted).",
            runtime.config.label,
            took,
        )
    else:
        logger.info(
            "SignalR endpoint %s drained after %.1f s: drain time over; clients left: %d.",
            runtime.config.label,
            took,
            left,
        )


_SEVERITY: Final = ("ok", "degraded", "starting", "unavailable")


def worst(status: str, other: str | None) -> str:
    """The worse of two statuses (``None``: no opinion)."""
    if other is None or status not in _SEVERITY:
        return status
    return max(status, other, key=_SEVERITY.index)


def signing_status(
    *,
    signing: Literal["local", "service"],
    mode: str,
    keys: dict[str, Any] | None,
    service: dict[str, Any] | None,
    entra: dict[str, Any],
) -> str:
    """The status of whatever issues client tokens, from the snapshots of the parts in use."""
    if signing == "service":
        assert service is not None
        if service["consecutive_failures"]:
            return "unavailable"
        if entra["valid"]:
            failing = entra["consecutive_failures"] or mode == "auto"
            return "degraded" if failing else "ok"
        return "unavailable" if entra["consecutive_failures"] else "starting"
    assert keys is not None
    if keys["valid"]:
        return "degraded" if keys["consecutive_failures"] else "ok"
    if keys["consecutive_failures"] or keys["key_id"]:
        return "unavailable"
    return "starting"


async def _first_set(*events: anyio.Event) -> None:
    """Return once any of ``events`` is set."""
    async with anyio.create_task_group() as task_group:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            task_group.cancel_scope.cancel()

        for event in events:
            task_group.start_soon(wait, event)
