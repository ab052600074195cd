"""Which endpoint a negotiation goes to: the :class:`EndpointRouter` protocol and two routers.

A router is asked once per negotiation, with the endpoints usable now; it must not do I/O (it runs
on the negotiate hot path) and answers synchronously.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from ._config import EndpointType

__all__ = ["DefaultRouter", "EndpointInfo", "EndpointRouter", "RouteRequest", "StickyByUserRouter"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """What a router knows of an endpoint: its name, type and addresses."""

    name: str
    type: EndpointType
    endpoint: str
    client_endpoint: str


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """One negotiation: the hub, the user (``None`` for anonymous clients) and, when negotiation
    runs in a request, its Starlette ``Request`` (headers, query, client address: a region, say)."""

    hub: str
    user_id: str | None
    request: Any = None


@runtime_checkable
class EndpointRouter(Protocol):
    """Chooses the endpoint of a negotiation among ``endpoints`` (never empty: the usable ones).

    Return one of them, or ``None`` to leave the choice to :class:`DefaultRouter`.
    """

    def choose(
        self, request: RouteRequest, endpoints: Sequence[EndpointInfo]
    ) -> EndpointInfo | None: ...


def preferred(endpoints: Sequence[EndpointInfo]) -> Sequence[EndpointInfo]:
    """The usable primaries, else (none of them usable) the usable secondaries."""
    primaries = [endpoint for endpoint in endpoints if endpoint.type == "primary"]
    return primaries or endpoints


class DefaultRouter:
    """At random among the usable primaries; among the usable secondaries while no primary is
    usable (the .NET SDK's rule, without its capacity weights, which REST cannot see)."""

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._choice = (rng or random.Random()).choice

    def __repr__(self) -> str:
        return "DefaultRouter()"

    def choose(self, request: RouteRequest, endpoints: Sequence[EndpointInfo]) -> EndpointInfo:
        return self.pick(preferred(endpoints))

    def pick(self, candidates: Sequence[_T]) -> _T:
        """One of ``candidates`` (already the preferred ones) at random."""
        return candidates[0] if len(candidates) == 1 else self._choice(candidates)


class StickyByUserRouter:
    """The same endpoint for a user every time, in every worker, without shared state.

    Rendezvous hashing: each usable endpoint (primaries first, as the default router) scores
    ``hash(endpoint, user)``, the highest wins. When an endpoint goes down only its users move
    (each to their next-highest), and they come back when it recovers; the others never move.
    Anonymous negotiations go to :class:`DefaultRouter`.
    """

    def __init__(self, *, fallback: EndpointRouter | None = None) -> None:
        self._fallback = fallback or DefaultRouter()

    def __repr__(self) -> str:
        return "StickyByUserRouter()"

    def choose(
        self, request: RouteRequest, endpoints: Sequence[EndpointInfo]
    ) -> EndpointInfo | None:
        if request.user_id is None:
            return self._fallback.choose(request, endpoints)
        user = request.user_id.encode()
        return max(preferred(endpoints), key=lambda endpoint: _score(endpoint, user))


def _score(endpoint: EndpointInfo, user: bytes) -> bytes:
    # blake2b, not hash(): the score must be the same in every process (hash() is salted).
    return hashlib.blake2b(endpoint.endpoint.encode() + b"\0" + user, digest_size=8).digest()
