"""Which endpoint each client connection lives on, learnt from REST fan-out, kept for the next call."""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

__all__ = ["ConnectionHomes"]

MAX_CONNECTIONS: Final = 10_000
"""Connections remembered at most (the least recently used are forgotten first): about 1 MB."""


class ConnectionHomes:
    """Connection id → the name of the endpoint that holds it.

    A connection id belongs to one resource for the connection's whole life, so once a call for
    it was taken by exactly one endpoint, the next calls for it need ask only that one. Nothing
    here is a secret: connection ids are what the service hands clients.
    """

    __slots__ = ("_homes", "_limit")

    def __init__(self, limit: int = MAX_CONNECTIONS) -> None:
        self._homes: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def __len__(self) -> int:
        return len(self._homes)

    def get(self, connection_id: str) -> str | None:
        home = self._homes.get(connection_id)
        if home is not None:
            self._homes.move_to_end(connection_id)
        return home

    def learn(self, connection_id: str, endpoint: str) -> None:
        self._homes[connection_id] = endpoint
        self._homes.move_to_end(connection_id)
        if len(self._homes) > self._limit:
            self._homes.popitem(last=False)

    def forget(self, connection_id: str) -> None:
        self._homes.pop(connection_id, None)
