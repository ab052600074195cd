"""The emulator's request log, with secrets redacted before anything is stored, and bounded: it
keeps the most recent :data:`LOG_ENTRIES` requests, so that a long-running emulator (or a flood of
negotiations) does not grow without end."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, overload

from starlette.requests import HTTPConnection

__all__ = [
    "LOG_ENTRIES",
    "REDACTED",
    "LogEntry",
    "RequestLog",
    "attribute",
    "attributed_principal",
    "redact",
]

LOG_ENTRIES: Final = 10_000
"""How many requests the log keeps: the most recent ones."""

REDACTED = "[redacted]"

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-identity-header", "secret"}
)
_SECRET_QUERY = frozenset({"access_token", "client_secret", "code", "sig", "signature", "token"})


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One request a route answered.

    Header names are lower-case, as ASGI delivers them. Secret header and query values (bearer
    tokens, the identity header, ``access_token``) are stored as ``"[redacted]"``, so that a log
    printed by a failing test leaks nothing.
    """

    route: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int
    principal_oid: str | None
    at: float


def attribute(request: HTTPConnection, principal_oid: str) -> None:
    """Name the principal a request acted for (a token's ``oid``), for its log entry."""
    request.state.principal_oid = principal_oid


def attributed_principal(request: HTTPConnection) -> str | None:
    oid: str | None = getattr(request.state, "principal_oid", None)
    return oid


def redact(pairs: Iterable[tuple[str, str]], secret_names: frozenset[str]) -> dict[str, str]:
    return {name: REDACTED if name.lower() in secret_names else value for name, value in pairs}


class RequestLog:
    """The requests the emulator's routes answered, the most recent ``max_entries``, oldest first
    (list-like, thread-safe)."""

    def __init__(self, max_entries: int = LOG_ENTRIES) -> None:
        self._lock = threading.Lock()
        self._entries: deque[LogEntry] = deque(maxlen=max_entries)
        self._listeners: list[Callable[[LogEntry], None]] = []

    def add_listener(self, listener: Callable[[LogEntry], None]) -> None:
        """Call ``listener`` with each new entry (already redacted), in the server's thread."""
        with self._lock:
            self._listeners.append(listener)

    def record(
        self,
        *,
        route: str,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        headers: Iterable[tuple[str, str]],
        status: int,
        principal_oid: str | None,
        at: float,
    ) -> LogEntry:
        entry = LogEntry(
            route=route,
            method=method,
            path=path,
            query=redact(query, _SECRET_QUERY),
            headers=redact(headers, _SECRET_HEADERS),
            status=status,
            principal_oid=principal_oid,
            at=at,
        )
        with self._lock:
            self._entries.append(entry)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(entry)
        return entry

    def _snapshot(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def count(self, route: str) -> int:
        """How many requests ``route`` answered."""
        return len(self.entries(route))

    def entries(self, route: str) -> list[LogEntry]:
        return [entry for entry in self._snapshot() if entry.route == route]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(self._snapshot())

    @overload
    def __getitem__(self, index: int) -> LogEntry: ...
    @overload
    def __getitem__(self, index: slice) -> list[LogEntry]: ...
    def __getitem__(self, index: int | slice) -> LogEntry | list[LogEntry]:
        if isinstance(index, slice):
            return self._snapshot()[index]
        with self._lock:
            return self._entries[index]

    def __repr__(self) -> str:
        return f"RequestLog({len(self)} entries)"
