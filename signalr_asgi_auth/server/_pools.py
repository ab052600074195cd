"""Every hub's server connections for one ``SignalRAuth``: built, run, waited for, stopped."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio
import httpx2

from .._backoff import Backoff
from .._endpoint import ServiceEndpoint
from .._errors import ConfigurationError, InvalidInputError, NotReadyError
from .._names import prefixed_hub
from .._options import Options
from ._pool import HUB_STOP_TIMEOUT, STOP_TIMEOUT, ServerConnectionPool
from ._seams import ServerHub, ServiceEvents
from ._server_identity import ServerAuthorization

__all__ = ["ServerConnectionPools", "check_server_hubs"]

logger = logging.getLogger("signalr_asgi_auth.server")


def check_server_hubs(hubs: object, application_name: str | None) -> tuple[ServerHub, ...]:
    """``hubs=`` checked: hub objects with valid, distinct names (compared as the service does,
    lower-cased with the application prefix)."""
    if isinstance(hubs, str | bytes) or not isinstance(hubs, Sequence):
        msg = f"hubs must be a list of hub objects such as Hub('chat'), not {type(hubs).__name__}."
        raise ConfigurationError(msg)
    seen: dict[str, str] = {}
    for hub in hubs:
        name = getattr(hub, "name", None)
        if not callable(getattr(hub, "attach", None)) or not isinstance(name, str):
            msg = (
                "Each of hubs must be a hub object with a name and attach() (such as "
                f"Hub('chat')), not {type(hub).__name__}."
            )
            raise ConfigurationError(msg)
        try:
            prefixed = prefixed_hub(name, application_name)
        except InvalidInputError as exc:
            raise ConfigurationError(str(exc)) from None
        if prefixed in seen:
            msg = (
                f"hubs has two hubs named {seen[prefixed]!r} and {name!r}; SignalR Service "
                "compares hub names ignoring case, so each hub needs a name of its own."
            )
            raise ConfigurationError(msg)
        seen[prefixed] = name
    return tuple(hubs)


class ServerConnectionPools:
    """One :class:`ServerConnectionPool` per hub.

    Their WebSockets go through ``http``, a client of their own (``server_http_client=``, or one
    the library makes: ``_http_clients.py``), since each holds one of its connections for as long
    as it lives.
    """

    def __init__(
        self,
        hubs: Sequence[ServerHub],
        *,
        endpoint: ServiceEndpoint,
        authorization: ServerAuthorization,
        options: Options,
        http: httpx2.AsyncClient,
    ) -> None:
        self._http = http
        backoff = Backoff(options.retry_initial_delay, options.retry_max_delay)
        self._hubs: list[tuple[ServerHub, ServerConnectionPool]] = []
        self.pools: dict[str, ServerConnectionPool] = {}
        for hub in hubs:
            pool = ServerConnectionPool(
                endpoint=endpoint,
                hub=prefixed_hub(hub.name, options.application_name),
                authorization=authorization,
                http=self._http,
                backoff=backoff,
                clock=options.clock,
                count=options.server_connection_count,
            )
            self._hubs.append((hub, pool))
            self.pools[pool.hub] = pool
        self._scope: anyio.CancelScope | None = None

    def __repr__(self) -> str:
        return f"ServerConnectionPools({sorted(self.pools)!r})"

    async def run(self) -> None:
        """Attach each hub, start its hub layer, then open its connections; until cancelled."""
        async with anyio.create_task_group() as tasks:
            self._scope = tasks.cancel_scope
            for hub, pool in self._hubs:
                events: ServiceEvents = hub.attach(pool)
                pool.attach(events)
                await tasks.start(events.run, name=f"signalr_asgi_auth.Hub[{pool.hub}]")
                tasks.start_soon(
                    pool.run, name=f"signalr_asgi_auth.ServerConnectionPool[{pool.hub}]"
                )

    async def wait_up(self) -> None:
        """Until every hub has a connection up (bound it with a timeout)."""
        for pool in self.pools.values():
            await pool.first_up.wait()

    def clients(self) -> int:
        """Client connections on this endpoint, over every hub (as the hub layers count them)."""
        return sum(pool.events.clients for pool in self.pools.values())

    def names(self) -> list[str]:
        """The hubs' names as the app gave them."""
        return [hub.name for hub, _ in self._hubs]

    def down(self) -> list[ServerConnectionPool]:
        return [pool for pool in self.pools.values() if pool.up == 0]

    def not_ready(self, hub: str) -> NotReadyError | None:
        """Why clients of ``hub`` (as the service names it) cannot connect now, or ``None``."""
        pool = self.pools.get(hub)
        if pool is None or pool.up:
            return None
        return pool.not_ready()

    async def stop(self) -> None:
        """Stop every pool gracefully, together, then the hub layers (which take up to
        :data:`HUB_STOP_TIMEOUT` for their clients' disconnect events): :data:`STOP_TIMEOUT` in
        all."""
        within = STOP_TIMEOUT - HUB_STOP_TIMEOUT
        with anyio.CancelScope(shield=True), anyio.move_on_after(within):
            async with anyio.create_task_group() as tasks:
                for pool in self.pools.values():
                    tasks.start_soon(pool.stop, within)
        if self._scope is not None:
            self._scope.cancel()

    def health(self) -> dict[str, Any]:
        return {hub: pool.health() for hub, pool in self.pools.items()}

    def status(self) -> str | None:
        """``unavailable`` if a hub has no connection up after a failure (``starting`` before
        any), ``degraded`` if one has fewer than configured after a failure (not while its first
        ones are still opening), else ``None`` (no opinion)."""
        pools = self.pools.values()
        if any(pool.up == 0 and pool.failed_ever for pool in pools):
            return "unavailable"
        if any(pool.up == 0 for pool in pools):
            return "starting"
        if any(pool.up < pool.count and pool.failed_ever for pool in pools):
            return "degraded"
        return None
