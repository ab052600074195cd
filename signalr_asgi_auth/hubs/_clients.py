"""Who a message goes to (``clients.all``, ``.user(id)``, ``.group(name)``...) and group
membership, over whichever way the hub reaches the service: server connections or the REST API.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol, TypeAlias

from .._durations import to_seconds
from .._errors import InvalidInputError
from .._names import check_id

__all__ = [
    "Audience",
    "CallClients",
    "CallGroups",
    "ClientProxy",
    "HubClients",
    "HubGroups",
    "SingleClientProxy",
    "Transport",
]

AudienceKind: TypeAlias = Literal["all", "connections", "user", "users", "group", "groups"]
DEFAULT_RESULT_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Audience:
    """The receivers of one send: ``names`` are connection, user or group ids by ``kind``;
    ``excluded`` are connection ids left out (``all`` and ``group`` only)."""

    kind: AudienceKind
    names: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()


class Transport(Protocol):
    """How a hub reaches the service: its server connections, or the REST API (Serverless)."""

    async def send(self, audience: Audience, target: str, arguments: tuple[Any, ...]) -> None: ...

    async def invoke(
        self, connection_id: str, target: str, arguments: tuple[Any, ...], seconds: float
    ) -> Any: ...

    async def join(self, connection_id: str, group: str) -> None: ...

    async def leave(self, connection_id: str, group: str) -> None: ...


def _ids(values: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        msg = f"{what} must be a list of ids, not a single string or other value."
        raise InvalidInputError(msg)
    return tuple(check_id(value, f"Each of {what}") for value in values)


class ClientProxy:
    """Some clients of the hub: ``await proxy.send("method", *arguments)`` invokes ``method`` on
    each of them, without waiting for an answer."""

    __slots__ = ("_audience", "_transport")

    def __init__(self, transport: Transport, audience: Audience) -> None:
        self._transport = transport
        self._audience = audience

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._audience.kind}, {list(self._audience.names)!r})"

    async def send(self, target: str, *arguments: Any) -> None:
        """Invoke ``target(*arguments)`` on these clients (the JavaScript client's
        ``connection.on(target, ...)``). Arguments must be JSON values (and ``bytes`` for
        MessagePack clients)."""
        target = check_id(target, "target (the client method to invoke)")
        await self._transport.send(self._audience, target, arguments)


class SingleClientProxy(ClientProxy):
    """One client connection; besides ``send`` it can be asked for a result with ``invoke``."""

    __slots__ = ()

    async def invoke(
        self,
        target: str,
        *arguments: Any,
        timeout: float | timedelta = DEFAULT_RESULT_TIMEOUT,  # noqa: ASYNC109 - the client's deadline
    ) -> Any:
        """Invoke ``target(*arguments)`` on the client and return what its handler returns
        (``connection.on(target, ...)`` returning a value, in ``@microsoft/signalr`` 7+).

        Raises :class:`HubMethodError` with the client's error when its handler fails (or it has
        no handler), :class:`TimeoutError` when it has not answered within ``timeout`` seconds
        (or has gone), and :class:`RuntimeError` in Serverless mode, where the service cannot
        carry client results over upstream requests.
        """
        target = check_id(target, "target (the client method to invoke)")
        seconds = to_seconds(timeout, name="timeout", error=InvalidInputError, maximum=3600)
        return await self._transport.invoke(self._audience.names[0], target, arguments, seconds)


class HubClients:
    """All the ways to address a hub's clients; ``hub.clients`` (outside a call) and the base of
    ``call.clients``."""

    __slots__ = ("_transport",)

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    @property
    def all(self) -> ClientProxy:
        """Every client of the hub."""
        return ClientProxy(self._transport, Audience("all"))

    def all_except(self, connection_ids: Iterable[str]) -> ClientProxy:
        """Every client but these connections."""
        excluded = _ids(connection_ids, "connection_ids")
        return ClientProxy(self._transport, Audience("all", excluded=excluded))

    def connection(self, connection_id: str) -> SingleClientProxy:
        """One client connection (``invoke`` asks it for a result)."""
        audience = Audience("connections", (check_id(connection_id, "connection_id"),))
        return SingleClientProxy(self._transport, audience)

    def connections(self, connection_ids: Iterable[str]) -> ClientProxy:
        """These client connections."""
        return ClientProxy(
            self._transport, Audience("connections", _ids(connection_ids, "connection_ids"))
        )

    def user(self, user_id: str) -> ClientProxy:
        """Every connection of this user."""
        return ClientProxy(self._transport, Audience("user", (check_id(user_id, "user_id"),)))

    def users(self, user_ids: Iterable[str]) -> ClientProxy:
        """Every connection of these users."""
        return ClientProxy(self._transport, Audience("users", _ids(user_ids, "user_ids")))

    def group(self, name: str) -> ClientProxy:
        """Every connection in this group."""
        return ClientProxy(self._transport, Audience("group", (check_id(name, "group"),)))

    def group_except(self, name: str, connection_ids: Iterable[str]) -> ClientProxy:
        """Every connection in this group but these."""
        excluded = _ids(connection_ids, "connection_ids")
        audience = Audience("group", (check_id(name, "group"),), excluded)
        return ClientProxy(self._transport, audience)

    def groups(self, names: Iterable[str]) -> ClientProxy:
        """Every connection in any of these groups (once each)."""
        return ClientProxy(self._transport, Audience("groups", _ids(names, "groups")))


class CallClients(HubClients):
    """``call.clients``: :class:`HubClients` plus the caller and everyone else."""

    __slots__ = ("_caller",)

    def __init__(self, transport: Transport, caller: str) -> None:
        super().__init__(transport)
        self._caller = caller

    @property
    def caller(self) -> SingleClientProxy:
        """The client connection that made this call."""
        return SingleClientProxy(self._transport, Audience("connections", (self._caller,)))

    @property
    def others(self) -> ClientProxy:
        """Every client of the hub but the caller."""
        return ClientProxy(self._transport, Audience("all", excluded=(self._caller,)))

    def others_in_group(self, name: str) -> ClientProxy:
        """Every connection in this group but the caller."""
        audience = Audience("group", (check_id(name, "group"),), (self._caller,))
        return ClientProxy(self._transport, audience)


class HubGroups:
    """Group membership of any connection: ``hub.groups``. Each change is acknowledged by the
    service before the call returns (over server connections) or answered by the REST API."""

    __slots__ = ("_transport",)

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    async def add(self, connection_id: str, group: str) -> None:
        """Add a connection to ``group``."""
        await self._transport.join(
            check_id(connection_id, "connection_id"), check_id(group, "group")
        )

    async def remove(self, connection_id: str, group: str) -> None:
        """Remove a connection from ``group``."""
        await self._transport.leave(
            check_id(connection_id, "connection_id"), check_id(group, "group")
        )


class CallGroups:
    """``call.groups``: the caller's group membership."""

    __slots__ = ("_caller", "_transport")

    def __init__(self, transport: Transport, caller: str) -> None:
        self._transport = transport
        self._caller = caller

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._caller!r})"

    async def add(self, group: str) -> None:
        """Add the caller to ``group``; returns once the service has done it."""
        await self._transport.join(self._caller, check_id(group, "group"))

    async def remove(self, group: str) -> None:
        """Remove the caller from ``group``; returns once the service has done it."""
        await self._transport.leave(self._caller, check_id(group, "group"))
