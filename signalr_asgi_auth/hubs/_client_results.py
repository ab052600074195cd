"""Client results in Default mode: the hub asks one client for a value and waits
(``caller.invoke``), whether the client answers on this server (its Completion in its
ConnectionData) or on another (``ClientCompletion`` / ``ErrorCompletion`` from the service); and the
Completions this server's clients owe other servers (a ``ClientInvocation`` routed here).

Every wait has its deadline, and a client that leaves fails what waits for it at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio

from .._upstream import HubMethodError
from ..protocol import (
    ClientCompletion,
    ClientInvocation,
    Completion,
    ErrorCompletion,
    HubProtocol,
    ProtocolError,
    ServiceMessage,
)
from ..server import ServerConnections

__all__ = ["ClientResults"]

_MAX_ROUTED: Final = 10_000


class _PendingResult:
    __slots__ = ("connection_id", "done", "error", "result")

    def __init__(self, connection_id: str) -> None:
        self.connection_id = connection_id
        self.done = anyio.Event()
        self.result: Any = None
        self.error: str | None = None

    def resolve(self, result: Any, error: str | None) -> None:
        if not self.done.is_set():
            self.result, self.error = result, error
            self.done.set()


class ClientResults:
    """The client results of one hub on one pool. ``deliver(message, client)`` sends to the
    service on the client's connection; ``protocol(name)`` is the hub's protocol of that name."""

    def __init__(
        self,
        pool: ServerConnections,
        protocol: Callable[[str], HubProtocol | None],
        deliver: Callable[[ServiceMessage, str], Awaitable[None]],
    ) -> None:
        self._pool = pool
        self._protocol = protocol
        self._deliver = deliver
        self._pending: dict[str, _PendingResult] = {}
        self._routed: dict[str, tuple[str, str]] = {}
        self._ids = itertools.count(1)

    async def invoke(
        self,
        connection_id: str,
        target: str,
        payloads: Callable[[str], dict[str, bytes]],
        seconds: float,
    ) -> Any:
        """Send the Invocation ``payloads(invocation_id)`` builds and wait ``seconds`` for the
        client's answer: its result, or :class:`HubMethodError` / :class:`TimeoutError`."""
        invocation_id = f"{connection_id}-{self._pool.server_id}-{next(self._ids)}"
        message = ClientInvocation(
            invocation_id, connection_id, self._pool.server_id, payloads(invocation_id)
        )
        pending = self._pending[invocation_id] = _PendingResult(connection_id)
        try:
            await self._pool.send(message, client=connection_id)
            with anyio.move_on_after(seconds):
                await pending.done.wait()
        finally:
            self._pending.pop(invocation_id, None)
        if not pending.done.is_set():
            msg = f"The client {connection_id!r} did not answer {target!r} within {seconds:g} s."
            raise TimeoutError(msg)
        if pending.error is not None:
            raise HubMethodError(pending.error)
        return pending.result

    def client_gone(self, connection_id: str) -> None:
        """Fail whatever waits for a result from ``connection_id``."""
        gone = f"Connection '{connection_id}' is disconnected."
        for pending in self._pending.values():
            if pending.connection_id == connection_id:
                pending.resolve(None, gone)

    async def completed(
        self, connection_id: str, protocol: HubProtocol | None, message: Completion
    ) -> None:
        """A Completion a client of ours sent: for us, or for the server that asked."""
        pending = self._pending.get(message.invocation_id)
        if pending is not None and pending.connection_id == connection_id:
            pending.resolve(message.result, message.error)
            if protocol is not None:
                # The service keeps each ClientInvocation until it hears the invocation is over;
                # as the .NET SDK does, the caller tells it with an empty ClientCompletion.
                done = ClientCompletion(
                    message.invocation_id, connection_id, self._pool.server_id, protocol.name, b""
                )
                await self._deliver(done, connection_id)
            return
        routed = self._routed.pop(message.invocation_id, None)
        if routed is not None and routed[0] == connection_id and protocol is not None:
            completion = ClientCompletion(
                message.invocation_id,
                connection_id,
                routed[1],
                protocol.name,
                protocol.write(message),
            )
            await self._deliver(completion, connection_id)

    def answered(self, message: ClientCompletion) -> None:
        """A client of another server answered us (through the service)."""
        pending = self._pending.get(message.invocation_id)
        if pending is None:
            return
        protocol = self._protocol(message.protocol)
        if protocol is None:
            pending.resolve(
                None, f"The client answered in the unknown protocol {message.protocol!r}."
            )
            return
        try:
            answers = protocol.reader().feed(message.payload)
        except ProtocolError as exc:
            pending.resolve(None, f"The client's answer could not be read: {exc}")
            return
        for answer in answers:
            if isinstance(answer, Completion):
                pending.resolve(answer.result, answer.error)
                return

    def failed(self, message: ErrorCompletion) -> None:
        if (pending := self._pending.get(message.invocation_id)) is not None:
            pending.resolve(None, message.error or "The client invocation failed.")

    def route(self, message: ClientInvocation) -> None:
        """Another server awaits a result from a client of ours: its Completion goes back."""
        if len(self._routed) >= _MAX_ROUTED:
            self._routed.pop(next(iter(self._routed)))
        self._routed[message.invocation_id] = (message.connection_id, message.caller_server_id)
