"""``SignalRAuth``: the configuration, and the lifetime of what runs in the background.

Construction validates everything and starts nothing. ``async with auth`` (the middleware does it in
the app's lifespan) creates the credential, the HTTP client and the keepers in one task group, waits
up to ``startup_timeout`` until client tokens can be issued (the first key; in ``mode="service"``
the first Entra token; in ``"auto"`` after a 403, a token from the service), and tears it all down
on exit.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from types import TracebackType
from typing import Any, Literal, Unpack

import anyio
import anyio.lowlevel
import httpx2
from anyio.abc import TaskGroup

from ._connection_string import ConnectionSettings, parse_connection_string
from ._context import SignalRContext
from ._credentials import AnyCredential
from ._durations import Duration, to_seconds
from ._endpoint import ServiceEndpoint
from ._errors import ConfigurationError, NotReadyError
from ._http_clients import calls_client, check_clients, server_connections_client
from ._options import Options, OptionsKwargs
from ._secrets import Secret
from .endpoints import (
    Endpoint,
    EndpointConfig,
    EndpointInfo,
    EndpointRouter,
    EndpointSet,
)
from .endpoints._config import (
    ENVIRONMENT_PREFIX,
    endpoints_from_environment,
    resolve_endpoint,
    resolve_endpoints,
    settings_identity,
)
from .endpoints._set import worst
from .server import ServerHub, check_server_hubs

__all__ = ["CONNECTION_STRING_VARIABLE", "SignalRAuth"]

logger = logging.getLogger("signalr_asgi_auth")

CONNECTION_STRING_VARIABLE = "AZURE_SIGNALR_CONNECTION_STRING"
_CLOSE_TIMEOUT = 5.0


class _Runtime:
    """Everything that lives from startup to shutdown on one event loop: the HTTP client and the
    endpoint set (one keeper set per endpoint; see ``endpoints/``)."""

    def __init__(self, auth: SignalRAuth, *, lazy: bool = False) -> None:
        options = auth.options
        self.loop = anyio.lowlevel.current_token()
        self.started_at = options.clock.now()
        self.startup_deadline = self.started_at + options.startup_timeout
        self._owns_http = auth._http_client is None
        self.http = auth._http_client or calls_client()
        # Only Default mode has server connections: a client for them only when hubs= is given.
        self._owns_server_http = auth._server_http_client is None and bool(auth._hubs)
        self.server_http = auth._server_http_client or (
            server_connections_client() if auth._hubs else self.http
        )
        self.endpoints = EndpointSet(
            auth._configs,
            options=options,
            http=self.http,
            server_http=self.server_http,
            hubs=auth._hubs,
            router=auth._router,
            lazy=lazy,
        )
        self.context = SignalRContext(endpoints=self.endpoints, options=options, health=auth.health)

    def start(self, task_group: TaskGroup) -> None:
        self.task_group = task_group
        self.endpoints.start(task_group)

    @property
    def ready(self) -> bool:
        """Whether client tokens can be issued (startup need not wait any longer)."""
        return any(runtime.ready for runtime in self.endpoints.all)

    async def wait_ready(self, clock_now: float) -> bool:
        """Wait until client tokens can be issued, at most until the startup deadline; whether
        they can."""
        await self.endpoints.wait_ready(self.startup_deadline)
        return self.ready

    async def stop_server_connections(self) -> None:
        await self.endpoints.stop_server_connections()

    async def aclose(self) -> None:
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            if self._owns_http:
                await self.http.aclose()
            if self._owns_server_http:
                await self.server_http.aclose()
            await self.endpoints.aclose()


class SignalRAuth:
    """Azure SignalR Service authentication for one resource, or several.

    Give it an ``endpoint`` and either a ``credential`` (any azure-identity credential: managed
    identity, workload identity, a service principal...) or, for local development, an
    ``access_key``. For several resources give ``endpoints=[Endpoint(...), ...]`` instead (with
    ``credential`` for those without their own), or use :meth:`from_connection_strings`. Every
    other option is keyword-only with a safe default; see the README.
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        credential: AnyCredential | None = None,
        access_key: str | None = None,
        client_endpoint: str | None = None,
        server_endpoint: str | None = None,
        port: int | None = None,
        endpoints: Sequence[Endpoint] | None = None,
        router: EndpointRouter | None = None,
        http_client: httpx2.AsyncClient | None = None,
        server_http_client: httpx2.AsyncClient | None = None,
        hubs: Sequence[ServerHub] = (),
        **options: Unpack[OptionsKwargs],
    ) -> None:
        built = Options.build(**options)
        if endpoints is not None:
            if endpoint is not None or access_key is not None or port is not None:
                msg = (
                    "Pass endpoints=[Endpoint(...), ...] or endpoint=..., not both; with several "
                    "endpoints each Endpoint carries its own access_key, client_endpoint and "
                    "server_endpoint."
                )
                raise ConfigurationError(msg)
            if client_endpoint is not None or server_endpoint is not None:
                msg = "With endpoints=, give client_endpoint and server_endpoint to each Endpoint."
                raise ConfigurationError(msg)
            _check_credential(credential)
            configs = resolve_endpoints(
                endpoints, credential=credential, service_mode=built.mode == "service"
            )
            self._setup(
                configs,
                http_client=http_client,
                server_http_client=server_http_client,
                options=built,
                hubs=hubs,
                router=router,
                credential=credential,
            )
            return
        if endpoint is None:
            msg = (
                "Pass endpoint= (the resource's URL, e.g. https://<name>.service.signalr.net) "
                "or endpoints=[Endpoint(...), ...]."
            )
            raise ConfigurationError(msg)
        service = ServiceEndpoint.create(
            endpoint, port=port, client_endpoint=client_endpoint, server_endpoint=server_endpoint
        )
        if (credential is None) == (access_key is None):
            msg = (
                "Pass exactly one of credential= (an azure-identity credential such as "
                "ManagedIdentityCredential()) or access_key= (local development only)."
            )
            raise ConfigurationError(msg)
        if access_key is not None and (not isinstance(access_key, str) or not access_key):
            msg = "access_key must be a non-empty string."
            raise ConfigurationError(msg)
        _check_credential(credential)
        config = _single(
            service,
            credential=credential,
            settings=None,
            access_key=Secret(access_key) if access_key is not None else None,
            options=built,
        )
        self._setup(
            [config],
            http_client=http_client,
            server_http_client=server_http_client,
            options=built,
            hubs=hubs,
            router=router,
            credential=credential,
        )

    def _setup(
        self,
        configs: list[EndpointConfig],
        *,
        http_client: httpx2.AsyncClient | None,
        server_http_client: httpx2.AsyncClient | None,
        options: Options,
        hubs: Sequence[ServerHub],
        router: EndpointRouter | None,
        credential: AnyCredential | None = None,
    ) -> None:
        if router is not None and not isinstance(router, EndpointRouter):
            msg = (
                "router must have a choose(request, endpoints) method, such as "
                f"StickyByUserRouter(), not {type(router).__name__}."
            )
            raise ConfigurationError(msg)
        check_clients(http_client, server_http_client)
        home = next(config for config in configs if config.type == "primary")
        self.endpoint = home.service
        self.options = options
        self._configs = configs
        self._access_key = home.access_key
        self._router = router
        self._credential = credential
        self._http_client = http_client
        self._server_http_client = server_http_client
        self._hubs = check_server_hubs(hubs, options.application_name)
        self._runtime: _Runtime | None = None
        self._stack: AsyncExitStack | None = None
        self._lazy_warned = False

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str | None = None,
        *,
        credential: AnyCredential | None = None,
        http_client: httpx2.AsyncClient | None = None,
        server_http_client: httpx2.AsyncClient | None = None,
        hubs: Sequence[ServerHub] = (),
        **options: Unpack[OptionsKwargs],
    ) -> SignalRAuth:
        """Configure from a connection string, as the C# SDK reads it.

        ``AuthType=azure.msi`` (managed identity), ``azure.app`` (service principal), ``azure``
        (DefaultAzureCredential) or ``aad`` choose a credential, created at startup and closed at
        shutdown; ``credential=`` overrides that choice. Without ``AuthType`` the ``AccessKey``
        signs tokens. With no argument, ``AZURE_SIGNALR_CONNECTION_STRING`` is read, and the
        ``Azure__SignalR__ConnectionString__<name>[__<type>]`` variables (several endpoints).
        """
        if connection_string is None:
            named = endpoints_from_environment(os.environ)
            if named:
                return cls._from_endpoints(
                    named,
                    plain=os.environ.get(CONNECTION_STRING_VARIABLE) or None,
                    credential=credential,
                    http_client=http_client,
                    server_http_client=server_http_client,
                    hubs=hubs,
                    options=options,
                )
            connection_string = os.environ.get(CONNECTION_STRING_VARIABLE)
            if not connection_string:
                msg = (
                    f"No connection string: pass one, or set {CONNECTION_STRING_VARIABLE}, e.g. "
                    "Endpoint=https://<name>.service.signalr.net;AuthType=azure.msi;Version=1.0;"
                    f" (or, for several endpoints, {ENVIRONMENT_PREFIX}<name>[__secondary])"
                )
                raise ConfigurationError(msg)
        settings = parse_connection_string(
            connection_string, credential_given=credential is not None
        )
        if credential is not None and settings.auth_type is None and settings.access_key:
            raise ConfigurationError(_KEY_AND_CREDENTIAL)
        _check_credential(credential)
        entra = credential is not None or settings.auth_type is not None
        built = Options.build(**options)
        config = _single(
            settings.endpoint,
            credential=credential,
            settings=settings if credential is None and entra else None,
            access_key=None if entra else settings.access_key,
            options=built,
        )
        auth = cls.__new__(cls)
        auth._setup(
            [config],
            http_client=http_client,
            server_http_client=server_http_client,
            options=built,
            hubs=hubs,
            router=None,
            credential=credential,
        )
        return auth

    @classmethod
    def from_connection_strings(
        cls,
        connection_strings: Mapping[str, str] | None = None,
        *,
        credential: AnyCredential | None = None,
        router: EndpointRouter | None = None,
        http_client: httpx2.AsyncClient | None = None,
        server_http_client: httpx2.AsyncClient | None = None,
        hubs: Sequence[ServerHub] = (),
        **options: Unpack[OptionsKwargs],
    ) -> SignalRAuth:
        """Several resources, one connection string each, keyed ``"<name>"`` (a primary) or
        ``"<name>:<primary|secondary>"``. Connection strings that name the same identity share
        one credential and one Entra token. With no argument, the environment is read as
        :meth:`from_connection_string` reads it."""
        if connection_strings is None:
            named = endpoints_from_environment(os.environ)
            plain = os.environ.get(CONNECTION_STRING_VARIABLE) or None
            if not named and plain is None:
                msg = (
                    f"No connection strings: pass a dict of them, or set {ENVIRONMENT_PREFIX}"
                    f"<name>[__secondary] (one variable per endpoint) or {CONNECTION_STRING_VARIABLE}."
                )
                raise ConfigurationError(msg)
        else:
            if not isinstance(connection_strings, Mapping):
                msg = (
                    "connection_strings must be a dict of '<name>[:<type>]' to connection string, "
                    f"not {type(connection_strings).__name__}."
                )
                raise ConfigurationError(msg)
            named = []
            for key, value in connection_strings.items():
                endpoint = Endpoint.from_connection_string(
                    key, value, credential_given=credential is not None
                )
                settings = endpoint.settings
                if (
                    credential is not None
                    and settings is not None
                    and settings.auth_type is None
                    and settings.access_key
                ):
                    msg = f"Endpoint {endpoint.name!r}: {_KEY_AND_CREDENTIAL}"
                    raise ConfigurationError(msg)
                named.append(endpoint)
            plain = None
        return cls._from_endpoints(
            named,
            plain=plain,
            credential=credential,
            http_client=http_client,
            server_http_client=server_http_client,
            hubs=hubs,
            options=options,
            router=router,
        )

    @classmethod
    def _from_endpoints(
        cls,
        named: list[Endpoint],
        *,
        plain: str | None,
        credential: AnyCredential | None,
        http_client: httpx2.AsyncClient | None,
        server_http_client: httpx2.AsyncClient | None,
        hubs: Sequence[ServerHub],
        options: OptionsKwargs,
        router: EndpointRouter | None = None,
    ) -> SignalRAuth:
        if plain is not None:
            # As the .NET SDK merges Azure:SignalR:ConnectionString: one more, unnamed primary.
            unnamed = Endpoint.from_connection_string(
                "default", plain, credential_given=credential is not None
            )
            named = [*named, replace(unnamed, name="")]
        built = Options.build(**options)
        _check_credential(credential)
        configs = resolve_endpoints(
            named, credential=credential, service_mode=built.mode == "service"
        )
        auth = cls.__new__(cls)
        auth._setup(
            configs,
            http_client=http_client,
            server_http_client=server_http_client,
            options=built,
            hubs=hubs,
            router=router,
            credential=credential,
        )
        return auth

    def __repr__(self) -> str:
        if len(self._configs) > 1:
            names = ", ".join(config.label for config in self._configs)
            return f"SignalRAuth(endpoints=[{names}], mode={self.options.mode!r})"
        return (
            f"SignalRAuth(endpoint={self.endpoint.endpoint!r}, "
            f"authentication={self.authentication!r}, mode={self.options.mode!r})"
        )

    @property
    def authentication(self) -> Literal["entra", "access_key"]:
        """``entra`` (a credential proves who the app is) or ``access_key`` (a configured key);
        not to be confused with the ``mode`` option, which says who signs client tokens. With
        several endpoints: the first primary's."""
        return "access_key" if self._access_key is not None else "entra"

    # -- several endpoints -------------------------------------------------------------------

    @property
    def endpoints(self) -> list[EndpointInfo]:
        """The configured endpoints (while running: the current set, draining ones included)."""
        runtime = self._runtime
        if runtime is not None:
            return [endpoint.info for endpoint in runtime.endpoints.all]
        return [
            EndpointInfo(
                name=config.name,
                type=config.type,
                endpoint=config.service.endpoint,
                client_endpoint=config.service.client_endpoint,
            )
            for config in self._configs
        ]

    async def add_endpoint(
        self, endpoint: Endpoint, *, credential: AnyCredential | None = None
    ) -> None:
        """Add a resource while the app runs. Its keepers start at once and messages go there at
        once; negotiations once it can issue client tokens and its health probes allow.
        ``credential`` serves it unless it has its own (default: none; give one for Entra)."""
        runtime = self._running("add_endpoint")
        _check_credential(credential)
        if credential is None:
            credential = self._credential
        config = resolve_endpoint(
            endpoint, credential=credential, service_mode=self.options.mode == "service"
        )
        runtime.endpoints.check_addition(config)
        await runtime.endpoints.add(config)
        self._configs = [*self._configs, config]

    async def remove_endpoint(
        self, name: str, *, drain: Duration = 0.0, close_connections: bool = False
    ) -> None:
        """Remove a resource while the app runs. No new negotiations go there, at once; messages
        still do while it drains; then its server connections close and its keepers stop.
        Returns when it is gone; run it in a task for a long drain.

        The drain lasts at most ``drain`` (seconds or a ``timedelta``, on the options' clock).
        In Default mode it ends sooner, once none of this app's clients is left there (its
        server connections carry them, so the app counts them). In Serverless mode the app
        cannot count the clients of a resource, so the drain lasts the full time.

        ``close_connections=True``: at the end of the drain, ``POST
        /api/hubs/{hub}/:closeConnections`` at that resource for each hub this app used there
        (the hubs it negotiated for, and ``hubs=``), so that the clients still there reconnect
        and negotiate elsewhere. Off by default: the call closes *every* client of those hubs at
        that resource, including those of other app instances that share it and may still use
        it. In Default mode this app's own clients are closed anyway when its server connections
        stop (the service closes the clients a server connection carried), so the flag matters
        only for other instances' clients. A failure of that call is logged; the endpoint is
        removed all the same.
        """
        runtime = self._running("remove_endpoint")
        seconds = to_seconds(drain, name="drain", allow_zero=True)
        if not isinstance(close_connections, bool):
            msg = f"close_connections must be True or False, not {close_connections!r}."
            raise ConfigurationError(msg)
        if runtime.endpoints.get(name) is None:
            known = ", ".join(repr(endpoint.name) for endpoint in runtime.endpoints.all)
            msg = f"No endpoint is named {name!r}; the endpoints are {known}."
            raise ConfigurationError(msg)
        await runtime.endpoints.remove(name, drain=seconds, close_connections=close_connections)
        self._configs = [config for config in self._configs if config.name != name]

    def _running(self, what: str) -> _Runtime:
        if self._runtime is None:
            msg = f"{what}() needs the app running: call it after startup (in a route, a task)."
            raise RuntimeError(msg)
        return self._runtime

    # -- lifetime ----------------------------------------------------------------------------

    async def __aenter__(self) -> SignalRContext:
        """Start: the credential, the HTTP clients, the keepers and the server connections, in
        one task group; returns once client tokens can be issued (at most ``startup_timeout``).

        One owner at a time: entering again while it starts or runs (from another task, or
        nested) raises ``RuntimeError`` at once, as an ``httpx2.AsyncClient`` opened twice does,
        instead of waiting. A second start would double every server connection, and a shared
        one would stop under the second owner when the first exits. Once exited, it may be
        entered again.
        """
        if self._stack is not None:
            msg = (
                "This SignalRAuth is already starting or running; enter it once (the middleware "
                "does, in the app's lifespan), and share auth.context with other tasks."
            )
            raise RuntimeError(msg)
        # Taken before the first await, so that a second task entering meanwhile is refused.
        stack = self._stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            runtime = _Runtime(self)
            stack.push_async_callback(runtime.aclose)
            task_group = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(task_group.cancel_scope.cancel)
            stack.push_async_callback(runtime.stop_server_connections)  # before the cancel
            runtime.start(task_group)
            await self._await_first_key(runtime)
            await self._await_server_connections(runtime)
        except BaseException:
            try:
                await stack.__aexit__(*sys.exc_info())
            finally:
                self._stack = None
            raise
        self._runtime = runtime
        return runtime.context

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._runtime = self._stack, None
        try:
            if stack is not None:
                await stack.__aexit__(exc_type, exc, traceback)
        finally:
            self._stack = None  # only now may it be entered again: the teardown is over

    async def _await_first_key(self, runtime: _Runtime) -> None:
        not_ready = await runtime.endpoints.wait_ready(runtime.startup_deadline)
        several = len(runtime.endpoints) > 1
        for endpoint in not_ready:
            where = f"endpoint {endpoint.config.label}: " if several else ""
            then = (
                "Negotiations go to the other endpoints" if several else "Negotiation answers 503"
            )
            if endpoint.keys is not None:
                also = ""
                if endpoint.probe_error is not None:
                    also = (
                        " SignalR Service does not issue client tokens to it either: "
                        f"{endpoint.probe_error}"
                    )
                logger.warning(
                    "Starting without a SignalR access key for %safter %.0f s: %s%s %s until a "
                    "key arrives.",
                    where,
                    self.options.startup_timeout,
                    endpoint.keys.not_ready(),
                    also,
                    then,
                )
            elif endpoint.entra is not None:
                error = endpoint.entra.attempts.last_error
                logger.warning(
                    "Starting without a Microsoft Entra token for %safter %.0f s: %s %s until "
                    "one arrives.",
                    where,
                    self.options.startup_timeout,
                    error or "the first request to the credential is under way.",
                    then,
                )

    async def _await_server_connections(self, runtime: _Runtime) -> None:
        await runtime.endpoints.wait_server_connections(runtime.startup_deadline)
        for endpoint in runtime.endpoints.all:
            if endpoint.servers is None:
                continue
            for pool in endpoint.servers.down():
                logger.warning(
                    "Starting without a server connection for hub %r after %g s: %s Negotiation "
                    "for it answers 503 until one is up.",
                    pool.hub,
                    self.options.startup_timeout,
                    pool.not_ready(),
                )

    @property
    def context(self) -> SignalRContext:
        """The running context; ``RuntimeError`` before startup.

        Outside a request, e.g. in a background job: ``await auth.context.hub("chat").send_to_all(...)``.
        """
        if self._runtime is None:
            msg = (
                "SignalRAuth is not running: add SignalRAuthMiddleware to the app and run it under "
                "a server with lifespan on, or enter `async with auth:`."
            )
            raise RuntimeError(msg)
        return self._runtime.context

    async def request_context(self, *, mounted_at: str | None = None) -> SignalRContext:
        """The context for a request on the current event loop, starting lazily if needed.

        ``mounted_at`` is the mount path when the request reached the middleware through an
        outer app's ``Mount`` (the lazy start's warning then blames the mount, not the server).
        """
        runtime = self._runtime
        if runtime is None or runtime.loop != anyio.lowlevel.current_token():
            runtime = await self._start_lazily(mounted_at)
        if not runtime.ready:
            await runtime.wait_ready(self.options.clock.now())
        return runtime.context

    async def _start_lazily(self, mounted_at: str | None = None) -> _Runtime:
        if not self._lazy_warned:
            self._lazy_warned = True
            if mounted_at is not None:
                # The server's lifespan did run, on the outer app: Starlette's Mount passes
                # requests to a sub-app but never the lifespan events.
                logger.warning(
                    "SignalRAuthMiddleware is on a sub-application mounted at %r, and mounted "
                    "apps never get the lifespan events, so it starts now, on the first request, "
                    "and never shuts down cleanly. Add the middleware to the outer app (the one "
                    "the server runs), or enter `async with auth:` in the outer app's lifespan.",
                    mounted_at or "/",
                )
            else:
                logger.warning(
                    "SignalRAuthMiddleware saw a request before any lifespan startup, so it "
                    "starts now and never shuts down cleanly. Run the server with lifespan on "
                    "(uvicorn's default) so that startup waits for the key and shutdown closes "
                    "the credential."
                )
        runtime = _Runtime(self, lazy=True)
        self._runtime = runtime
        _spawn_detached(self._run_detached, runtime)
        return runtime

    async def _run_detached(self, runtime: _Runtime) -> None:
        try:
            async with anyio.create_task_group() as task_group:
                runtime.start(task_group)
        finally:
            await runtime.aclose()

    # -- health ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """A JSON-ready snapshot for a health endpoint: status, token and key timing, last error.

        ``status`` is ``ok``, ``degraded`` (tokens are issued, but refreshes are failing, or
        ``mode="auto"`` gets them from the service for want of the key), ``starting`` (nothing
        yet, no failure yet), ``unavailable`` (no token can be issued) or ``stopped``.
        ``signing`` says who signs client tokens now: ``local`` or ``service``.

        With several endpoints the top level describes the first primary, ``endpoints`` lists
        each (name, type, status, usable and why not, last probe, key state), and ``status`` is
        over all of them: ``unavailable`` when no endpoint can take a negotiation, ``starting``
        when none can yet, ``degraded`` when some can but not every endpoint is ``ok``.
        """
        runtime = self._runtime
        report: dict[str, Any] = {
            "authentication": self.authentication,
            "client_tokens": self.options.mode if self._access_key is None else "key",
            "endpoint": self.endpoint.endpoint,
        }
        if runtime is None:
            return {"status": "stopped", **report}
        home = runtime.endpoints.home
        report["signing"] = home.issuer.signing
        report.update(home.parts_health(entra=True))
        status = home.signing_status()
        if home.servers is not None:
            status = worst(status, home.servers.status())
        if len(runtime.endpoints) > 1:
            status = runtime.endpoints.status()
            report["endpoints"] = runtime.endpoints.health()
        return {"status": status, **report}

    def not_ready(self) -> NotReadyError | None:
        """Why negotiation would fail now for want of a key, or ``None`` if it would not."""
        runtime = self._runtime
        if runtime is None:
            return None
        home = runtime.endpoints.home
        if home.keys is None or home.issuer.signing == "service":
            return None
        try:
            home.keys.current()
        except NotReadyError as exc:
            return exc
        return None


def _check_credential(credential: object) -> None:
    if credential is not None and not callable(getattr(credential, "get_token", None)):
        msg = (
            "credential must be an azure-identity credential (TokenCredential or "
            f"AsyncTokenCredential), not {type(credential).__name__}."
        )
        raise ConfigurationError(msg)


_KEY_AND_CREDENTIAL = (
    "The connection string holds an AccessKey and credential= was passed too; remove the "
    "AccessKey to use the credential, or drop credential= to sign with the key."
)


def _single(
    service: ServiceEndpoint,
    *,
    credential: AnyCredential | None,
    settings: ConnectionSettings | None,
    access_key: Secret | None,
    options: Options,
) -> EndpointConfig:
    """The one endpoint of the single-resource forms."""
    if access_key is not None and options.mode == "service":
        msg = (
            "mode='service' asks SignalR Service for client tokens with a Microsoft Entra "
            "identity, but this configuration signs with an access key: pass credential= "
            "(or a connection string with AuthType), or use mode='auto' or 'key'."
        )
        raise ConfigurationError(msg)
    return EndpointConfig(
        name="",
        type="primary",
        service=service,
        access_key=access_key,
        identity=None
        if access_key is not None
        else ("object", id(credential))
        if credential is not None
        else settings_identity(settings),
        credential=credential,
        settings=settings,
    )


def _spawn_detached(function: Callable[[_Runtime], Any], runtime: _Runtime) -> None:
    """Run ``function(runtime)`` outside any request, for servers that run no lifespan."""
    try:
        import trio

        trio.lowlevel.current_task()
    except (ImportError, RuntimeError):
        import asyncio

        task = asyncio.get_running_loop().create_task(function(runtime))
        _DETACHED.add(task)  # a hard reference, or the loop may collect the task
        task.add_done_callback(_DETACHED.discard)
    else:
        trio.lowlevel.spawn_system_task(function, runtime)


_DETACHED: set[Any] = set()
