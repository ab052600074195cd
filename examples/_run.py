"""How ``python -m examples.<app>`` starts: on Azure when ``AZURE_SIGNALR_CONNECTION_STRING`` is
set, otherwise on the embedded emulator (no Azure account needed). ``SIGNALR_SERVICE_MODE`` picks
the service mode: ``default`` (the app opens server connections) or ``serverless`` (the service
calls the app back at ``/upstream/{event}``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack

import uvicorn
from starlette.types import ASGIApp

from signalr_asgi_auth import CONNECTION_STRING_VARIABLE, SignalRAuth, UpstreamVerifier
from signalr_asgi_auth.emulator import (
    LocalEmulator,
    ManagedIdentityAuth,
    UpstreamSettings,
    UpstreamTemplate,
    local_emulator,
)

from ._chat_hub import chat
from ._upstream import AUDIENCE, UPSTREAM_PATH, azure_verifier

__all__ = ["MODE_VARIABLE", "emulator_upstream", "emulator_verifier", "run", "service_mode"]

MODE_VARIABLE = "SIGNALR_SERVICE_MODE"

CreateApp = Callable[[SignalRAuth, UpstreamVerifier | None], ASGIApp]


def service_mode() -> str:
    """``SIGNALR_SERVICE_MODE``: ``default`` unless it says ``serverless``."""
    mode = os.environ.get(MODE_VARIABLE, "default").strip().lower() or "default"
    if mode not in ("default", "serverless"):
        msg = f"{MODE_VARIABLE} is 'default' or 'serverless', not {mode!r}."
        raise SystemExit(msg)
    return mode


def run(create_app: CreateApp, *, name: str) -> None:
    """Serve ``create_app(auth, verifier)`` with uvicorn on ``$HOST:$PORT`` (127.0.0.1:8000) until
    Ctrl-C."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    mode = service_mode()
    hubs = [chat] if mode == "default" else []
    verifier: UpstreamVerifier | None = None
    with ExitStack() as stack:
        if os.environ.get(CONNECTION_STRING_VARIABLE):
            auth = SignalRAuth.from_connection_string(hubs=hubs)
            where = f"{auth.endpoint.endpoint} (from {CONNECTION_STRING_VARIABLE})"
            if mode == "serverless":
                verifier = azure_verifier()
                if verifier is None:
                    print("No UPSTREAM_AUDIENCE and UPSTREAM_TENANT_ID: /upstream answers 404.")
        else:
            local = stack.enter_context(local_emulator(service_mode=mode))
            auth = SignalRAuth.from_connection_string(local.connection_string, hubs=hubs)
            if mode == "serverless":
                # The emulator calls the app back here; a wildcard address is reached on loopback.
                reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
                local.emulator.upstream = emulator_upstream(f"http://{reachable}:{port}")
                verifier = emulator_verifier(local)
            where = (
                f"the embedded emulator at {local.url} (set {CONNECTION_STRING_VARIABLE} for Azure)"
            )
        print(f"{name} chat in {mode.capitalize()} mode on {where}")
        print(f"Open http://{host}:{port}/ in two browser tabs; Ctrl-C stops it.", flush=True)
        # "warning": uvicorn's loggers are shared with the emulator's server, and at "info" they
        # would print each browser's WebSocket URL, access token included.
        uvicorn.run(create_app(auth, verifier), host=host, port=port, log_level="warning")


def emulator_upstream(app_url: str) -> UpstreamSettings:
    """The local emulator's upstream for the chat app at ``app_url``: every event of hub ``chat``,
    with a managed-identity token for ``AUDIENCE``."""
    template = UpstreamTemplate(
        f"{app_url.rstrip('/')}{UPSTREAM_PATH}",
        hub_pattern=chat.name,
        auth=ManagedIdentityAuth(AUDIENCE),
    )
    return UpstreamSettings([template])


def emulator_verifier(local: LocalEmulator) -> UpstreamVerifier:
    """Accepts the local emulator's upstream tokens: its tenant, its identity, ``AUDIENCE``."""
    return UpstreamVerifier(
        audience=AUDIENCE,
        tenant_id=local.emulator.tenant_id,
        authority=local.url,
        allowed_object_ids=[local.emulator.system_identity.object_id],
    )
