"""``signalr-asgi-auth doctor``: check, in order, everything an app needs from Azure, and say how
to fix what is wrong.

Each check is one real request (no retries, one ``--timeout`` each), so the answer is the
service's own. Statuses: ``pass`` (✓), ``fail`` (✗) and ``skip`` (an en dash, with the reason). A check is
*required* or *optional*: the exit code is 1 when a required check fails (every check counts
with ``--strict``). Optional are what only some apps need: the service-issued token and the REST
call (*SignalR REST API Owner*, needed for Serverless fallback signing and for sending through
the REST API, not for Default mode's hubs). Nothing secret is printed: no token, key or secret
from the connection string; the Entra token only as the ids its claims name.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal, TextIO
from urllib.parse import quote

import anyio
import httpx2

from ._backoff import Backoff
from ._call_deadline import request_within
from ._client_tokens import SigningKey, mint_client_token
from ._clock import SystemClock
from ._connection_string import ConnectionSettings, parse_connection_string
from ._credentials import CredentialAdapter, credential_from_settings, read_principal
from ._durations import seconds_argument
from ._errors import ConfigurationError, SignalRAuthError, printable
from ._keepers import EntraTokenKeeper, entra_call
from ._options import Options
from ._rbac import DataAction
from ._rest import API_VERSION
from ._service_errors import service_error, transport_error
from ._service_tokens import GENERATE_TOKEN_API_VERSION
from .endpoints._config import ENVIRONMENT_PREFIX, endpoint_key_of_variable, parse_endpoint_key

__all__ = ["add_doctor_command", "doctor_targets", "run_doctor"]

ENV_VARIABLE: Final = "AZURE_SIGNALR_CONNECTION_STRING"
Status = Literal["pass", "fail", "skip"]
_MARKS: Final = {"pass": "✓", "fail": "✗", "skip": "\N{EN DASH}"}
_GROUP: Final = "signalr-asgi-auth-doctor"
_SERVERLESS_WORDS: Final = "serverless"


@dataclass
class Check:
    """One line of the checklist."""

    id: str
    title: str
    status: Status = "skip"
    required: bool = True
    detail: str = ""
    fix: str = ""


@dataclass
class _Context:
    settings: ConnectionSettings | None = None
    http: httpx2.AsyncClient | None = None
    entra: EntraTokenKeeper | None = None
    adapter: CredentialAdapter | None = None
    key: SigningKey | None = None
    principal_oid: str | None = None
    server: Literal["up", "serverless", "failed", "not tried"] = "not tried"
    notes: list[str] = field(default_factory=list)


class Doctor:
    """Runs the checks in order; later checks are skipped when what they need failed."""

    def __init__(
        self, connection_string: str | None, *, hub: str, timeout: float, progress: TextIO
    ) -> None:
        self._connection_string = connection_string
        self._hub = hub
        self._timeout = timeout
        self._progress = progress
        self._options = Options.build(
            request_timeout=timeout, credential_timeout=timeout, retry_max_delay=timeout
        )
        self._context = _Context()
        self.checks: list[Check] = []

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> list[Check]:
        steps: list[tuple[Check, Callable[[Check], Awaitable[None]]]] = [
            (Check("connection_string", "Connection string"), self._connection_string_check),
            (Check("entra_token", "Microsoft Entra token"), self._entra_check),
            (Check("service_health", "Service health (HEAD /api/health)"), self._health_check),
            (
                Check("access_key", "Temporary access key (SignalR App Server)"),
                self._access_key_check,
            ),
            (
                Check(
                    "service_token",
                    "Service-issued client token (SignalR REST API Owner)",
                    required=False,
                ),
                self._service_token_check,
            ),
            (
                Check("rest_api", "REST API call (SignalR REST API Owner)", required=False),
                self._rest_check,
            ),
            (Check("server_connection", "Server connection (Default mode)"), self._server_check),
            (Check("service_mode", "Service mode"), self._mode_check),
        ]
        async with httpx2.AsyncClient(timeout=self._timeout) as http:
            self._context.http = http
            try:
                for check, step in steps:
                    self._show_progress(check)
                    try:
                        await step(check)
                    except _Skipped:
                        check.status, check.detail = "skip", "Needs a connection string."
                    except SignalRAuthError as exc:
                        check.status, check.detail = "fail", str(exc)
                    self._clear_progress()
                    self.checks.append(check)
            finally:
                if self._context.adapter is not None:
                    await self._context.adapter.close()
        return self.checks

    def _show_progress(self, check: Check) -> None:
        end = "\r" if self._progress.isatty() else "\n"
        self._progress.write(f"… checking {check.title}{end}")
        self._progress.flush()

    def _clear_progress(self) -> None:
        if self._progress.isatty():
            self._progress.write("\x1b[2K")
            self._progress.flush()

    # -- the checks ----------------------------------------------------------------------------

    async def _connection_string_check(self, check: Check) -> None:
        text = self._connection_string
        if not text:
            check.status = "fail"
            check.detail = f"No connection string: {ENV_VARIABLE} is not set."
            check.fix = (
                f"Set {ENV_VARIABLE} (on App Service: az webapp config appsettings set --name "
                f"<app> --resource-group <group> --settings {ENV_VARIABLE}='Endpoint=https://"
                "<name>.service.signalr.net;AuthType=azure.msi;Version=1.0;'), or pass "
                "--connection-string."
            )
            return
        try:
            settings = parse_connection_string(text)  # its errors name keys, never values
        except SignalRAuthError as exc:
            check.status, check.detail = "fail", str(exc)
            check.fix = (
                "Copy it again: Endpoint=https://<name>.service.signalr.net;AuthType=azure.msi;"
                "Version=1.0; (az signalr show --name <name> --resource-group <group> --query "
                "hostName gives the host)."
            )
            return
        self._context.settings = settings
        parts = [f"Endpoint={settings.endpoint.endpoint}"]
        if settings.endpoint.server_endpoint != settings.endpoint.endpoint:
            parts.append(f"ServerEndpoint={settings.endpoint.server_endpoint}")
        if settings.auth_type is None:
            parts.append("AccessKey=(hidden)")
        else:
            parts.append(f"AuthType={settings.auth_type}")
            if settings.client_id:
                parts.append(f"ClientId={settings.client_id}")
            if settings.tenant_id:
                parts.append(f"TenantId={settings.tenant_id}")
            if settings.client_secret is not None:
                parts.append("ClientSecret=(hidden)")
        check.status, check.detail = "pass", "; ".join(parts)
        if settings.auth_type is None:
            check.fix = (
                "An access key is a long-lived secret: prefer AuthType=azure.msi with a managed "
                "identity."
            )

    async def _entra_check(self, check: Check) -> None:
        settings = self._context.settings
        if settings is None:
            check.detail = "Needs a connection string."
            return
        if settings.auth_type is None:
            self._context.key = SigningKey(key_id="", secret=_access_key(settings))
            check.detail = (
                "Access-key connection string: no Entra token is used; the key signs the "
                "server's tokens (checked by the REST and server-connection checks)."
            )
            return
        credential = credential_from_settings(settings, timeout=self._timeout)
        adapter = CredentialAdapter(
            credential,
            scope=self._options.scope,
            timeout=self._timeout,
            owned=True,
            now=self._options.clock.now,
        )
        self._context.adapter = adapter
        keeper = EntraTokenKeeper(adapter, options=self._options)
        try:
            token = await keeper.get()
        except SignalRAuthError as exc:
            check.status, check.detail = "fail", str(exc)
            check.fix = _entra_fix(settings)
            return
        self._context.entra = keeper
        principal = read_principal(token.token.reveal())
        self._context.principal_oid = principal.object_id
        check.status = "pass"
        check.detail = (
            f"{adapter.name}: object id {principal.object_id or '?'}, app id "
            f"{principal.app_id or '?'}, tenant {principal.tenant_id or '?'}"
        )

    async def _health_check(self, check: Check) -> None:
        endpoint = self._settings().endpoint
        url = endpoint.server_url("/api/health")
        try:
            response = await request_within(self._http(), "HEAD", url, timeout=self._timeout)
        except httpx2.HTTPError as exc:
            error = transport_error(exc, endpoint=endpoint, doing="check its health")
            check.status, check.detail = "fail", str(error)
            check.fix = (
                "Check the Endpoint (and ServerEndpoint) in the connection string, DNS and the "
                "network path (private endpoint, firewall): az signalr show --name "
                f"{self._resource()} --resource-group <group> --query hostName"
            )
            return
        if response.status_code == 200:
            check.status, check.detail = "pass", f"{url} answered 200"
            return
        check.status = "fail"
        check.detail = f"{url} answered {response.status_code}"
        check.fix = (
            "The service reports itself unhealthy: see its Resource health in the Azure portal "
            f"(az signalr show --name {self._resource()} --resource-group <group> --query "
            "provisioningState) and retry later."
        )

    async def _access_key_check(self, check: Check) -> None:
        entra = self._entra_or_skip(check, "no temporary key is needed.")
        if entra is None:
            return
        endpoint = self._settings().endpoint
        try:
            response = await entra_call(
                self._http(),
                entra,
                "GET",
                endpoint.access_key_url,
                endpoint=endpoint,
                doing="get a temporary access key",
                action=DataAction.ACCESS_KEY,
                request_timeout=self._timeout,
            )
        except SignalRAuthError as exc:
            check.status, check.detail = "fail", str(exc)
            check.fix = self._role_fix("SignalR App Server", getattr(exc, "status", None))
            return
        body = _json(response)
        key_id = body.get("KeyId") if isinstance(body, dict) else None
        if not isinstance(key_id, str) or not isinstance(body.get("AccessKey"), str):
            check.status = "fail"
            check.detail = "The service answered 200 without a KeyId and AccessKey."
            return
        check.status, check.detail = "pass", f"got key {key_id} (the key itself is not shown)"

    async def _service_token_check(self, check: Check) -> None:
        entra = self._entra_or_skip(check, "client tokens are signed locally.")
        if entra is None:
            return
        endpoint = self._settings().endpoint
        hub = quote(self._hub, safe="")
        try:
            response = await entra_call(
                self._http(),
                entra,
                "POST",
                endpoint.server_url(f"/api/hubs/{hub}/:generateToken"),
                endpoint=endpoint,
                doing=f"get a client token for hub {self._hub!r}",
                action=DataAction.CLIENT_TOKEN,
                request_timeout=self._timeout,
                params=[("api-version", GENERATE_TOKEN_API_VERSION), ("minutesToExpire", "1")],
            )
        except SignalRAuthError as exc:
            check.status, check.detail = "fail", str(exc)
            check.fix = self._role_fix("SignalR REST API Owner", getattr(exc, "status", None))
            check.fix += (
                " Optional: needed to send through the REST API, and for signing by the "
                "service (mode='service', or 'auto' without App Server)."
            )
            return
        body = _json(response)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or token.count(".") != 2:
            check.status, check.detail = "fail", "The service answered 200 without a token."
            return
        check.status, check.detail = "pass", "the service issued a client token (not shown)"

    async def _rest_check(self, check: Check) -> None:
        context = self._context
        endpoint = self._settings().endpoint
        path = f"/api/hubs/{quote(self._hub, safe='')}/groups/{_GROUP}"
        url = endpoint.server_url(path)
        bearer: str
        if context.key is not None:
            bearer = mint_client_token(
                context.key, audience=url, claims={}, lifetime=300, now=SystemClock().now()
            )
        elif context.entra is not None:
            bearer = (await context.entra.get()).token.reveal()
        else:
            check.detail = "Needs a Microsoft Entra token or an access key."
            return
        doing = f"check whether group {_GROUP!r} of hub {self._hub!r} exists"
        try:
            response = await request_within(
                self._http(),
                "HEAD",
                url,
                params={"api-version": API_VERSION},
                headers={"Authorization": f"Bearer {bearer}"},
                timeout=self._timeout,
            )
        except httpx2.HTTPError as exc:
            check.status = "fail"
            check.detail = str(transport_error(exc, endpoint=endpoint, doing=doing))
            return
        if response.status_code in (200, 404):
            check.status = "pass"
            check.detail = f"HEAD {path} answered {response.status_code}"
            return
        error = service_error(
            response,
            endpoint=endpoint,
            doing=doing,
            action=DataAction.GROUP_READ,
            token=bearer,
            access_key=context.key is not None,
        )
        check.status, check.detail = "fail", str(error)
        if context.key is not None:
            check.required = True  # the access key itself is what was refused
            check.fix = (
                "The access key was refused: copy the current one (az signalr key list --name "
                f"{self._resource()} --resource-group <group>), or better, use AuthType=azure.msi."
            )
        else:
            check.fix = self._role_fix("SignalR REST API Owner", response.status_code)

    async def _server_check(self, check: Check) -> None:
        from .server import ServerAuthorization, ServerConnectionPool

        context = self._context
        if context.entra is None and context.key is None:
            check.detail = "Needs a Microsoft Entra token or an access key."
            return
        clock = SystemClock()
        pool = ServerConnectionPool(
            endpoint=self._settings().endpoint,
            hub=self._hub.lower(),
            authorization=ServerAuthorization(entra=context.entra, key=context.key, clock=clock),
            http=self._http(),
            backoff=Backoff(self._timeout, self._timeout),
            clock=clock,
            count=1,
        )
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(pool.run)
            with anyio.move_on_after(self._timeout):
                while not pool.first_up.is_set() and pool.last_error is None:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            up = pool.first_up.is_set()
            error = pool.last_error
            await pool.stop(within=min(self._timeout, 5.0))
            tasks.cancel_scope.cancel()
        if up:
            context.server = "up"
            check.status = "pass"
            check.detail = (
                f"opened a server connection for hub {self._hub!r}, handshake done, closed "
                "gracefully"
            )
            return
        detail = str(error) if error is not None else f"no answer within {self._timeout:g} s"
        if _SERVERLESS_WORDS in detail.lower():
            context.server = "serverless"
            check.detail = (
                f"refused: the resource is in Serverless mode ({detail}) — fine for a "
                "Serverless app; a Default-mode app (hubs=) needs Default mode."
            )
            check.fix = (
                f"For Default mode: az signalr update --name {self._resource()} "
                "--resource-group <group> --service-mode Default"
            )
            return
        context.server = "failed"
        check.status, check.detail = "fail", detail
        status = getattr(error, "status", None)
        if status in (401, 403):
            check.fix = self._role_fix("SignalR App Server", status)
        elif context.key is not None and status == 401:
            check.fix = "The access key was refused: copy the current one (az signalr key list)."
        else:
            check.fix = (
                "Check that WebSockets to the server endpoint are allowed (proxies, firewalls, "
                "private endpoints) and that the resource is running."
            )

    async def _mode_check(self, check: Check) -> None:
        server = self._context.server
        if server == "up":
            check.status = "pass"
            check.detail = "Default (or Classic): the service accepted a server connection."
        elif server == "serverless":
            check.status = "pass"
            check.detail = (
                "Serverless: the service refused a server connection as Serverless mode does. "
                "Whether an upstream is set cannot be told from here: az signalr upstream list "
                f"--name {self._resource()} --resource-group <group>"
            )
        else:
            check.detail = (
                "Cannot be told: no server connection was accepted or refused for the mode. "
                f"Ask Azure: az signalr show --name {self._resource()} --resource-group <group> "
                "--query \"features[?flag=='ServiceMode'].value\""
            )

    # -- helpers -------------------------------------------------------------------------------

    def _entra_or_skip(self, check: Check, with_a_key: str) -> EntraTokenKeeper | None:
        """The keeper for an Entra-only check, or ``None`` with the check skipped and why."""
        if self._context.key is not None:
            check.detail = f"Access-key connection string: {with_a_key}"
        elif self._context.entra is None:
            check.detail = "Needs a Microsoft Entra token."
        return None if self._context.key is not None else self._context.entra

    def _settings(self) -> ConnectionSettings:
        settings = self._context.settings
        if settings is None:
            raise _Skipped
        return settings

    def _http(self) -> httpx2.AsyncClient:
        assert self._context.http is not None
        return self._context.http

    def _resource(self) -> str:
        settings = self._context.settings
        name = settings.endpoint.resource_name if settings is not None else None
        return name or "<name>"

    def _role_fix(self, role: str, status: object) -> str:
        if status not in (401, 403):
            return "Retry; if it persists, check the service's Resource health."
        oid = self._context.principal_oid or "<principal object id>"
        return (
            f'az role assignment create --role "{role}" --assignee-object-id {oid} '
            "--assignee-principal-type ServicePrincipal --scope $(az signalr show --name "
            f"{self._resource()} --resource-group <group> --query id -o tsv)  "
            "(a new role assignment can take a few minutes to apply)"
        )


class _Skipped(SignalRAuthError):
    """A check that needs the connection string, which is missing."""


def _access_key(settings: ConnectionSettings) -> Any:
    assert settings.access_key is not None
    return settings.access_key


def _json(response: httpx2.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _entra_fix(settings: ConnectionSettings) -> str:
    if settings.auth_type in ("azure.msi", "aad"):
        which = (
            f"the user-assigned identity with client id {settings.client_id}"
            if settings.client_id
            else "the system-assigned identity"
        )
        return (
            f"Enable {which} on the app (az webapp identity assign --name <app> "
            "--resource-group <group>) and run where it is available (App Service sets "
            "IDENTITY_ENDPOINT and IDENTITY_HEADER). Locally, use AuthType=azure and az login."
        )
    if settings.auth_type == "azure":
        return "Sign in (az login) or run where a managed identity is available."
    return "Check TenantId, ClientId and the secret or certificate of the app registration."


# -- the command -------------------------------------------------------------------------------


def run_doctor(
    targets: Sequence[tuple[str, str | None]],
    *,
    hub: str = "doctor",
    timeout: float = 10.0,
    strict: bool = False,
    as_json: bool = False,
    out: TextIO,
    err: TextIO,
) -> int:
    """Run every check for each ``(name, connection string)`` and print the checklist (or JSON)
    to ``out``; 0 when every required check passed (every check, with ``strict``), else 1.
    ``name`` is ``""`` for the one connection string, else the endpoint's variable suffix.
    Everything printed that came from outside (names, values, the service's answers) is escaped."""
    results: list[tuple[str, list[Check]]] = []
    seen: dict[str, tuple[str, str]] = {}
    with _quiet_logs():
        for name, connection_string in targets:
            named = [] if name in ("", ENV_VARIABLE) else [_name_check(name, seen)]
            if name:
                err.write(f"endpoint {printable(name)}:\n")
            doctor = Doctor(connection_string, hub=hub, timeout=timeout, progress=err)
            results.append((name, [*named, *anyio.run(doctor.run)]))
    failed = [
        check
        for _, checks in results
        for check in checks
        if check.status == "fail" and (check.required or strict)
    ]
    code = 1 if failed else 0
    if as_json:
        rows = [{"endpoint": name, **asdict(check)} for name, checks in results for check in checks]
        json.dump({"ok": code == 0, "checks": rows}, out, indent=2)  # ASCII: nothing to act on
        out.write("\n")
        return code
    for name, checks in results:
        if name:
            out.write(f"Endpoint {printable(name)}:\n")
        for check in checks:
            optional = "" if check.required else " (optional)"
            detail = printable(check.detail)
            out.write(f"{_MARKS[check.status]} {check.title}{optional}: {detail}\n")
            if check.fix and check.status != "pass":
                out.write(f"    fix: {printable(check.fix)}\n")
    out.write(
        "All required checks passed.\n"
        if code == 0
        else f"{len(failed)} check(s) failed: see 'fix' above.\n"
    )
    return code


def _name_check(name: str, seen: dict[str, tuple[str, str]]) -> Check:
    """Whether the app would accept the endpoint name of variable ``…__<name>``. ``seen``: the
    names before it, by their lower case (the app tells names apart so), and their variables."""
    check = Check("endpoint_name", "Endpoint name")
    variable = f"{ENVIRONMENT_PREFIX}{name}"
    try:
        endpoint, kind = parse_endpoint_key(endpoint_key_of_variable(variable), where=variable)
    except ConfigurationError as exc:
        check.status, check.detail = "fail", str(exc)
        check.fix = (
            f"Rename the variable to {ENVIRONMENT_PREFIX}<name>[__secondary], the name of letters, "
            "digits, '-', '_' and '.'."
        )
        return check
    twin, twin_variable = seen.setdefault(endpoint.lower(), (endpoint, variable))
    if twin_variable != variable:
        check.status = "fail"
        check.detail = f"{twin_variable} names the same endpoint"
        check.detail += (
            "." if twin == endpoint else " (the names differ by case only, as .NET keys may not)."
        )
        check.fix = "Give each endpoint its own name, or remove one of the variables."
        return check
    check.status, check.detail = "pass", f"{endpoint!r}, a {kind}"
    return check


def doctor_targets(
    connection_string: str | None, environ: Mapping[str, str]
) -> list[tuple[str, str | None]]:
    """What to check: ``--connection-string``; else, as ``from_connection_string()`` reads them,
    each ``Azure__SignalR__ConnectionString__<name>[__<type>]`` variable (and
    ``AZURE_SIGNALR_CONNECTION_STRING`` beside them, if set); else that variable alone."""
    if connection_string:
        return [("", connection_string)]
    prefix = ENVIRONMENT_PREFIX.lower()
    named: list[tuple[str, str | None]] = [
        (variable[len(prefix) :], environ[variable])
        for variable in sorted(environ)
        if variable.lower().startswith(prefix)
    ]
    plain = environ.get(ENV_VARIABLE) or None
    if not named:
        return [("", plain)]
    return [(ENV_VARIABLE, plain), *named] if plain else named


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """The checklist says what failed; the library's and azure-identity's warnings would repeat
    it (through logging's last-resort handler) between its lines."""
    loggers = [logging.getLogger(name) for name in ("signalr_asgi_auth", "azure")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def add_doctor_command(subcommands: Any) -> None:
    """The ``doctor`` command of ``python -m signalr_asgi_auth``."""
    parser = subcommands.add_parser(
        "doctor",
        help="check the connection string, the identity, the roles and the service",
        description=(
            "Check, in order, what the app needs from Azure SignalR Service and print a checklist "
            "with the fix for each failure. Exit code 0 when every required check passes."
        ),
    )
    parser.add_argument(
        "--connection-string",
        help=f"the connection string (default: ${ENV_VARIABLE}, or each endpoint's "
        f"{ENVIRONMENT_PREFIX}<name> variable); prefer the variables, since arguments show in "
        "process lists",
    )
    parser.add_argument("--hub", default="doctor", help="the hub to check with (default: doctor)")
    parser.add_argument(
        "--timeout", type=seconds_argument, default=10.0, help="seconds per check (default: 10)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="optional checks count for the exit code too"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the checklist")
    parser.set_defaults(command=_command)


def _command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return run_doctor(
        doctor_targets(args.connection_string, os.environ),
        hub=args.hub,
        timeout=args.timeout,
        strict=args.strict,
        as_json=args.json,
        out=out,
        err=err,
    )
