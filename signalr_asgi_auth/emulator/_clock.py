"""The emulator's clock: real time plus an offset that tests move forward."""

from __future__ import annotations

import time

__all__ = ["EmulatorClock"]


class EmulatorClock:
    """Epoch seconds as the emulator sees them.

    It follows the wall clock, shifted by ``offset``, rather than standing still: the real
    azure-identity compares the tokens we issue with its own ``time.time()``, so they must look
    current to it. Tests move the emulator into the future with :meth:`advance` to expire tokens and
    keys without sleeping.
    """

    __slots__ = ("offset",)

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def __repr__(self) -> str:
        return f"EmulatorClock(offset={self.offset!r})"
