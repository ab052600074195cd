"""The hub layer's tasks for its clients (Default mode), and how long each lives.

Each client's invocations run one at a time and in order (ASP.NET Core's default), as jobs of a
queue kept on the client's session; streams and the ping timer run beside them. All of those are
*calls*. A client's ``on_disconnected`` is a *farewell*: it runs after the client's running call,
in a task group of its own, so that the app's stop (which cancels every call) still lets it run,
up to :data:`HUB_STOP_TIMEOUT`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Protocol

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ..server import HUB_STOP_TIMEOUT

__all__ = ["ClientTasks", "Job", "Queued"]

logger = logging.getLogger("signalr_asgi_auth.hubs")

Job = Callable[[], Awaitable[None]]

_MAX_QUEUED: Final = 64  # invocations of one client waiting behind a running one


class Queued(Protocol):
    """What a client's session keeps for its queue: created only while it is busy."""

    busy: bool
    jobs: deque[Job] | None
    idle: anyio.Event | None


class ClientTasks:
    """The task groups of one hub on one pool: ``run`` them, then ``spawn``, ``enqueue`` and
    ``farewell`` while they run."""

    def __init__(self, hub: str) -> None:
        self._hub = hub
        self._calls: TaskGroup | None = None
        self._farewells: TaskGroup | None = None

    async def run(
        self,
        keep_alive: Callable[[], Coroutine[Any, Any, None]],
        end_every_client: Callable[[], None],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Until cancelled; then cancel every call, ``end_every_client()`` and give the
        farewells what is left of :data:`HUB_STOP_TIMEOUT`."""
        stopping = anyio.Event()
        async with anyio.create_task_group() as host:
            await host.start(self._serve, keep_alive, end_every_client, stopping)
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                stopping.set()

    async def _serve(
        self,
        keep_alive: Callable[[], Coroutine[Any, Any, None]],
        end_every_client: Callable[[], None],
        stopping: anyio.Event,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        # Shielded from the app's stop, which cancels run(): the stop is done here, in order,
        # within the deadline (a sync call is abandoned to its thread; Python cannot stop one).
        with anyio.CancelScope(shield=True) as shield:
            try:
                async with anyio.create_task_group() as farewells:
                    self._farewells = farewells
                    async with anyio.create_task_group() as calls:
                        self._calls = calls
                        calls.start_soon(keep_alive, name=f"hub {self._hub}: pings")
                        task_status.started()
                        await stopping.wait()
                        shield.deadline = anyio.current_time() + HUB_STOP_TIMEOUT
                        calls.cancel_scope.cancel()
                    self._calls = None
                    end_every_client()
            finally:
                self._calls = self._farewells = None

    def spawn(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        """A call beside the queues (a stream)."""
        if self._calls is None:
            msg = f"Hub {self._hub!r} is not running: its run() task was not started."
            raise RuntimeError(msg)
        self._calls.start_soon(function, *args)

    def enqueue(self, client: Queued, job: Job) -> bool:
        """Run ``job`` after the client's earlier ones; ``False`` when too many are waiting."""
        if not client.busy:
            client.busy = True
            self.spawn(self._drain, client, job)
            return True
        if client.jobs is None:
            client.jobs = deque()
        if len(client.jobs) >= _MAX_QUEUED:
            return False
        client.jobs.append(job)
        return True

    async def _drain(self, client: Queued, job: Job) -> None:
        try:
            while True:
                try:
                    await job()
                except Exception:  # a bug here must not end every client's task group
                    logger.exception("Hub %r failed handling a client's message", self._hub)
                if not client.jobs:
                    return
                job = client.jobs.popleft()
        finally:
            client.busy = False
            client.jobs = None
            if client.idle is not None:
                client.idle.set()

    def farewell(self, client: Queued, job: Job) -> None:
        """Run ``job`` (``on_disconnected``) once the client's running call is over, as ASP.NET
        Core runs it when the client's dispatch loop ends; nothing when the hub is not running."""
        if self._farewells is not None:
            self._farewells.start_soon(self._after_calls, client, job)

    async def _after_calls(self, client: Queued, job: Job) -> None:
        if client.busy:
            if client.idle is None:
                client.idle = anyio.Event()
            await client.idle.wait()
        await job()
