"""The health probe of one endpoint: ``HEAD {server endpoint}/api/health``, no authentication.

The rule (the README's "Several endpoints" says it for users):

- a probe succeeds on any 2xx within ``health_check_timeout``; any other status, a transport error
  or a timeout is a failure;
- probes run every ``health_check_interval``, the first at startup; after a failure, and while the
  endpoint is down, every sixth of that, so that a change is confirmed quickly;
- two failures in a row take an endpoint down, two successes in a row bring it back up; before the
  first probe has answered, the endpoint counts as up.

So an outage shows within one interval, a sixth and two timeouts, and a recovery within a third of
an interval: both well inside three intervals.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import httpx2

from .._call_deadline import request_within
from .._clock import Clock
from .._endpoint import ServiceEndpoint
from .._keepers import isoformat

__all__ = ["CONFIRMATIONS", "HEALTH_API_VERSION", "HealthProbe"]

logger = logging.getLogger(__name__)

HEALTH_API_VERSION: Final = "2022-06-01"
CONFIRMATIONS: Final = 2
"""Probes in a row that must agree before the status changes."""
_FAST_FRACTION: Final = 6


class HealthProbe:
    """What the probes of one endpoint say, and the loop that asks."""

    def __init__(
        self,
        *,
        name: str,
        endpoint: ServiceEndpoint,
        http: httpx2.AsyncClient,
        clock: Clock,
        interval: float,
        timeout: float,
    ) -> None:
        self._name = name
        self._url = endpoint.server_url("/api/health")
        self._http = http
        self._clock = clock
        self.interval = interval
        self.fast_interval = interval / _FAST_FRACTION
        self._timeout = timeout
        self.up = True
        self.answered = False
        self.successes = 0
        self.failures = 0
        self.probes = 0
        self.last_probe_at: float | None = None
        self.last_result: str | None = None
        self.last_error: str | None = None
        self.changed_at: float | None = None
        self.next_probe_at: float | None = None

    def __repr__(self) -> str:
        return f"HealthProbe({self._url!r}, up={self.up})"

    async def run(self) -> None:
        """Probe now, then forever on the schedule; started in the owning task group."""
        while True:
            await self.probe()
            await self._clock.sleep(max((self.next_probe_at or 0.0) - self._clock.now(), 0.0))

    async def probe(self) -> bool:
        """One probe; whether it succeeded. Records it and schedules the next."""
        problem = await self._ask()
        now = self._clock.now()
        self.probes += 1
        self.answered = True
        self.last_probe_at = now
        if problem is None:
            self.successes += 1
            self.failures = 0
            self.last_result = "ok"
            if not self.up and self.successes >= CONFIRMATIONS:
                self._change(True, now)
        else:
            self.failures += 1
            self.successes = 0
            self.last_result = "failed"
            self.last_error = problem
            if self.up and self.failures >= CONFIRMATIONS:
                self._change(False, now)
        steady = self.up and self.failures == 0
        self.next_probe_at = now + (self.interval if steady else self.fast_interval)
        return problem is None

    async def _ask(self) -> str | None:
        """``None`` when the service says it is healthy, else why not."""
        try:
            response = await request_within(
                self._http,
                "HEAD",
                self._url,
                params={"api-version": HEALTH_API_VERSION},
                timeout=self._timeout,
            )
        except httpx2.TimeoutException:
            return f"no answer within {self._timeout:g} s"
        except httpx2.HTTPError as exc:
            return f"{type(exc).__name__} reaching {self._url}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def _change(self, up: bool, now: float) -> None:
        self.up = up
        self.changed_at = now
        if up:
            logger.warning(
                "SignalR endpoint %r is healthy again: it takes negotiations.", self._name
            )
        else:
            logger.warning(
                "SignalR endpoint %r failed %d health probes in a row (%s): no negotiations go "
                "there until it recovers.",
                self._name,
                self.failures,
                self.last_error,
            )

    @property
    def problem(self) -> str | None:
        """Why the probes rule the endpoint out, or ``None``."""
        if self.up:
            return None
        return f"its health probe failed {self.failures} times in a row ({self.last_error})"

    def retry_after(self, now: float) -> float:
        """Seconds until the next probe may change the verdict."""
        due = self.next_probe_at
        return self.fast_interval if due is None else max(due - now, 0.0)

    def health(self) -> dict[str, Any]:
        return {
            "status": "up" if self.up else "down",
            "answered": self.answered,
            "last_probe_at": isoformat(self.last_probe_at),
            "last_result": self.last_result,
            "last_error": self.last_error,
            "consecutive_failures": self.failures,
            "next_probe_at": isoformat(self.next_probe_at),
        }
