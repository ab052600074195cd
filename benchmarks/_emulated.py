"""The emulator for the benchmarks: served in a thread of the runner, on a socket that says it is TCP.

Not :func:`signalr_asgi_auth.emulator.serve_in_thread`: it binds a socket with protocol 0, so
asyncio never sets TCP_NODELAY on the connections it accepts, and every keep-alive request after a
connection's first waits about 40 ms for a delayed ACK (Nagle's algorithm holds the body back
behind the headers). A benchmark that calls the emulator once per token would measure that.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from azure.core.credentials import AccessToken

from signalr_asgi_auth.emulator import Emulator

__all__ = ["EmulatorCredential", "app_environment", "new_emulator", "served"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


def new_emulator(*, token_lifetime: float = 24 * 3600) -> Emulator:
    """An emulator whose system-assigned identity may fetch keys and ask for client tokens;
    ``token_lifetime`` is its managed-identity tokens' (seconds)."""
    emulator = Emulator(token_lifetime=token_lifetime)
    emulator.assign(emulator.system_identity, "SignalR App Server")
    emulator.assign(emulator.system_identity, "SignalR REST API Owner")
    return emulator


class EmulatorCredential:
    """A ``TokenCredential`` holding a token the emulator issued to its system-assigned identity
    for SignalR's audience, whatever scope is asked for.

    The Web PubSub SDK asks for ``https://webpubsub.azure.com/.default``, which the emulator's
    SignalR data plane would refuse; this hands it the SignalR token instead, so that the SDK's
    request reaches ``:generateToken`` and is authorized like ours. Like a real credential it
    caches the token, so a call costs no request to the identity endpoint.
    """

    def __init__(self, emulator: Emulator, *, lifetime: float = 3600.0) -> None:
        self._emulator = emulator
        self._lifetime = lifetime
        self._token: AccessToken | None = None

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token = self._token
        if token is None or token.expires_on - 300 < time.time():
            issued = self._emulator.issue_entra_token(
                self._emulator.system_identity, lifetime=self._lifetime
            )
            token = self._token = AccessToken(issued, int(time.time() + self._lifetime))
        return token


def app_environment(emulator: Emulator, url: str) -> dict[str, str]:
    """What a server process needs: the identity endpoint and a managed-identity connection string."""
    return {
        **emulator.app_service_env(url),
        "AZURE_SIGNALR_CONNECTION_STRING": emulator.connection_string(url),
    }


@contextmanager
def served(emulator: Emulator) -> Iterator[str]:
    """Serve ``emulator`` with uvicorn in a daemon thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(2048)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            emulator.app,
            lifespan="off",
            ws="none",
            log_level="warning",
            log_config=None,
            access_log=False,
            # Longer than the benchmarks' injected delays: a delayed answer finishes, not cancelled.
            timeout_graceful_shutdown=3,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="bench-emulator", daemon=True
        )
        emulator.app.serving_started(url)
        thread.start()
        try:
            deadline = time.monotonic() + _START_TIMEOUT
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    msg = f"The emulator on {url} did not start within {_START_TIMEOUT} s."
                    raise RuntimeError(msg)
                time.sleep(0.005)
            yield url
        finally:
            server.should_exit = True
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                server.force_exit = True
                thread.join(_STOP_TIMEOUT)
            emulator.app.serving_stopped(url)
    finally:
        sock.close()
