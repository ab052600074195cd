"""What the emulated service has queued for one socket and not yet written: an :class:`Outbox`,
bounded, so that a peer that stops reading costs the emulator a fixed amount, as Azure's does.

Frames are put from any thread or event loop (tests, REST handlers, other sessions); the socket's
own task drains them. Everything shared is behind a ``threading.Lock``; the socket task, a sender
waiting for room and a watcher waiting for an overflow are woken with their loop's thread-safe
scheduler. Sizes are the frames' lengths: characters of text frames, bytes of binary ones.

- ``limit``: a frame that would take what waits past it **overflows** the outbox: what waits is
  dropped, ``overflow`` (a last frame, such as a close message) is queued instead, and the outbox
  takes nothing more. The socket's session then gives the peer :data:`CLOSE_DEADLINE` seconds to
  read that last frame before it drops the socket (:func:`abandon_when_overflowed`): a writer
  blocked on a full socket would otherwise wait for ever.
- ``room``: :meth:`Outbox.put_when_room` waits while that much or more waits, up to a deadline:
  back-pressure toward whoever feeds the outbox, for senders that may wait.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, Generic, TypeVar

import anyio

__all__ = ["CLOSE_DEADLINE", "Outbox", "abandon_when_overflowed", "loop_waker"]

CLOSE_DEADLINE: Final = 5.0
"""Seconds a peer whose outbox overflowed has to take its last frame before its socket is
dropped."""

Frame = TypeVar("Frame", str, bytes, str | bytes)
Waker = Callable[[], None]


def loop_waker(callback: Callable[[], None]) -> Waker:
    """A function any thread may call to run ``callback`` soon in the current event loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        import trio  # the only other loop anyio runs on

        token = trio.lowlevel.current_trio_token()

        def wake_trio() -> None:
            token.run_sync_soon(callback)

        return wake_trio

    def wake_asyncio() -> None:
        loop.call_soon_threadsafe(callback)

    return wake_asyncio


def _wake_all(wakers: list[Waker]) -> bool:
    """Call each waker; False when one's loop has stopped (nobody reads there any more)."""
    alive = True
    for wake in wakers:
        try:
            wake()
        except RuntimeError:
            alive = False
    return alive


class Outbox(Generic[Frame]):
    """Frames waiting for a socket, and whether the service asked to close it."""

    def __init__(
        self, *, limit: int | None = None, room: int | None = None, overflow: Frame | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._frames: deque[Frame] = deque()
        self._size = 0
        self._limit = limit
        self._room = room
        self._overflow: Frame | None = overflow
        self._closing = False
        self._finished = False
        self._overflowed = False
        self._wake: Waker | None = None
        self._room_waiters: list[Waker] = []
        self._overflow_watchers: list[Waker] = []

    def put(self, frame: Frame | None, *, last: bool = False) -> bool:
        """Queue ``frame`` (None: nothing, only ``last``); False when the socket takes no more:
        closing, gone, or overflowed by this frame."""
        with self._lock:
            if self._closing or self._finished:
                return False
            size = 0 if frame is None else len(frame)
            overflowing = self._limit is not None and self._size + size > self._limit
            if overflowing:
                self._overflow_now()
            elif frame is not None:
                self._frames.append(frame)
                self._size += size
            self._closing = self._closing or last
            wakers = [self._wake] if self._wake is not None else []
            if overflowing:
                wakers += self._room_waiters + self._overflow_watchers
                self._room_waiters, self._overflow_watchers = [], []
        return _wake_all(wakers) and not overflowing

    def _overflow_now(self) -> None:
        self._frames.clear()
        self._size = 0
        if self._overflow is not None:
            self._frames.append(self._overflow)
        self._closing = self._overflowed = True

    async def put_when_room(self, frame: Frame, *, within: float) -> bool:
        """Queue ``frame`` once less than ``room`` waits; False when the socket takes no more, or
        when no room came within ``within`` seconds."""
        with anyio.move_on_after(within):
            while True:
                ready = anyio.Event()
                with self._lock:
                    if self._room is None or self._size < self._room or self._closing:
                        break
                    self._room_waiters.append(loop_waker(ready.set))
                await ready.wait()
            return self.put(frame)
        return False

    @property
    def overflowed(self) -> bool:
        """Whether a frame found the outbox full: the peer did not read."""
        with self._lock:
            return self._overflowed

    async def wait_overflowed(self) -> None:
        """Return once the outbox has overflowed."""
        ready = anyio.Event()
        with self._lock:
            if self._overflowed:
                return
            self._overflow_watchers.append(loop_waker(ready.set))
        await ready.wait()

    @property
    def size(self) -> int:
        """The length of the frames waiting."""
        with self._lock:
            return self._size

    def pending(self) -> list[Frame]:
        with self._lock:
            return list(self._frames)

    def finish(self) -> None:
        with self._lock:
            self._finished = True
            self._frames.clear()
            self._size = 0
            self._wake = None
            wakers, self._room_waiters = self._room_waiters, []
        _wake_all(wakers)

    @property
    def closing(self) -> bool:
        """Whether the socket takes no more frames: closing, or gone."""
        with self._lock:
            return self._closing or self._finished

    async def drain(self) -> AsyncIterator[list[Frame]]:
        """Yield the frames put since the last yield, until the last one (a close message) has been
        yielded."""
        ready = anyio.Event()

        def set_ready() -> None:
            ready.set()

        with self._lock:
            self._wake = loop_waker(set_ready)
        while True:
            with self._lock:
                frames = list(self._frames)
                self._frames.clear()
                self._size = 0
                done = self._closing or self._finished
                if not frames and not done:
                    ready = anyio.Event()
                wakers, self._room_waiters = self._room_waiters, []
            _wake_all(wakers)
            if frames:
                yield frames
            if done:
                return
            if not frames:
                await ready.wait()


async def abandon_when_overflowed(
    overflowed: Callable[[], Awaitable[None]], scope: anyio.CancelScope
) -> None:
    """Cancel ``scope`` (a socket's session) :data:`CLOSE_DEADLINE` seconds after
    ``overflowed()`` returns: the peer had that long to read its last frame."""
    await overflowed()
    await anyio.sleep(CLOSE_DEADLINE)
    scope.cancel()
