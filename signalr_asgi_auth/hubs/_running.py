"""Running user code: a hub method or an event handler, sync (in a worker thread) or async, and
what the client is told when it fails.

A cancellation that comes out of user code is the hub's only when the task running it is being
cancelled (the app stops, the client cancelled its stream): then it goes on up. Any other one (a
handler awaited a task someone else cancelled) is that handler's failure, raised as
:class:`ForeignCancellation` so that it fails one invocation, not the hub's task group.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, Final

import anyio
import anyio.to_thread
from anyio import CapacityLimiter

from .._upstream import HubMethodError
from ._methods import HubMethod, short

__all__ = [
    "GENERIC_ERROR",
    "ForeignCancellation",
    "call_method",
    "cancelled_here",
    "owned_cancellation",
    "run_handler",
]

logger = logging.getLogger("signalr_asgi_auth.hubs")

GENERIC_ERROR: Final = "An unexpected error occurred invoking '{target}' on the server."
"""ASP.NET Core's words when detailed errors are off: the exception stays in the server's log."""


class ForeignCancellation(RuntimeError):
    """User code raised a cancellation while nothing was cancelling the task that ran it."""


def cancelled_here() -> bool:
    """Whether the running task is being cancelled: by a cancel scope around it, or (asyncio)
    by a ``cancel()`` of the task itself."""
    if anyio.current_effective_deadline() == -math.inf:
        return True
    try:
        task = asyncio.current_task()
    except RuntimeError:  # not asyncio: trio cancels through scopes only
        return False
    return task is not None and task.cancelling() > 0


@contextmanager
def owned_cancellation() -> Iterator[None]:
    """Let only the hub's own cancellations out of user code (see the module docstring)."""
    try:
        yield
    except (anyio.get_cancelled_exc_class(), asyncio.CancelledError) as exc:
        # asyncio's kind also under trio: a sync handler may raise one from an asyncio future.
        if isinstance(exc, anyio.get_cancelled_exc_class()) and cancelled_here():
            raise
        msg = (
            "the handler raised a cancellation the hub did not ask for (awaited a cancelled task?)"
        )
        raise ForeignCancellation(msg) from exc


async def run_handler(
    function: Callable[..., Any], *args: Any, limiter: CapacityLimiter | None = None
) -> Any:
    """A user function, async or sync (a sync one runs in a worker thread, under ``limiter``).

    A sync one is abandoned when the hub stops (its thread runs to its end; nothing waits for
    it), so that one slow handler cannot hold the app's shutdown."""
    with owned_cancellation():
        if inspect.iscoroutinefunction(function):
            return await function(*args)
        return await anyio.to_thread.run_sync(
            partial(function, *args), abandon_on_cancel=True, limiter=limiter
        )


async def call_method(
    method: HubMethod,
    hub: str,
    target: str,
    call: object,
    arguments: Sequence[Any],
    *,
    limiter: CapacityLimiter | None = None,
) -> tuple[Any, str | None]:
    """``(result, None)``, or ``(None, error)`` for the client: a :class:`HubMethodError`'s
    message, or the generic error for anything else (logged once, with its traceback)."""
    try:
        return await run_handler(method.function, call, *arguments, limiter=limiter), None
    except HubMethodError as exc:
        return None, str(exc)
    except Exception:
        logger.exception(
            "Hub method %r of hub %r failed (the client got a generic error)", method.name, hub
        )
        return None, GENERIC_ERROR.format(target=short(target))
