"""The emulator for the benchmarks: served in a thread of the runner, on a socket that says it is TCP.

Not :func:`signalr_asgi_auth.emulator.serve_in_thread`: it binds a socket with protocol 0, so
asyncio never sets TCP_NODELAY on the connections it accepts, and every keep-alive request after a
connection's first waits about 40 ms for a delayed ACK (Nagle's algorithm holds the body back
behind the headers). A benchmark that calls the emulator once per token would measure that.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from azure.core.credentials import AccessToken

from signalr_asgi_auth.emulator import Emulator, serve_in_thread

__all__ = ["EmulatorCredential", "app_environment", "new_emulator", "served"]


def new_emulator(
    *, token_lifetime: float = 24 * 3600, service_mode: str = "serverless"
) -> Emulator:
    """An emulator whose system-assigned identity may fetch keys, ask for client tokens, send
    through the REST API and open server connections; ``token_lifetime`` is its managed-identity
    tokens' (seconds)."""
    emulator = Emulator(token_lifetime=token_lifetime, service_mode=service_mode)
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
    with serve_in_thread(emulator.app) as url:
        yield url
