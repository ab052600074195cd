"""Fault injection: answer a route's next requests late, with another status or a broken body."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Mapping

from starlette.responses import Response

__all__ = ["Fault", "FaultTable"]

_SENDABLE_CLOSE_CODES = frozenset([*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)])


class Fault:
    """What to do instead of (or before) a route's real handler, for its next ``times`` requests.

    ``delay`` seconds pass first. Then, if ``status`` or ``body`` is set, that is the answer and the
    real handler does not run; otherwise the real handler answers and ``headers`` are added to its
    response. On a WebSocket route, ``close`` (a WebSocket close code) accepts the upgrade and
    closes the socket at once. ``times=None`` keeps the fault until it is removed; ``applied``
    counts the requests it has answered so far.
    """

    __slots__ = ("applied", "body", "close", "delay", "headers", "route", "status", "times")

    def __init__(
        self,
        route: str,
        *,
        status: int | None = None,
        delay: float = 0,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
        close: int | None = None,
    ) -> None:
        if status is not None and not 100 <= status <= 599:
            msg = f"A fault's status must be an HTTP status code (100-599), got {status!r}."
            raise ValueError(msg)
        if delay < 0:
            msg = f"A fault's delay must be zero or more seconds, got {delay!r}."
            raise ValueError(msg)
        if times is not None and times < 1:
            msg = f"A fault applies at least once (times >= 1) or until removed (None): {times!r}."
            raise ValueError(msg)
        if close is not None and close not in _SENDABLE_CLOSE_CODES:
            msg = (
                "A fault's close must be a WebSocket close code a server may send (1000-1003, "
                f"1007-1014, 3000-4999), got {close!r}."
            )
            raise ValueError(msg)
        if status is None and body is None and not delay and not headers and close is None:
            msg = (
                "A fault needs a status, a body, a delay, headers or a close code; this one "
                "changes nothing."
            )
            raise ValueError(msg)
        self.route = route
        self.status = status
        self.delay = delay
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = dict(headers or {})
        self.times = times
        self.close = close
        self.applied = 0

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.applied >= self.times

    @property
    def replaces_handler(self) -> bool:
        return self.status is not None or self.body is not None

    def response(self) -> Response:
        """The answer given instead of the real handler's (only when :attr:`replaces_handler`)."""
        status = 200 if self.status is None else self.status
        body = self.body
        if body is None:
            error = {"code": "InjectedFault", "message": f"Fault injected on route {self.route!r}."}
            body = json.dumps(error).encode()
        headers = dict(self.headers)
        if not any(name.lower() == "content-type" for name in headers):
            # A malformed body is most useful when it claims to be JSON, as a broken server's does.
            headers["Content-Type"] = "application/json"
        return Response(body, status_code=status, headers=headers)

    def __repr__(self) -> str:
        return (
            f"Fault(route={self.route!r}, status={self.status!r}, delay={self.delay!r}, "
            f"body={self.body!r}, close={self.close!r}, times={self.times!r}, "
            f"applied={self.applied!r})"
        )


class FaultTable:
    """The active faults, shared between the test thread (adding) and the server thread (taking)."""

    def __init__(self, routes: Collection[str], websocket_routes: Collection[str] = ()) -> None:
        self._routes = frozenset(routes)
        self._websocket_routes = frozenset(websocket_routes)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        if fault.route not in self._routes:
            known = ", ".join(sorted(self._routes))
            msg = f"Unknown route {fault.route!r}; the emulator's routes are {known}."
            raise ValueError(msg)
        if fault.close is not None and fault.route not in self._websocket_routes:
            routes = ", ".join(sorted(self._websocket_routes))
            msg = f"close applies to the WebSocket routes ({routes}), not {fault.route!r}."
            raise ValueError(msg)
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        """Remove ``fault``; removing one that has run out or was removed already is fine."""
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, route: str) -> Fault | None:
        """The first fault for ``route``, counted as applied once (and dropped when used up)."""
        with self._lock:
            for fault in self._faults:
                if fault.route == route:
                    fault.applied += 1
                    if fault.exhausted:
                        self._faults.remove(fault)
                    return fault
        return None
