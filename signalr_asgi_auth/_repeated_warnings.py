"""Warnings that repeat while an outage lasts: logged once, then summed up once a minute."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable

__all__ = ["RepeatedWarnings"]


class RepeatedWarnings:
    """Logs ``"{prefix}: {message}"`` at WARNING the first time, and again when the message
    changes; while the same message repeats, at most once per ``interval`` seconds, with how many
    times it repeated meanwhile. The repeats in between go to DEBUG.

    A failed negotiation is logged this way: during an outage every negotiation fails the same way,
    and a busy app would otherwise write a warning per request. Where the caller chooses the
    message (a refused upstream request names the forged ``kid``), ``warn(..., key=...)`` says
    what counts as the same warning instead.
    """

    def __init__(
        self,
        logger: logging.Logger,
        prefix: str,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._prefix = prefix
        self._interval = interval
        self._clock = clock
        self._key: Hashable = None
        self._logged_at = 0.0
        self._repeats = 0

    def __repr__(self) -> str:
        return f"RepeatedWarnings({self._prefix!r}, interval={self._interval})"

    def warn(self, message: str, *, key: Hashable = None) -> None:
        """Log ``message``; ``key`` (the message itself by default) says what repeats it."""
        now = self._clock()
        key = message if key is None else key
        if key != self._key:
            self._key, self._logged_at, self._repeats = key, now, 0
            self._logger.warning("%s: %s", self._prefix, message)
        elif now - self._logged_at >= self._interval:
            repeats, self._logged_at, self._repeats = self._repeats, now, 0
            self._logger.warning(
                "%s: %s (%d more times since the last warning)", self._prefix, message, repeats + 1
            )
        else:
            self._repeats += 1
            self._logger.debug("%s: %s", self._prefix, message)
