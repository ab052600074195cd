"""REST calls across several SignalR resources: every usable endpoint gets each send and group change.

Clients live on whichever endpoint negotiation gave them (a secondary, after a failover), so a
message for everyone, a user or a group goes to every endpoint its probes do not rule out,
primaries and secondaries alike, at once. A connection lives on one endpoint: the others answer
404, which means "not here", not an error. An existence check is true when any endpoint says so.

One endpoint behaves exactly as :class:`HubClient` does (its errors as they are); with several, a
failure at one is raised as :class:`EndpointDeliveryError` after every other endpoint was tried.

A connection-targeted call that exactly one endpoint took teaches the set where that connection
lives (:class:`ConnectionHomes`): its next calls go there alone, and back to every endpoint if that
one answers 404 or is no longer a target.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, TypeVar

import anyio

from ._connection_homes import ConnectionHomes
from ._errors import EndpointDeliveryError, ServiceError
from ._rest import HubClient, RestClient

__all__ = ["Delivery", "EndpointsHubClient", "MessageTargets"]

_T = TypeVar("_T")


class _Endpoint(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def rest(self) -> RestClient: ...


class MessageTargets(Protocol):
    """What the fan-out reads of the running endpoint set (``EndpointSet`` is one)."""

    def message_targets(self) -> Sequence[_Endpoint]: ...

    @property
    def connection_homes(self) -> ConnectionHomes: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """Which endpoints took a call: ``sent`` accepted it; ``not_found`` (connection-targeted calls
    only) answered that the connection is not theirs."""

    sent: tuple[str, ...]
    not_found: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Outcome:
    name: str
    value: object = None
    error: ServiceError | None = None


class EndpointsHubClient:
    """:class:`HubClient`'s calls, made at every endpoint a message may reach.

    Get one from ``request.state.signalr.hub("chat")`` when the app has several endpoints. Sends,
    group changes and closes return a :class:`Delivery`; existence checks a bool. Bad arguments
    raise :class:`InvalidInputError` before any request.
    """

    __slots__ = ("_endpoints", "_hub")

    def __init__(self, endpoints: MessageTargets, hub: str) -> None:
        self._endpoints = endpoints
        self._hub = hub

    @property
    def name(self) -> str:
        """The hub as the service knows it (the same at every endpoint)."""
        return self._clients()[0][1].name

    def __repr__(self) -> str:
        names = [endpoint.name for endpoint in self._endpoints.message_targets()]
        return f"EndpointsHubClient({self._hub!r}, endpoints={names!r})"

    def _clients(self) -> list[tuple[str, HubClient]]:
        targets = self._endpoints.message_targets()
        if not targets:
            msg = (
                f"No SignalR endpoint can take messages for hub {self._hub!r} now: every one is "
                "down by its health probes. See health()['endpoints']."
            )
            raise ServiceError(msg, status=503)
        # Made per call: a HubClient is a name and a reference; checks its arguments as well.
        return [(endpoint.name, HubClient(endpoint.rest, self._hub)) for endpoint in targets]

    async def _everywhere(
        self,
        call: Callable[[HubClient], Awaitable[_T]],
        *,
        doing: str,
        not_found: Callable[[object, ServiceError | None], bool] | None = None,
    ) -> tuple[list[_Outcome], list[str]]:
        clients = self._clients()
        if len(clients) == 1:
            # One endpoint: HubClient's behaviour and errors, unchanged.
            name, client = clients[0]
            return [_Outcome(name, await call(client))], []
        outcomes: dict[str, _Outcome] = {}

        async def attempt(name: str, client: HubClient) -> None:
            try:
                outcomes[name] = _Outcome(name, value=await call(client))
            except ServiceError as error:
                outcomes[name] = _Outcome(name, error=error)

        async with anyio.create_task_group() as group:
            for name, client in clients:
                group.start_soon(attempt, name, client)
        ordered = [outcomes[name] for name, _ in clients]
        missing = [o.name for o in ordered if not_found is not None and not_found(o.value, o.error)]
        failed = {o.name: o.error for o in ordered if o.error is not None and o.name not in missing}
        if failed:
            answered = tuple(o.name for o in ordered if o.name not in failed)
            raise EndpointDeliveryError(
                doing=f"{doing} in hub {clients[0][1].name!r}",
                sent=answered,
                failed=failed,
            )
        return [o for o in ordered if o.name not in missing], missing

    async def _deliver(self, call: Callable[[HubClient], Awaitable[None]], doing: str) -> Delivery:
        took, _ = await self._everywhere(call, doing=doing)
        return Delivery(sent=tuple(o.name for o in took))

    async def _to_connection(
        self,
        connection_id: str,
        call: Callable[[HubClient], Awaitable[None]],
        doing: str,
        *,
        closes: bool = False,
    ) -> Delivery:
        """A call for one connection: at the endpoint it is known to live on, else at every
        one, where a 404 means it lives elsewhere; at all of them, the 404 is raised as one
        endpoint raises it."""
        homes = self._endpoints.connection_homes
        home = homes.get(connection_id)
        delivery = None if home is None else await self._at_home(home, connection_id, call, doing)
        if delivery is None:
            took, missing = await self._everywhere(call, doing=doing, not_found=_is_not_found)
            if not took:
                error = ServiceError(
                    f"Connection not found at any endpoint ({', '.join(missing)}) while trying "
                    f"to {doing} in hub {self.name!r} (404 Not Found).",
                    status=404,
                )
                raise error
            delivery = Delivery(sent=tuple(o.name for o in took), not_found=tuple(missing))
            if len(took) == 1 and missing:
                homes.learn(connection_id, took[0].name)
        if closes:
            homes.forget(connection_id)
        return delivery

    async def _at_home(
        self,
        home: str,
        connection_id: str,
        call: Callable[[HubClient], Awaitable[None]],
        doing: str,
    ) -> Delivery | None:
        """The call at the endpoint ``connection_id`` lives on; ``None`` to ask every endpoint
        instead (that one is no longer a target, or no longer knows the connection)."""
        clients = self._clients()
        client = next((c for name, c in clients if name == home), None)
        if client is None or len(clients) == 1:
            self._endpoints.connection_homes.forget(connection_id)
            return None
        try:
            await call(client)
        except ServiceError as error:
            if error.status == 404:
                self._endpoints.connection_homes.forget(connection_id)
                return None
            # The connection is there and nowhere else: the others need not be asked.
            raise EndpointDeliveryError(
                doing=f"{doing} in hub {client.name!r}", sent=(), failed={home: error}
            ) from None
        return Delivery(sent=(home,))

    async def _any(
        self,
        call: Callable[[HubClient], Awaitable[bool]],
        doing: str,
        *,
        connection_id: str | None = None,
    ) -> bool:
        clients = self._clients()
        if len(clients) == 1:
            return await call(clients[0][1])
        answers: dict[str, bool] = {}
        failed: dict[str, ServiceError] = {}

        async def ask(name: str, client: HubClient) -> None:
            try:
                answers[name] = await call(client)
            except ServiceError as error:
                failed[name] = error

        async with anyio.create_task_group() as group:
            for name, client in clients:
                group.start_soon(ask, name, client)
        yes = [name for name, answer in answers.items() if answer]
        if connection_id is not None and len(yes) == 1:
            self._endpoints.connection_homes.learn(connection_id, yes[0])
        if yes:
            return True
        if failed:
            ordered = {name: failed[name] for name, _ in clients if name in failed}
            raise EndpointDeliveryError(
                doing=f"{doing} in hub {clients[0][1].name!r}",
                sent=tuple(name for name, _ in clients if name in answers),
                failed=ordered,
            )
        return False

    # -- messages ----------------------------------------------------------------------------

    async def send_to_all(
        self, target: str, *arguments: object, excluded: Sequence[str] = ()
    ) -> Delivery:
        """Invoke ``target(*arguments)`` on every client of the hub, at every endpoint."""
        return await self._deliver(
            lambda c: c.send_to_all(target, *arguments, excluded=excluded), "send to all"
        )

    async def send_to_user(self, user_id: str, target: str, *arguments: object) -> Delivery:
        return await self._deliver(
            lambda c: c.send_to_user(user_id, target, *arguments), "send to a user"
        )

    async def send_to_group(
        self, group: str, target: str, *arguments: object, excluded: Sequence[str] = ()
    ) -> Delivery:
        return await self._deliver(
            lambda c: c.send_to_group(group, target, *arguments, excluded=excluded),
            "send to a group",
        )

    async def send_to_users(
        self, user_ids: Iterable[str], target: str, *arguments: object
    ) -> Delivery:
        users = list(user_ids)
        return await self._deliver(
            lambda c: c.send_to_users(users, target, *arguments), "send to users"
        )

    async def send_to_groups(
        self,
        groups: Iterable[str],
        target: str,
        *arguments: object,
        excluded: Sequence[str] = (),
    ) -> Delivery:
        names = list(groups)
        return await self._deliver(
            lambda c: c.send_to_groups(names, target, *arguments, excluded=excluded),
            "send to groups",
        )

    async def send_to_connection(
        self, connection_id: str, target: str, *arguments: object
    ) -> Delivery:
        return await self._to_connection(
            connection_id,
            lambda c: c.send_to_connection(connection_id, target, *arguments),
            "send to a connection",
        )

    # -- groups ------------------------------------------------------------------------------

    async def add_connection_to_group(self, group: str, connection_id: str) -> Delivery:
        return await self._to_connection(
            connection_id,
            lambda c: c.add_connection_to_group(group, connection_id),
            "add a connection to a group",
        )

    async def remove_connection_from_group(self, group: str, connection_id: str) -> Delivery:
        return await self._deliver(
            lambda c: c.remove_connection_from_group(group, connection_id),
            "remove a connection from a group",
        )

    async def add_user_to_group(
        self, group: str, user_id: str, *, ttl: float | timedelta | None = None
    ) -> Delivery:
        return await self._deliver(
            lambda c: c.add_user_to_group(group, user_id, ttl=ttl), "add a user to a group"
        )

    async def remove_user_from_group(self, group: str, user_id: str) -> Delivery:
        return await self._deliver(
            lambda c: c.remove_user_from_group(group, user_id), "remove a user from a group"
        )

    async def remove_connection_from_all_groups(self, connection_id: str) -> Delivery:
        return await self._deliver(
            lambda c: c.remove_connection_from_all_groups(connection_id),
            "remove a connection from all groups",
        )

    async def remove_user_from_all_groups(self, user_id: str) -> Delivery:
        return await self._deliver(
            lambda c: c.remove_user_from_all_groups(user_id), "remove a user from all groups"
        )

    # -- existence ---------------------------------------------------------------------------

    async def connection_exists(self, connection_id: str) -> bool:
        """Whether any endpoint has the connection."""
        return await self._any(
            lambda c: c.connection_exists(connection_id),
            "check a connection",
            connection_id=connection_id,
        )

    async def user_exists(self, user_id: str) -> bool:
        """Whether the user has a connection at any endpoint."""
        return await self._any(lambda c: c.user_exists(user_id), "check a user")

    async def group_exists(self, group: str) -> bool:
        """Whether ``group`` has a connection at any endpoint."""
        return await self._any(lambda c: c.group_exists(group), "check a group")

    async def user_in_group(self, group: str, user_id: str) -> bool:
        """Whether the user belongs to ``group`` at any endpoint."""
        return await self._any(
            lambda c: c.user_in_group(group, user_id), "check a user's group membership"
        )

    # -- connections -------------------------------------------------------------------------

    async def close_connection(self, connection_id: str, *, reason: str | None = None) -> Delivery:
        return await self._to_connection(
            connection_id,
            lambda c: c.close_connection(connection_id, reason=reason),
            "close a connection",
            closes=True,
        )

    async def close_all_connections(
        self, *, excluded: Sequence[str] = (), reason: str | None = None
    ) -> Delivery:
        return await self._deliver(
            lambda c: c.close_all_connections(excluded=excluded, reason=reason),
            "close all connections",
        )

    async def close_group_connections(
        self, group: str, *, excluded: Sequence[str] = (), reason: str | None = None
    ) -> Delivery:
        return await self._deliver(
            lambda c: c.close_group_connections(group, excluded=excluded, reason=reason),
            "close a group's connections",
        )

    async def close_user_connections(
        self, user_id: str, *, excluded: Sequence[str] = (), reason: str | None = None
    ) -> Delivery:
        return await self._deliver(
            lambda c: c.close_user_connections(user_id, excluded=excluded, reason=reason),
            "close a user's connections",
        )


def _is_not_found(_value: object, error: ServiceError | None) -> bool:
    return error is not None and error.status == 404
