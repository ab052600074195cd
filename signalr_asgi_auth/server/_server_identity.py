"""Who this process is to SignalR Service: its server id, its user agent, and its server tokens."""

from __future__ import annotations

import os
import platform
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .._client_tokens import SigningKey, mint_client_token
from .._clock import Clock
from .._credentials import EntraToken
from .._keepers import EntraTokenKeeper
from .._version import __version__

__all__ = ["SERVER_TOKEN_LIFETIME", "ServerAuthorization", "server_id", "user_agent"]

SERVER_TOKEN_LIFETIME: Final = 3600.0
"""A key-signed server token lives an hour, as .NET's (minted anew for every connect attempt)."""

_server_ids: dict[int, str] = {}


def server_id() -> str:
    """``{host name}_{random hex}``, one per process, as .NET's ``DefaultServerNameProvider``.

    Keyed by process id: workers forked from one parent (gunicorn) are separate servers to the
    service, so each must make its own.
    """
    pid = os.getpid()
    known = _server_ids.get(pid)
    if known is None:
        known = _server_ids[pid] = f"{socket.gethostname()}_{uuid.uuid4().hex}"
    return known


def user_agent() -> str:
    """``Asrs-User-Agent``: this library, Python and the OS, in the form .NET's ProductInfo uses."""
    python = f"{platform.python_implementation()} {platform.python_version()}"
    system = f"{platform.system()} {platform.release()}".strip()
    return f"signalr-asgi-auth/{__version__} ({python}; {system}; {platform.machine()})"


@dataclass(frozen=True, slots=True)
class ServerAuthorization:
    """The ``Authorization`` of server connections: the Entra token the keeper holds, or a
    server token signed with the connection string's access key."""

    entra: EntraTokenKeeper | None
    key: SigningKey | None
    clock: Clock

    @property
    def access_key(self) -> bool:
        return self.key is not None

    async def bearer(self, audience: str) -> tuple[str, Callable[[], None]]:
        """The bearer for one connect attempt, and what to call if the service answers 401."""
        if self.entra is not None:
            token = await self.entra.get()  # held by the keeper; fetched only when expiring
            return token.token.reveal(), _discard(self.entra, token)
        assert self.key is not None
        # .NET's server token: aud of the hub's server URL (host only), nameid = the server id.
        minted = mint_client_token(
            self.key,
            audience=audience,
            claims={"nameid": server_id()},
            lifetime=SERVER_TOKEN_LIFETIME,
            now=self.clock.now(),
        )
        return minted, _nothing


def _discard(entra: EntraTokenKeeper, token: EntraToken) -> Callable[[], None]:
    return lambda: entra.discard(token)


def _nothing() -> None:
    return None
