"""``python -m signalr_asgi_auth emulator``: the emulator in the foreground, for local development.

It prints the connection string and the environment an app needs, then one line per request.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import TextIO
from urllib.parse import urlencode

from ._authority import IdentityAuthority
from ._config import EmulatorConfig, EmulatorConfigError, load_config
from ._emulator import Emulator, resource_id_named
from ._local import parse_resource_names
from ._log import LogEntry
from ._roles import ResourceId
from ._server import run_in_foreground, serve_in_thread
from ._servers import SERVICE_MODES
from ._upstream import UpstreamSettings, is_loopback

__all__ = ["add_emulator_command", "format_entry", "is_loopback"]

DEFAULT_PORT = 8888
"""The port Microsoft's emulator uses too."""


def add_emulator_command(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = subcommands.add_parser(
        "emulator",
        help="run a local emulator of Azure SignalR Service and its managed identity",
        description=(
            "Run a local emulator of Azure SignalR Service with Microsoft Entra ID: a managed "
            "identity endpoint, role assignments, the data plane and the client endpoint. It prints "
            "the environment an app needs, then one line per request."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port, 0 for any ({DEFAULT_PORT})"
    )
    parser.add_argument(
        "--config", type=Path, help="JSON file with identities, roles and the resource id"
    )
    parser.add_argument(
        "--service-mode",
        choices=SERVICE_MODES,
        help=(
            "serverless: clients need no app server (the default, unless the config file says "
            "otherwise); default: app servers connect at /server/ and carry the clients"
        ),
    )
    parser.add_argument(
        "--public-url",
        help="base URL clients use, when not http://HOST:PORT (e.g. behind a proxy)",
    )
    parser.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="URL_TEMPLATE",
        help=(
            "forward client invocations and connection events to this URL ({hub}, {category} "
            "and {event} are filled in), before the config file's upstream templates; repeatable"
        ),
    )
    parser.add_argument(
        "--resources",
        metavar="NAME[,NAME...]",
        help=(
            "several SignalR resources of one tenant (shared identity endpoint and roles), each on "
            "its own port from --port up; a name may end in :secondary (e.g. "
            "east,west,backup:secondary). Prints one Azure__SignalR__ConnectionString__<name> each"
        ),
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="listen on a non-loopback address (the emulator gives tokens to anyone who asks)",
    )
    parser.set_defaults(command=run_emulator)


def run_emulator(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if not is_loopback(args.host) and not args.allow_remote:
        err.write(
            f"Refusing to listen on {args.host}: the emulator hands out tokens and keys to anyone "
            "who can reach it. Use a loopback address, or pass --allow-remote if you mean it.\n"
        )
        return 2
    if not 0 <= args.port <= 65535:
        err.write(f"--port must be between 0 and 65535, got {args.port}.\n")
        return 2
    try:
        config = load_config(args.config) if args.config else EmulatorConfig()
        if args.public_url:
            config = dataclasses.replace(config, public_url=args.public_url)
        if args.service_mode:
            config = dataclasses.replace(config, service_mode=args.service_mode)
        if args.upstream:
            config = _with_upstream(config, args.upstream)
        if args.resources is None:
            resources = {"": "primary"}
            emulator = config.build()
            others: list[tuple[str, Emulator]] = []
        else:
            resources = parse_resource_names(args.resources.split(","))
            authority = IdentityAuthority()
            built = [
                (name, config.build(authority=authority, resource_id=resource_id_named(name)))
                for name in resources
            ]
            (_, emulator), others = built[0], built[1:]
    except (EmulatorConfigError, ValueError) as error:
        err.write(f"{error}\n")
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for _, each in [("", emulator), *others]:
        each.log.add_listener(_request_printer(each, out))
    try:
        with ExitStack() as stack:
            served = [
                (name, other, stack.enter_context(_serve_beside(other, args, offset)))
                for offset, (name, other) in enumerate(others, start=1)
            ]
            first = next(iter(resources))
            run_in_foreground(
                emulator.app,
                host=args.host,
                port=args.port,
                ready=lambda url: _write(
                    out,
                    banner(
                        emulator, url, resources=_several(first, emulator, url, served, resources)
                    ),
                ),
                allow_remote=args.allow_remote,
            )
    except OSError as error:
        err.write(f"Cannot listen on {args.host}:{args.port}: {error.strerror or error}.\n")
        return 1
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled, once it has shut down
        pass
    _write(out, "Emulator stopped.\n")
    return 0


def _serve_beside(
    emulator: Emulator, args: argparse.Namespace, offset: int
) -> AbstractContextManager[str]:
    port = 0 if args.port == 0 else args.port + offset
    return serve_in_thread(emulator.app, host=args.host, port=port, allow_remote=args.allow_remote)


def _several(
    first: str,
    emulator: Emulator,
    url: str,
    served: list[tuple[str, Emulator, str]],
    types: dict[str, str],
) -> list[tuple[str, str, Emulator, str]] | None:
    if not first:
        return None
    return [(first, types[first], emulator, url)] + [
        (name, types[name], emulator, at) for name, emulator, at in served
    ]


def _with_upstream(config: EmulatorConfig, url_templates: list[str]) -> EmulatorConfig:
    configured = config.upstream
    upstream = UpstreamSettings(
        [*url_templates, *configured.templates],
        timeout=configured.timeout,
        allow_remote=configured.allow_remote,
    )
    return dataclasses.replace(config, upstream=upstream)


def banner(
    emulator: Emulator,
    url: str,
    *,
    resources: list[tuple[str, str, Emulator, str]] | None = None,
) -> str:
    """What the command prints once it listens: the connection string and the app's environment.

    ``resources`` (name, type, emulator, URL; the first is ``emulator`` itself) when several
    resources of one tenant run: one ``Azure__SignalR__ConnectionString__<name>`` each."""
    public = emulator.public_url or url
    connection_string = emulator.connection_string(public)
    environment = {**emulator.app_service_env(url)}
    if resources is None:
        environment["AZURE_SIGNALR_CONNECTION_STRING"] = connection_string
        listening = [
            f"Azure SignalR emulator listening on {url}",
            f"Resource: {emulator.resource_id}",
        ]
    else:
        listening = ["Azure SignalR emulator: several resources of one tenant"]
        for name, kind, each, at in resources:
            suffix = "" if kind == "primary" else f"__{kind}"
            environment[f"Azure__SignalR__ConnectionString__{name}{suffix}"] = (
                each.connection_string(each.public_url or at)
            )
            listening.append(f"  {name} ({kind}) on {at}: {each.resource_id}")
        connection_string = "(one per resource, in the environment below)"
    lines = [
        *listening,
        f"Service mode: {emulator.service_mode.capitalize()}"
        + (" (app servers connect at /server/)" if emulator.service_mode == "default" else ""),
        "",
        "Connection string (system-assigned managed identity):",
        f"  {connection_string}",
        "",
        "Environment for the app (the identity header changes on every start):",
        *(f"export {name}={shlex.quote(value)}" for name, value in environment.items()),
        "",
        "Identities and roles:",
        *_identities(emulator),
        "",
        "Upstream (client invocations and connection events):",
        *_upstreams(emulator),
        "",
        "Requests (Ctrl-C stops):",
    ]
    return "\n".join(lines) + "\n"


def _identities(emulator: Emulator) -> list[str]:
    lines: list[str] = []
    for principal in emulator.principals:
        roles = [
            a.role.name + _scope_note(a.scope, emulator.resource_id)
            for a in emulator.assignments
            if a.principal == principal
        ]
        ids = "" if principal == emulator.system_identity else f" (ClientId={principal.client_id})"
        lines.append(f"  {principal.name}{ids}: {', '.join(roles) or 'no roles'}")
    return lines


def _upstreams(emulator: Emulator) -> list[str]:
    templates = emulator.upstream.templates
    if not templates:
        return ["  none: invocations clients await fail with 'no upstream'"]
    lines = []
    for template in templates:
        rule = f"hub={template.hub_pattern} category={template.category_pattern} "
        rule += f"event={template.event_pattern}"
        auth = f", bearer for {template.auth.resource}" if template.auth else ""
        lines.append(f"  {template.url_template}  ({rule}{auth})")
    return lines


def _scope_note(scope: ResourceId, resource: ResourceId) -> str:
    if scope == resource:
        return ""
    # Another resource of the same tenant (several resources) is named by its name alone.
    same_group = (scope.subscription, scope.resource_group) == (
        resource.subscription,
        resource.resource_group,
    )
    return f" at {scope.name}" if scope.name and same_group else f" at {scope}"


def format_entry(entry: LogEntry, principal_name: str | None = None) -> str:
    """One request as one line; the entry's secrets are redacted already."""
    stamp = time.strftime("%H:%M:%S", time.localtime())
    query = f"?{urlencode(entry.query, safe='[]/')}" if entry.query else ""
    line = f"{stamp} {entry.route:<20} {entry.method:<7} {entry.path}{query} -> {entry.status}"
    if entry.principal_oid:
        line += f"  principal={principal_name or entry.principal_oid}"
    return line + "\n"


def _request_printer(emulator: Emulator, out: TextIO) -> Callable[[LogEntry], None]:
    def print_entry(entry: LogEntry) -> None:
        name = None
        if entry.principal_oid:
            principal = emulator.find_principal(object_id=entry.principal_oid)
            name = principal.name if principal else None
        _write(out, format_entry(entry, name))

    return print_entry


def _write(out: TextIO, text: str) -> None:
    out.write(text)
    out.flush()
