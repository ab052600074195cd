"""Helpers for the several-endpoints tests: a compressed clock and emulators served side by side."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import jwt

from signalr_asgi_auth import SignalRAuth
from signalr_asgi_auth.emulator import (
    Emulator,
    IdentityAuthority,
    resource_id_named,
    serve_in_thread,
)

from ..support import FAST

OPTIONS: dict[str, Any] = {**FAST, "health_check_interval": 30, "health_check_timeout": 0.5}
"""The several-endpoint tests' options: 30 s probes, which the compressed clock makes 0.3 s."""

FACTOR = 100.0
"""Clock seconds per real second: a 30 s probe interval takes 0.3 s."""


class FastClock:
    """Wall-clock time that runs ``factor`` times faster than real time, sleeps included."""

    def __init__(self, factor: float = FACTOR) -> None:
        self.factor = factor
        self._start = time.time()
        self._real = time.monotonic()

    def now(self) -> float:
        return self._start + (time.monotonic() - self._real) * self.factor

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(seconds, 0.0) / self.factor)


@contextmanager
def served(count: int, service_mode: str = "serverless") -> Iterator[list[tuple[Emulator, str]]]:
    """``count`` emulators, each its own resource with its own keys, on their own ports."""
    with ExitStack() as stack:
        pairs = []
        for _ in range(count):
            emulator = Emulator(service_mode=service_mode)
            pairs.append((emulator, stack.enter_context(serve_in_thread(emulator.app))))
        yield pairs


@contextmanager
def one_tenant(
    *names: str, token_lifetime: float = 24 * 3600
) -> Iterator[list[tuple[Emulator, str]]]:
    """Resources of one tenant (fanout's shared :class:`IdentityAuthority`): a token from the
    first one's identity endpoint is valid at each; roles are per resource."""
    authority = IdentityAuthority(token_lifetime=token_lifetime)
    with ExitStack() as stack:
        pairs = []
        for name in names:
            emulator = Emulator(resource_id=resource_id_named(name), authority=authority)
            pairs.append((emulator, stack.enter_context(serve_in_thread(emulator.app))))
        yield pairs


def key_string(emulator: Emulator, url: str) -> str:
    return emulator.connection_string(url, auth_type=None)


def token_claims(token: str, emulator: Emulator, url: str, hub: str = "chat") -> dict[str, Any]:
    """The claims of a client token, checked with ``emulator``'s own key and its audience."""
    claims: dict[str, Any] = jwt.decode(
        token,
        emulator.access_keys[0].encode(),
        algorithms=["HS256"],
        leeway=24 * 3600,  # the app's clock runs fast: its iat is ahead of ours
        audience=f"{urlsplit(url).scheme}://{urlsplit(url).hostname}/client/?hub={hub}",
    )
    return claims


def health_requests(emulator: Emulator) -> int:
    return sum(1 for entry in emulator.log if entry.route == "signalr.health")


def several(
    pairs: list[tuple[Emulator, str]],
    names: list[str],
    *,
    compressed: bool = True,
    **options: Any,
) -> SignalRAuth:
    """An app on ``pairs`` under ``names`` (``"<name>[:<type>]"``), each with its access key;
    on the compressed clock unless ``compressed=False`` (needed where the emulator checks the
    times of tokens the app signs: REST calls, client connections)."""
    strings = {
        name: key_string(emulator, url) for name, (emulator, url) in zip(names, pairs, strict=True)
    }
    clock = {"clock": FastClock()} if compressed else {}
    return SignalRAuth.from_connection_strings(strings, **{**OPTIONS, **clock, **options})
