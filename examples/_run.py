"""How ``python -m examples.<app>`` starts: on Azure when ``AZURE_SIGNALR_CONNECTION_STRING`` is
set, otherwise on the embedded emulator (no Azure account needed)."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack

import uvicorn
from starlette.types import ASGIApp

from signalr_asgi_auth import CONNECTION_STRING_VARIABLE, SignalRAuth
from signalr_asgi_auth.emulator import local_emulator

__all__ = ["run"]


def run(create_app: Callable[[SignalRAuth], ASGIApp], *, name: str) -> None:
    """Serve ``create_app(auth)`` with uvicorn on ``$HOST:$PORT`` (127.0.0.1:8000) until Ctrl-C."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    with ExitStack() as stack:
        if os.environ.get(CONNECTION_STRING_VARIABLE):
            auth = SignalRAuth.from_connection_string()
            where = f"{auth.endpoint.endpoint} (from {CONNECTION_STRING_VARIABLE})"
        else:
            local = stack.enter_context(local_emulator())
            auth = SignalRAuth.from_connection_string(local.connection_string)
            where = (
                f"the embedded emulator at {local.url} (set {CONNECTION_STRING_VARIABLE} for Azure)"
            )
        print(f"{name} chat on {where}")
        print(f"Open http://{host}:{port}/ in two browser tabs; Ctrl-C stops it.", flush=True)
        # "warning": uvicorn's loggers are shared with the emulator's server, and at "info" they
        # would print each browser's WebSocket URL, access token included.
        uvicorn.run(create_app(auth), host=host, port=port, log_level="warning")
