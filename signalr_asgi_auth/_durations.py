"""Reading durations given as seconds or ``timedelta``, in code or on the command line."""

from __future__ import annotations

import argparse
import math
from datetime import timedelta

from ._errors import ConfigurationError

__all__ = ["Duration", "seconds_argument", "to_seconds"]

Duration = float | timedelta
"""Seconds as ``int``/``float``, or a ``timedelta``."""


def to_seconds(
    value: object,
    *,
    name: str,
    error: type[ValueError] = ConfigurationError,
    allow_zero: bool = False,
    maximum: float | None = None,
) -> float:
    """``value`` in seconds, checked: a finite number (or ``timedelta``) above zero, at most ``maximum``."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, float):
        seconds = float(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond 1e308: as good as infinite, and refused as such
            seconds = math.inf if value > 0 else -math.inf
    else:
        msg = f"{name} must be a number of seconds or a timedelta, not {type(value).__name__}."
        raise error(msg)
    if not math.isfinite(seconds):
        msg = f"{name} must be a finite number of seconds."
        raise error(msg)
    if seconds < 0 or (seconds == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        msg = f"{name} must be {bound} seconds, got {seconds:g}."
        raise error(msg)
    if maximum is not None and seconds > maximum:
        msg = f"{name} must be at most {maximum:g} seconds, got {seconds:g}."
        raise error(msg)
    return seconds


def seconds_argument(text: str) -> float:
    """A command-line option's seconds (``type=`` for ``argparse``): checked as ``to_seconds``
    checks a duration, so that ``nan``, ``inf`` or ``0`` get argparse's usage line and a reason,
    never a traceback."""
    try:
        return to_seconds(float(text), name="seconds", error=ValueError)
    except ValueError:  # float()'s, or to_seconds'
        msg = f"must be a finite number of seconds above zero, not {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
