"""One reconnect attempt at a time across a pool, so that a restarting service is not stormed.

As .NET's ``BackOffPolicy``: when several connections want to reconnect, one of them (the prober)
tries while the others wait for its outcome. If it succeeds, each of them tries in turn at once;
if it fails, the prober holds its place until the backoff delay has passed since its attempt began,
and the next one to come probes. A service that is down thus sees one attempt per backoff step,
however many connections (and pools share nothing: one prober per hub, as in .NET).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from .._backoff import Backoff
from .._clock import Clock

__all__ = ["Prober"]


class _Probe:
    __slots__ = ("done", "succeeded")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.succeeded = False


class Prober:
    """Runs connect attempts one at a time, spaced by a shared, jittered backoff."""

    def __init__(self, backoff: Backoff, clock: Clock) -> None:
        self._backoff = backoff
        self._clock = clock
        self._current: _Probe | None = None
        self.failures = 0
        """Consecutive failed probes; 0 after a success."""
        self.next_attempt_at: float | None = None

    def __repr__(self) -> str:
        return f"Prober(failures={self.failures})"

    async def attempt(
        self, connect: Callable[[], Awaitable[bool]], *, retry_after: Callable[[], float | None]
    ) -> bool:
        """Call ``connect`` once, when it is this caller's turn; what it returned.

        ``retry_after`` gives, after a failure, a wait the service asked for (or ``None``).
        """
        while True:
            current = self._current
            if current is not None:
                await current.done.wait()
                if current.succeeded:
                    return await connect()
                continue  # it failed: probe next, or wait for whoever does
            probe = self._current = _Probe()
            started = self._clock.now()
            try:
                probe.succeeded = await connect()
                if probe.succeeded:
                    self.failures, self.next_attempt_at = 0, None
                    return True
                self.failures += 1
                delay = self._backoff.delay(self.failures, retry_after=retry_after())
                self.next_attempt_at = started + delay
                await self._clock.sleep(max(self.next_attempt_at - self._clock.now(), 0.0))
                return False
            finally:
                self._current = None
                probe.done.set()
