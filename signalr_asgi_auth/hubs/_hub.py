""":class:`Hub`: hub methods and connection events, served over server connections (Default
mode) or upstream requests (Serverless mode)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any, Final, TypeVar

from anyio import CapacityLimiter
from anyio.lowlevel import RunVar
from starlette.requests import Request
from starlette.responses import Response

from .._durations import to_seconds
from .._errors import ConfigurationError, InvalidInputError, NotReadyError, shown
from .._names import prefixed_hub
from .._negotiate import get_context
from .._upstream import UpstreamVerifier
from ..protocol import HUB_PROTOCOLS, HubProtocol
from ..server import ServerConnections
from ._clients import Audience, HubClients, HubGroups
from ._everywhere import send_everywhere
from ._methods import HubMethod, event_handler, hub_method
from ._serverless import RestTransport, hub_upstream_endpoint
from ._sessions import HubConnections

__all__ = ["DEFAULT_MAX_RECEIVE_MESSAGE_SIZE", "Hub"]

DEFAULT_MAX_RECEIVE_MESSAGE_SIZE: Final = 1024 * 1024
"""1 MiB: what SignalR Service takes from a client over long polling and server-sent events and in
a REST or upstream body, so one message fits every mode and transport (ASP.NET Core's default is
32 KB; docs/options.md says why we differ)."""
_MAX_RECEIVE_MESSAGE_SIZE: Final = 2**31 - 1  # the size prefix's largest

F = TypeVar("F", bound=Callable[..., Any])

_NOT_RUNNING = (
    "Hub {hub!r} is not running: in Default mode give it to SignalRAuth(hubs=[...]) and use it "
    "while the app runs; in Serverless mode hub.clients works once its upstream endpoint has "
    "served a request (or use request.state.signalr.hub({hub!r}))."
)


class Hub:
    """A SignalR hub written in Python: methods clients invoke, and connection events.

    ::

        chat = Hub("chat")

        @chat.on("send")
        async def send(call, text: str) -> str:
            await call.clients.all.send("newMessage", call.user_id, text)
            return "delivered"

    Give it to ``SignalRAuth(hubs=[chat])`` for Default mode (server connections), or route
    :meth:`upstream_endpoint` for Serverless mode; the handlers are the same.

    ``protocols`` are the hub protocols clients may choose (``"json"``, ``"messagepack"``); a
    message to several clients carries one payload for each, since clients on other app servers
    may use any of them. ``keep_alive_interval`` is how often each client is pinged (clients give
    up after 30 s of silence); a client that has not sent its handshake after
    ``handshake_timeout`` is closed (checked at each ping, so within one more interval).
    ``max_receive_message_size`` is the largest hub message a client may send in Default mode
    (ASP.NET Core's ``MaximumReceiveMessageSize``): a client that sends a larger one is closed
    with a reason, alone.
    ``worker_threads`` is how many sync handlers of this hub may run at once, each in a worker
    thread; they wait for one beyond that. The hub's threads are its own: anyio's default
    limiter (40), which the library's sync credentials use, stays free for the Entra token.
    """

    def __init__(
        self,
        name: str,
        *,
        protocols: Sequence[str] = ("json", "messagepack"),
        keep_alive_interval: float | timedelta = 15.0,
        handshake_timeout: float | timedelta = 15.0,
        max_receive_message_size: int = DEFAULT_MAX_RECEIVE_MESSAGE_SIZE,
        worker_threads: int = 40,
    ) -> None:
        try:
            prefixed_hub(name, None)
        except InvalidInputError as exc:
            raise ConfigurationError(str(exc)) from None
        self.name = name
        self._protocols = _protocols(protocols)
        self.keep_alive_interval = to_seconds(
            keep_alive_interval, name="keep_alive_interval", maximum=3600
        )
        self.handshake_timeout = to_seconds(
            handshake_timeout, name="handshake_timeout", maximum=3600
        )
        self.max_receive_message_size = _message_size(max_receive_message_size)
        self.worker_threads = _worker_threads(worker_threads)
        # One limiter per event loop, as anyio keeps its default one.
        self._threads: RunVar[CapacityLimiter] = RunVar(f"Hub[{name}].worker_threads")
        self._methods: dict[str, HubMethod] = {}
        self.connected_handler: Callable[..., Any] | None = None
        self.disconnected_handler: tuple[Callable[..., Any], bool] | None = None
        self._running: list[HubConnections] = []
        self._rest: RestTransport | None = None

    def __repr__(self) -> str:
        return f"Hub({self.name!r}, methods={sorted(m.name for m in self._methods.values())!r})"

    # -- registration ---------------------------------------------------------------------------

    def on(self, name: str) -> Callable[[F], F]:
        """Register a hub method ``name`` (matched without regard to case, as ASP.NET Core
        does): ``def handler(call, *arguments)``, sync (run in a worker thread), async, or an
        async generator (a streaming method: each ``yield`` is a stream item)."""
        if not isinstance(name, str) or not name.strip():
            msg = f"A hub method needs a name: @hub.on('send'), not {shown(name)}."
            raise ConfigurationError(msg)

        def register(function: F) -> F:
            if name.lower() in self._methods:
                msg = f"Hub {self.name!r} already has a method {name!r}."
                raise ConfigurationError(msg)
            self._methods[name.lower()] = hub_method(name, function)
            return function

        return register

    def on_connected(self, function: F) -> F:
        """Register ``handler(call)``, run once a client has connected (after its handshake),
        before any of its invocations. Raising :class:`HubMethodError` there closes the client
        with that message (Default mode; any other exception with a generic one), and
        ``on_disconnected`` does not run for it."""
        self.connected_handler, _ = event_handler(function, "on_connected")
        return function

    def on_disconnected(self, function: F) -> F:
        """Register ``handler(call)`` or ``handler(call, error)``, run once a client is gone;
        ``error`` is ``None`` for a clean close."""
        self.disconnected_handler = event_handler(function, "on_disconnected")
        return function

    # -- what the layers below ask ----------------------------------------------------------

    @property
    def protocols(self) -> tuple[HubProtocol, ...]:
        return tuple(self._protocols.values())

    def protocol(self, name: str) -> HubProtocol | None:
        return self._protocols.get(name.lower())

    def thread_limiter(self) -> CapacityLimiter:
        """What the hub's sync handlers run under, in the running event loop."""
        try:
            return self._threads.get()
        except LookupError:
            limiter = CapacityLimiter(self.worker_threads)
            self._threads.set(limiter)
            return limiter

    def method(self, name: str) -> HubMethod | None:
        return self._methods.get(name.lower()) if isinstance(name, str) else None

    def attach(self, pool: ServerConnections) -> HubConnections:
        """The hub's clients on ``pool`` (``ServerHub`` for ``SignalRAuth``): the pool calls the
        returned ``ServiceEvents``; its ``run()`` must run while the pool does."""
        connections = HubConnections(self, pool)
        self._running.append(connections)
        return connections

    def detach(self, connections: HubConnections) -> None:
        if connections in self._running:
            self._running.remove(connections)

    def remember_rest(self, request: Request) -> None:
        """Keep the app's REST client for ``hub.clients`` outside calls (Serverless mode): the
        latest request's, so that an app started again does not use a closed one."""
        try:
            context = get_context(request)
        except RuntimeError:  # no middleware: calls that send say so when they try
            return
        self._rest = RestTransport(partial(context.hub, self.name))

    # -- outside a call -------------------------------------------------------------------------

    @property
    def clients(self) -> HubClients:
        """The hub's clients, from anywhere while the app runs (a background task, an HTTP
        route): ``await chat.clients.all.send("news", text)``."""
        return HubClients(_HubTransport(self))

    @property
    def groups(self) -> HubGroups:
        """Group membership of any connection: ``await chat.groups.add(connection_id, "room")``."""
        return HubGroups(_HubTransport(self))

    def running(self) -> list[HubConnections]:
        return list(self._running)

    def rest(self) -> RestTransport | None:
        return self._rest

    def upstream_endpoint(
        self, verifier: UpstreamVerifier
    ) -> Callable[[Request], Awaitable[Response]]:
        """A Starlette endpoint for Serverless mode: ``Route("/upstream/{event}", endpoint,
        methods=["POST"])``. It verifies each upstream request, then calls this hub's method or
        connection event; ``call.clients`` and ``call.groups`` use the REST API (the middleware's
        ``request.state.signalr``). Streaming methods and client results need Default mode."""
        return hub_upstream_endpoint(self, verifier)


class _HubTransport:
    """``hub.clients`` / ``hub.groups``: over every pool the hub runs on (every endpoint), or the
    REST API in Serverless mode."""

    __slots__ = ("_hub",)

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def _running(self) -> list[HubConnections]:
        running = self._hub.running()
        if not running and self._hub.rest() is None:
            raise NotReadyError(_NOT_RUNNING.format(hub=self._hub.name), retry_after=1.0)
        return running

    def _holder(self, connection_id: str) -> HubConnections | None:
        running = self._running()
        for connections in running:
            if connections.holds(connection_id):
                return connections
        return running[0] if running else None

    async def send(self, audience: Audience, target: str, arguments: tuple[Any, ...]) -> None:
        running = self._running()
        rest = self._hub.rest()
        if not running and rest is not None:
            await rest.send(audience, target, arguments)
            return
        await send_everywhere(running, audience, target, arguments)

    async def invoke(
        self, connection_id: str, target: str, arguments: tuple[Any, ...], seconds: float
    ) -> Any:
        holder = self._holder(connection_id)
        if holder is None:
            return await _rest(self._hub).invoke(connection_id, target, arguments, seconds)
        return await holder.invoke(connection_id, target, arguments, seconds)

    async def join(self, connection_id: str, group: str) -> None:
        holder = self._holder(connection_id)
        await (holder or _rest(self._hub)).join(connection_id, group)

    async def leave(self, connection_id: str, group: str) -> None:
        holder = self._holder(connection_id)
        await (holder or _rest(self._hub)).leave(connection_id, group)


def _rest(hub: Hub) -> RestTransport:
    rest = hub.rest()
    if rest is None:  # _running() said there is one
        raise NotReadyError(_NOT_RUNNING.format(hub=hub.name), retry_after=1.0)
    return rest


def _protocols(names: Iterable[str]) -> dict[str, HubProtocol]:
    if isinstance(names, str):
        names = [names]
    chosen: dict[str, HubProtocol] = {}
    for name in names:
        protocol = HUB_PROTOCOLS.get(name.lower()) if isinstance(name, str) else None
        if protocol is None:
            msg = f"protocols takes 'json' and/or 'messagepack', not {shown(name)}."
            raise ConfigurationError(msg)
        chosen[protocol.name] = protocol
    if not chosen:
        msg = "protocols must name at least one hub protocol: 'json' and/or 'messagepack'."
        raise ConfigurationError(msg)
    return chosen


def _message_size(value: object) -> int:
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 < value <= _MAX_RECEIVE_MESSAGE_SIZE
    ):
        return value
    msg = (
        "max_receive_message_size must be a whole number of bytes from 1 to "
        f"{_MAX_RECEIVE_MESSAGE_SIZE}, got {shown(value)}."
    )
    raise ConfigurationError(msg)


def _worker_threads(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        msg = f"worker_threads must be a whole number from 1 to 1000, not {shown(value)}."
        raise ConfigurationError(msg)
    return value
