"""The messages of the SignalR hub protocol, between a client and the hub (through the service).

Named as in dotnet/aspnetcore's ``HubProtocol.md``; ``HubPing`` and ``HubClose`` say "hub" so as not
to clash with the service protocol's ``Ping`` and ``CloseConnection``. Argument and result values are
what JSON or MessagePack hold (None, bool, int, float, str, bytes, lists, dicts); a client's arrays
read as lists. Ack (8) and Sequence (9) belong to stateful reconnect, which we do not offer: the
readers skip them, as they skip message types they do not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "CancelInvocation",
    "Completion",
    "HubClose",
    "HubMessage",
    "HubPing",
    "Invocation",
    "StreamInvocation",
    "StreamItem",
]

HubHeaders = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Invocation:
    """A call of ``target``. Without ``invocation_id`` it is non-blocking: no Completion answers it."""

    TYPE: ClassVar[int] = 1
    target: str
    arguments: tuple[Any, ...] = ()
    invocation_id: str | None = None
    stream_ids: tuple[str, ...] = ()
    headers: HubHeaders = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamInvocation:
    """A call answered by StreamItem messages, then a Completion without result."""

    TYPE: ClassVar[int] = 4
    invocation_id: str
    target: str
    arguments: tuple[Any, ...] = ()
    stream_ids: tuple[str, ...] = ()
    headers: HubHeaders = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamItem:
    TYPE: ClassVar[int] = 2
    invocation_id: str
    item: Any = None
    headers: HubHeaders = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Completion:
    """The end of an invocation: an ``error``, a ``result`` (``has_result``; it may be None), or
    neither (a void method, or the end of a stream). Build one with the class methods."""

    TYPE: ClassVar[int] = 3
    invocation_id: str
    result: Any = None
    error: str | None = None
    has_result: bool = False
    headers: HubHeaders = field(default_factory=dict)

    @classmethod
    def with_result(cls, invocation_id: str, result: Any) -> Completion:
        return cls(invocation_id, result, None, True)

    @classmethod
    def with_error(cls, invocation_id: str, error: str) -> Completion:
        return cls(invocation_id, None, error, False)

    @classmethod
    def void(cls, invocation_id: str) -> Completion:
        return cls(invocation_id)


@dataclass(frozen=True, slots=True)
class CancelInvocation:
    """The caller no longer wants the results; the callee still sends a Completion."""

    TYPE: ClassVar[int] = 5
    invocation_id: str
    headers: HubHeaders = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HubPing:
    """A keep-alive; either side sends one when it has been quiet for a while."""

    TYPE: ClassVar[int] = 6


@dataclass(frozen=True, slots=True)
class HubClose:
    """The connection ends; ``allow_reconnect`` tells a client with automatic reconnect to try again."""

    TYPE: ClassVar[int] = 7
    error: str | None = None
    allow_reconnect: bool = False


HubMessage = (
    Invocation | StreamInvocation | StreamItem | Completion | CancelInvocation | HubPing | HubClose
)
"""Every hub-protocol message the readers return and the writers take."""
