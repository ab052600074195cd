"""The call object a hub handler gets first: who called, and the ways to answer the hub's clients."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Final, Literal, TypeAlias
from urllib.parse import parse_qsl

from ._clients import CallClients, CallGroups, Transport

__all__ = ["Details", "HubCall", "Mode", "claims_of", "headers_of", "query_of"]

Mode: TypeAlias = Literal["default", "serverless"]
Details: TypeAlias = tuple[
    Mapping[str, tuple[str, ...]], Mapping[str, tuple[str, ...]], Mapping[str, tuple[str, ...]]
]
"""A client's claims, query and headers."""

_EMPTY: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType({})
_USER_ID: Final = "asrs.s.uid"
_SYSTEM: Final = "asrs.s."
_RENAMED: Final = "asrs.u."  # a user claim whose name clashed with a reserved one, as minted
# The client's own SignalR token rides in the query of browser WebSockets; the app never needs it.
_DROPPED_QUERY: Final = frozenset({"access_token"})


def claims_of(pairs: Iterable[tuple[str, str]]) -> tuple[str | None, Mapping[str, tuple[str, ...]]]:
    """The user id and the user's claims from an OpenConnection's claim pairs, as the .NET SDK
    reads them: ``asrs.s.uid`` is the user id, other ``asrs.s.*`` claims are the service's own and
    left out, ``asrs.u.X`` is the user's claim ``X``. A claim type given twice keeps both values."""
    user_id: str | None = None
    claims: dict[str, list[str]] = {}
    for name, value in pairs:
        if name == _USER_ID:
            user_id = user_id or value or None
        elif name.startswith(_SYSTEM):
            continue
        else:
            claims.setdefault(name.removeprefix(_RENAMED), []).append(value)
    if not claims:
        return user_id, _EMPTY
    return user_id, MappingProxyType({name: tuple(values) for name, values in claims.items()})


def query_of(query_string: str) -> Mapping[str, tuple[str, ...]]:
    """The client's query string by name, without ``access_token``."""
    query: dict[str, list[str]] = {}
    for name, value in parse_qsl(query_string.removeprefix("?"), keep_blank_values=True):
        if name not in _DROPPED_QUERY:
            query.setdefault(name, []).append(value)
    if not query:
        return _EMPTY
    return MappingProxyType({name: tuple(values) for name, values in query.items()})


def headers_of(headers: Mapping[str, tuple[str, ...]]) -> Mapping[str, tuple[str, ...]]:
    """The client's HTTP headers with lower-cased names."""
    if not headers:
        return _EMPTY
    lowered: dict[str, tuple[str, ...]] = {}
    for name, values in headers.items():
        key = name.lower()
        lowered[key] = lowered.get(key, ()) + tuple(values)
    return MappingProxyType(lowered)


class HubCall:
    """What a hub handler gets as its first argument.

    ``connection_id`` is the calling client connection, ``user_id`` the user its token names (or
    ``None``), ``claims``, ``query`` and ``headers`` what the client connected with (each name maps
    to a tuple of values; header names are lower-case; in Serverless mode the service does not
    forward headers, so ``headers`` is empty). ``clients`` and ``groups`` answer and organise the
    hub's clients. ``mode`` says how the call arrived: ``"default"`` (server connections) or
    ``"serverless"`` (an upstream request).
    """

    __slots__ = (
        "_details",
        "_load",
        "clients",
        "connection_id",
        "groups",
        "hub",
        "invocation_id",
        "mode",
        "user_id",
    )

    def __init__(
        self,
        *,
        hub: str,
        connection_id: str,
        user_id: str | None,
        details: Callable[[], Details],
        transport: Transport,
        mode: Mode,
        invocation_id: str | None = None,
    ) -> None:
        self.hub = hub
        self.connection_id = connection_id
        self.user_id = user_id
        # Read from what the service sent only when a handler asks: most never do.
        self._load = details
        self._details: Details | None = None
        self.clients = CallClients(transport, connection_id)
        self.groups = CallGroups(transport, connection_id)
        self.mode = mode
        self.invocation_id = invocation_id
        """The client's invocation id when it awaits a result; ``None`` for ``send``."""

    def _read(self) -> Details:
        if self._details is None:
            self._details = self._load()
        return self._details

    @property
    def claims(self) -> Mapping[str, tuple[str, ...]]:
        """The connection's claims by type (the service's own ``asrs.s.*`` left out)."""
        return self._read()[0]

    @property
    def query(self) -> Mapping[str, tuple[str, ...]]:
        """The client's query string by name, without ``access_token``."""
        return self._read()[1]

    @property
    def headers(self) -> Mapping[str, tuple[str, ...]]:
        """The client's HTTP headers by lower-case name (empty in Serverless mode)."""
        return self._read()[2]

    def claim(self, claim_type: str) -> str | None:
        """The first value of ``claim_type``, or ``None``."""
        values = self.claims.get(claim_type)
        return values[0] if values else None

    def __repr__(self) -> str:
        return (
            f"HubCall(hub={self.hub!r}, connection_id={self.connection_id!r}, "
            f"user_id={self.user_id!r}, mode={self.mode!r})"
        )
