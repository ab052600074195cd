"""Running user code: a hub method or an event handler, sync (in a worker thread) or async, and
what the client is told when it fails."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final

import anyio.to_thread

from .._upstream import HubMethodError
from ._methods import HubMethod, short

__all__ = ["GENERIC_ERROR", "call_method", "run_handler"]

logger = logging.getLogger("signalr_asgi_auth.hubs")

GENERIC_ERROR: Final = "An unexpected error occurred invoking '{target}' on the server."
"""ASP.NET Core's words when detailed errors are off: the exception stays in the server's log."""


async def run_handler(function: Callable[..., Any], *args: Any) -> Any:
    """A user function, async or sync (a sync one runs in a worker thread)."""
    if inspect.iscoroutinefunction(function):
        return await function(*args)
    return await anyio.to_thread.run_sync(partial(function, *args))


async def call_method(
    method: HubMethod, hub: str, target: str, call: object, arguments: Sequence[Any]
) -> tuple[Any, str | None]:
    """``(result, None)``, or ``(None, error)`` for the client: a :class:`HubMethodError`'s
    message, or the generic error for anything else (logged once, with its traceback)."""
    try:
        return await run_handler(method.function, call, *arguments), None
    except HubMethodError as exc:
        return None, str(exc)
    except Exception:
        logger.exception(
            "Hub method %r of hub %r failed (the client got a generic error)", method.name, hub
        )
        return None, GENERIC_ERROR.format(target=short(target))
