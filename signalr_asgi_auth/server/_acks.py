"""Waiting for the service's ``Ack`` of a message sent with an ack id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import anyio

from ..protocol import Ack

__all__ = ["AckTable", "AckWaiter"]

_MAX_ACK_ID: Final = 2**31 - 1
"""Ack ids are int32 on the wire; they wrap around (an id still waited for is skipped)."""


@dataclass(slots=True)
class AckWaiter:
    ack_id: int
    connection_id: str
    done: anyio.Event = field(default_factory=anyio.Event)
    ack: Ack | None = None
    lost: str | None = None
    """Why no ack will come: the connection it was sent on ended."""


class AckTable:
    """Ack ids handed out and the waiters for them, for one pool."""

    def __init__(self) -> None:
        self._next = 0
        self._waiting: dict[int, AckWaiter] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def register(self, connection_id: str) -> AckWaiter:
        while True:
            self._next = self._next % _MAX_ACK_ID + 1
            if self._next not in self._waiting:
                break
        waiter = self._waiting[self._next] = AckWaiter(self._next, connection_id)
        return waiter

    def forget(self, waiter: AckWaiter) -> None:
        if self._waiting.get(waiter.ack_id) is waiter:
            del self._waiting[waiter.ack_id]

    def resolve(self, ack: Ack) -> None:
        """Hand ``ack`` to its waiter; an ack nobody waits for (timed out) is dropped."""
        waiter = self._waiting.pop(ack.ack_id, None)
        if waiter is not None:
            waiter.ack = ack
            waiter.done.set()

    def connection_lost(self, connection_id: str, reason: str) -> None:
        """Wake everyone waiting for an ack on that connection: none will come."""
        for ack_id, waiter in list(self._waiting.items()):
            if waiter.connection_id == connection_id:
                del self._waiting[ack_id]
                waiter.lost = reason
                waiter.done.set()
