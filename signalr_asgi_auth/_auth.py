"""``SignalRAuth``: the configuration, and the lifetime of what runs in the background.

Construction validates everything and starts nothing. ``async with auth`` (the middleware does it in
the app's lifespan) creates the credential, the HTTP client and the keepers in one task group, waits
up to ``startup_timeout`` until client tokens can be issued (the first key; in ``mode="service"``
the first Entra token; in ``"auto"`` after a 403, a token from the service), and tears it all down
on exit.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from functools import partial
from types import TracebackType
from typing import Any, Literal, Unpack

import anyio
import anyio.lowlevel
import httpx2
from anyio.abc import TaskGroup
from azure.core.credentials import AccessToken

from ._client_tokens import SigningKey
from ._connection_string import parse_connection_string
from ._context import SignalRContext
from ._credentials import AnyCredential, CredentialAdapter, credential_from_settings
from ._endpoint import ServiceEndpoint
from ._errors import ConfigurationError, NotReadyError, SignalRAuthError
from ._keepers import AccessKeyKeeper, EntraTokenKeeper
from ._options import Options, OptionsKwargs
from ._rest import RestClient
from ._secrets import Secret
from ._service_tokens import ServiceTokens
from ._signing import ClientTokenIssuer, StaticKey
from ._version import __version__
from .server import ServerAuthorization, ServerConnectionPools, ServerHub, check_server_hubs

__all__ = ["CONNECTION_STRING_VARIABLE", "SignalRAuth"]

logger = logging.getLogger("signalr_asgi_auth")

CONNECTION_STRING_VARIABLE = "AZURE_SIGNALR_CONNECTION_STRING"
_USER_AGENT = f"signalr-asgi-auth/{__version__}"
_CLOSE_TIMEOUT = 5.0


class _Runtime:
    """Everything that lives from startup to shutdown on one event loop."""

    def __init__(self, auth: SignalRAuth, *, lazy: bool = False) -> None:
        options = auth.options
        self.loop = anyio.lowlevel.current_token()
        self.started_at = options.clock.now()
        self.startup_deadline = self.started_at + options.startup_timeout
        self._owns_http = auth._http_client is None
        self.http = auth._http_client or httpx2.AsyncClient(
            headers={"User-Agent": _USER_AGENT}, follow_redirects=False
        )
        self.adapter: CredentialAdapter | None = None
        self.entra: EntraTokenKeeper | None = None
        self.keys: AccessKeyKeeper | None = None
        self.service: ServiceTokens | None = None
        self.probe_error: SignalRAuthError | None = None
        self.servers: ServerConnectionPools | None = None
        if auth._access_key is not None:
            key = _static_signing_key(auth._access_key)
            self._server_authorization(auth, entra=None, key=key)
            self.issuer = ClientTokenIssuer(
                mode="key",
                options=options,
                keys=StaticKey(key),
                service=None,
            )
            rest = RestClient(endpoint=auth.endpoint, options=options, http=self.http, key=key)
        else:
            try:
                credential, owned = auth._make_credential()
            except ConfigurationError as exc:
                if not lazy:
                    raise
                # No lifespan to fail: keep serving, and let every negotiation say what is wrong.
                logger.error("SignalR configuration error: %s", exc)
                credential, owned = _UnusableCredential(exc), False
            self.adapter = CredentialAdapter(
                credential,
                scope=options.scope,
                timeout=options.credential_timeout,
                owned=owned,
                now=options.clock.now,
            )
            self.entra = EntraTokenKeeper(self.adapter, options=options)
            if options.mode != "service":
                self.keys = AccessKeyKeeper(
                    endpoint=auth.endpoint, entra=self.entra, http=self.http, options=options
                )
            if options.mode != "key":
                self.service = ServiceTokens(
                    endpoint=auth.endpoint, entra=self.entra, http=self.http, options=options
                )
            self.issuer = ClientTokenIssuer(
                mode=options.mode,
                options=options,
                keys=self.keys,
                service=self.service,
            )
            if self.keys is not None and self.service is not None:
                self.keys.on_forbidden = self.issuer.key_forbidden
            rest = RestClient(
                endpoint=auth.endpoint, options=options, http=self.http, entra=self.entra
            )
            self._server_authorization(auth, entra=self.entra, key=None)
        self.context = SignalRContext(
            endpoint=auth.endpoint,
            options=options,
            issuer=self.issuer,
            health=auth.health,
            rest=rest,
            server_connections=self.servers.not_ready if self.servers is not None else None,
        )

    def _server_authorization(
        self, auth: SignalRAuth, *, entra: EntraTokenKeeper | None, key: SigningKey | None
    ) -> None:
        """Default mode: the hubs' server connections, authorized as the rest of the app is."""
        if auth._hubs:
            authorization = ServerAuthorization(entra=entra, key=key, clock=auth.options.clock)
            self.servers = ServerConnectionPools(
                auth._hubs,
                endpoint=auth.endpoint,
                authorization=authorization,
                options=auth.options,
                http=self.http,
            )

    def start(self, task_group: TaskGroup) -> None:
        if self.entra is not None:
            task_group.start_soon(self.entra.run, name="signalr_asgi_auth.EntraTokenKeeper")
        if self.keys is not None:
            task_group.start_soon(self.keys.run, name="signalr_asgi_auth.AccessKeyKeeper")
        if self.servers is not None:
            task_group.start_soon(self.servers.run, name="signalr_asgi_auth.ServerConnections")

    @property
    def ready(self) -> bool:
        """Whether client tokens can be issued (startup need not wait any longer)."""
        if self.entra is None:
            return True
        if self.keys is None:
            return self.entra.ready.is_set()
        return self.keys.ready.is_set() or self.issuer.service_ready.is_set()

    async def wait_ready(self, clock_now: float) -> bool:
        """Wait until client tokens can be issued, at most until the startup deadline; whether
        they can."""
        with anyio.move_on_after(max(self.startup_deadline - clock_now, 0.0)):
            await self._until_ready()
        return self.ready

    async def _until_ready(self) -> None:
        if self.entra is None or self.ready:
            return
        if self.keys is None:
            await self.entra.ready.wait()
            return
        if self.service is None:
            await self.keys.ready.wait()
            return
        # auto: the key, unless the access-key call answers 403 and the service issues tokens
        await _first_set(self.keys.ready, self.issuer.fallback_ready)
        if not self.keys.ready.is_set():
            self.probe_error = await self.issuer.probe_service()
            if self.probe_error is not None:
                await self.keys.ready.wait()

    async def stop_server_connections(self) -> None:
        if self.servers is not None:
            await self.servers.stop()

    async def aclose(self) -> None:
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            if self._owns_http:
                await self.http.aclose()
            if self.adapter is not None:
                await self.adapter.close()


async def _first_set(*events: anyio.Event) -> None:
    """Return once any of ``events`` is set."""
    async with anyio.create_task_group() as task_group:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            task_group.cancel_scope.cancel()

        for event in events:
            task_group.start_soon(wait, event)


class _UnusableCredential:
    """Stands in for a credential that could not be created, failing with the reason."""

    def __init__(self, error: ConfigurationError) -> None:
        self._error = error

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise self._error


def _static_signing_key(access_key: Secret) -> SigningKey:
    # The service ignores kid for a resource's own keys (the C# SDK sends a random one); a digest
    # prefix keeps it the same in every worker, which helps when reading logs.
    digest = hashlib.sha256(access_key.reveal().encode()).hexdigest()[:12]
    return SigningKey(key_id=f"key-{digest}", secret=access_key)


class SignalRAuth:
    """Azure SignalR Service authentication for one resource.

    Give it an ``endpoint`` and either a ``credential`` (any azure-identity credential: managed
    identity, workload identity, a service principal...) or, for local development, an
    ``access_key``. Every other option is keyword-only with a safe default; see the README.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        credential: AnyCredential | None = None,
        access_key: str | None = None,
        client_endpoint: str | None = None,
        server_endpoint: str | None = None,
        port: int | None = None,
        http_client: httpx2.AsyncClient | None = None,
        hubs: Sequence[ServerHub] = (),
        **options: Unpack[OptionsKwargs],
    ) -> None:
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
        self._setup(
            service,
            credential=credential,
            factory=None,
            access_key=Secret(access_key) if access_key is not None else None,
            http_client=http_client,
            options=Options.build(**options),
            hubs=hubs,
        )

    def _setup(
        self,
        endpoint: ServiceEndpoint,
        *,
        credential: AnyCredential | None,
        factory: Callable[[], AnyCredential] | None,
        access_key: Secret | None,
        http_client: httpx2.AsyncClient | None,
        options: Options,
        hubs: Sequence[ServerHub],
    ) -> None:
        if credential is not None and not callable(getattr(credential, "get_token", None)):
            msg = (
                "credential must be an azure-identity credential (TokenCredential or "
                f"AsyncTokenCredential), not {type(credential).__name__}."
            )
            raise ConfigurationError(msg)
        if access_key is not None and options.mode == "service":
            msg = (
                "mode='service' asks SignalR Service for client tokens with a Microsoft Entra "
                "identity, but this configuration signs with an access key: pass credential= "
                "(or a connection string with AuthType), or use mode='auto' or 'key'."
            )
            raise ConfigurationError(msg)
        self.endpoint = endpoint
        self.options = options
        self._credential = credential
        self._credential_factory = factory
        self._access_key = access_key
        self._http_client = http_client
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
        hubs: Sequence[ServerHub] = (),
        **options: Unpack[OptionsKwargs],
    ) -> SignalRAuth:
        """Configure from a connection string, as the C# SDK reads it.

        ``AuthType=azure.msi`` (managed identity), ``azure.app`` (service principal), ``azure``
        (DefaultAzureCredential) or ``aad`` choose a credential, created at startup and closed at
        shutdown; ``credential=`` overrides that choice. Without ``AuthType`` the ``AccessKey``
        signs tokens. With no argument, ``AZURE_SIGNALR_CONNECTION_STRING`` is read.
        """
        if connection_string is None:
            connection_string = os.environ.get(CONNECTION_STRING_VARIABLE)
            if not connection_string:
                msg = (
                    f"No connection string: pass one, or set {CONNECTION_STRING_VARIABLE}, e.g. "
                    "Endpoint=https://<name>.service.signalr.net;AuthType=azure.msi;Version=1.0;"
                )
                raise ConfigurationError(msg)
        settings = parse_connection_string(
            connection_string, credential_given=credential is not None
        )
        if credential is not None and settings.auth_type is None and settings.access_key:
            msg = (
                "The connection string holds an AccessKey and credential= was passed too; remove "
                "the AccessKey to use the credential, or drop credential= to sign with the key."
            )
            raise ConfigurationError(msg)
        entra = credential is not None or settings.auth_type is not None
        built = Options.build(**options)
        auth = cls.__new__(cls)
        auth._setup(
            settings.endpoint,
            credential=credential,
            factory=partial(credential_from_settings, settings, timeout=built.credential_timeout)
            if credential is None and entra
            else None,
            access_key=None if entra else settings.access_key,
            http_client=http_client,
            options=built,
            hubs=hubs,
        )
        return auth

    def __repr__(self) -> str:
        return (
            f"SignalRAuth(endpoint={self.endpoint.endpoint!r}, "
            f"authentication={self.authentication!r}, mode={self.options.mode!r})"
        )

    @property
    def authentication(self) -> Literal["entra", "access_key"]:
        """``entra`` (a credential proves who the app is) or ``access_key`` (a configured key);
        not to be confused with the ``mode`` option, which says who signs client tokens."""
        return "access_key" if self._access_key is not None else "entra"

    def _make_credential(self) -> tuple[AnyCredential, bool]:
        """The credential, and whether this library created it (and so must close it)."""
        if self._credential is not None:
            return self._credential, False
        assert self._credential_factory is not None
        return self._credential_factory(), True

    # -- lifetime ----------------------------------------------------------------------------

    async def __aenter__(self) -> SignalRContext:
        if self._stack is not None:
            msg = "This SignalRAuth is already running; enter it once (the middleware does)."
            raise RuntimeError(msg)
        stack = AsyncExitStack()
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
            await stack.__aexit__(*sys.exc_info())
            raise
        self._stack, self._runtime = stack, runtime
        return runtime.context

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._stack, self._runtime = self._stack, None, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, traceback)

    async def _await_first_key(self, runtime: _Runtime) -> None:
        if await runtime.wait_ready(self.options.clock.now()):
            return
        if runtime.keys is not None:
            also = ""
            if runtime.probe_error is not None:
                also = f" SignalR Service does not issue client tokens to it either: {runtime.probe_error}"
            logger.warning(
                "Starting without a SignalR access key after %.0f s: %s%s Negotiation answers 503 "
                "until a key arrives.",
                self.options.startup_timeout,
                runtime.keys.not_ready(),
                also,
            )
        elif runtime.entra is not None:
            error = runtime.entra.attempts.last_error
            logger.warning(
                "Starting without a Microsoft Entra token after %.0f s: %s Negotiation answers "
                "503 until one arrives.",
                self.options.startup_timeout,
                error or "the first request to the credential is under way.",
            )

    async def _await_server_connections(self, runtime: _Runtime) -> None:
        servers = runtime.servers
        if servers is None:
            return
        left = max(runtime.startup_deadline - self.options.clock.now(), 0.0)
        with anyio.move_on_after(left):
            await servers.wait_up()
        for pool in servers.down():
            logger.warning(
                "Starting without a server connection for hub %r after %g s: %s Negotiation for "
                "it answers 503 until one is up.",
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

    async def request_context(self) -> SignalRContext:
        """The context for a request on the current event loop, starting lazily if needed."""
        runtime = self._runtime
        if runtime is None or runtime.loop != anyio.lowlevel.current_token():
            runtime = await self._start_lazily()
        if not runtime.ready:
            await runtime.wait_ready(self.options.clock.now())
        return runtime.context

    async def _start_lazily(self) -> _Runtime:
        if not self._lazy_warned:
            self._lazy_warned = True
            logger.warning(
                "SignalRAuthMiddleware saw a request before any lifespan startup, so it starts "
                "now and never shuts down cleanly. Run the server with lifespan on (uvicorn's "
                "default) so that startup waits for the key and shutdown closes the credential."
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
        """
        runtime = self._runtime
        report: dict[str, Any] = {
            "authentication": self.authentication,
            "client_tokens": self.options.mode if self._access_key is None else "key",
            "endpoint": self.endpoint.endpoint,
        }
        if runtime is None:
            return {"status": "stopped", **report}
        report["signing"] = runtime.issuer.signing
        status = "ok"
        if runtime.entra is not None:
            report["entra_token"] = runtime.entra.health()
            if runtime.keys is not None:
                report["access_key"] = runtime.keys.health()
            if runtime.service is not None:
                report["service_tokens"] = runtime.service.health()
            status = _status(report)
        if runtime.servers is not None:
            report["server_connections"] = runtime.servers.health()
            status = _worst(status, runtime.servers.status())
        return {"status": status, **report}

    def not_ready(self) -> NotReadyError | None:
        """Why negotiation would fail now for want of a key, or ``None`` if it would not."""
        runtime = self._runtime
        if runtime is None or runtime.keys is None or runtime.issuer.signing == "service":
            return None
        try:
            runtime.keys.current()
        except NotReadyError as exc:
            return exc
        return None


_SEVERITY = ("ok", "degraded", "starting", "unavailable")


def _worst(status: str, other: str | None) -> str:
    """The worse of two statuses (``None``: no opinion)."""
    if other is None or status not in _SEVERITY:
        return status
    return max(status, other, key=_SEVERITY.index)


def _status(report: dict[str, Any]) -> str:
    """The health status from the snapshots of the parts in use."""
    service = report.get("service_tokens")
    if report["signing"] == "service":
        assert service is not None
        entra = report["entra_token"]
        if service["consecutive_failures"]:
            return "unavailable"
        if entra["valid"]:
            failing = entra["consecutive_failures"] or report["client_tokens"] == "auto"
            return "degraded" if failing else "ok"
        return "unavailable" if entra["consecutive_failures"] else "starting"
    keys = report["access_key"]
    if keys["valid"]:
        return "degraded" if keys["consecutive_failures"] else "ok"
    if keys["consecutive_failures"] or keys["key_id"]:
        return "unavailable"
    return "starting"


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
