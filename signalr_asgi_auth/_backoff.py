"""Capped exponential backoff with full jitter, so that many workers do not retry in step."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Backoff"]

_MAX_EXPONENT = 64


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n`` (1-based): uniform in ``[initial/10, min(maximum, initial·2ⁿ⁻¹)]``.

    A ``Retry-After`` from the server is honoured as a lower bound, itself capped at ten times
    ``maximum`` so that a wild value cannot stall recovery for hours.
    """

    initial: float
    maximum: float
    random: Callable[[], float] = field(default=random.random, repr=False)

    def delay(self, failures: int, *, retry_after: float | None = None) -> float:
        # The exponent is capped: float * 2**1024 overflows, and a long outage counts that many failures.
        ceiling = min(self.maximum, self.initial * 2 ** min(max(failures - 1, 0), _MAX_EXPONENT))
        floor = min(self.initial / 10, ceiling)
        chosen: float = floor + float(self.random()) * (ceiling - floor)
        if retry_after is not None and retry_after > 0:
            chosen = max(chosen, min(retry_after, self.maximum * 10))
        return chosen
