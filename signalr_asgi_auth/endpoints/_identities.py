"""One credential and one Entra token per identity, however many endpoints use it.

The Entra scope and audience are the same for every SignalR resource, so a token serves them all:
three endpoints on one managed identity cost one identity call per refresh, not three. Each
resource still needs its own role assignment, and issues its own key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskGroup
from azure.core.credentials import AccessToken

from .._credentials import CredentialAdapter, credential_from_settings
from .._errors import ConfigurationError
from .._keepers import EntraTokenKeeper
from .._options import Options
from ._config import EndpointConfig, IdentityKey

__all__ = ["SharedIdentities"]

logger = logging.getLogger(__name__)

_CLOSE_TIMEOUT = 5.0


@dataclass(slots=True)
class _Identity:
    adapter: CredentialAdapter
    keeper: EntraTokenKeeper
    users: int = 0
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)


class SharedIdentities:
    """The Entra keepers by identity, counted by the endpoints that use them."""

    def __init__(self, options: Options, *, lazy: bool = False) -> None:
        self._options = options
        self._lazy = lazy
        self._identities: dict[IdentityKey, _Identity] = {}
        self._task_group: TaskGroup | None = None

    def __repr__(self) -> str:
        return f"SharedIdentities({len(self._identities)})"

    def __len__(self) -> int:
        return len(self._identities)

    def acquire(self, config: EndpointConfig) -> tuple[EntraTokenKeeper, CredentialAdapter]:
        """The keeper for ``config``'s identity, created (and started, if running) at first use."""
        assert config.identity is not None
        identity = self._identities.get(config.identity)
        if identity is None:
            identity = self._create(config)
            self._identities[config.identity] = identity
            if self._task_group is not None:
                self._task_group.start_soon(self._run, identity, name=_task_name(config))
        identity.users += 1
        return identity.keeper, identity.adapter

    async def release(self, config: EndpointConfig) -> None:
        """One endpoint less on ``config``'s identity: the last one stops its keeper."""
        assert config.identity is not None
        identity = self._identities.get(config.identity)
        if identity is None:
            return
        identity.users -= 1
        if identity.users <= 0:
            del self._identities[config.identity]
            identity.scope.cancel()
            await _close(identity.adapter)

    def start(self, task_group: TaskGroup) -> None:
        self._task_group = task_group
        for identity in self._identities.values():
            task_group.start_soon(self._run, identity, name="signalr_asgi_auth.EntraTokenKeeper")

    async def _run(self, identity: _Identity) -> None:
        with identity.scope:
            await identity.keeper.run()

    def _create(self, config: EndpointConfig) -> _Identity:
        options = self._options
        if config.credential is not None:
            credential: Any = config.credential
            owned = False
        else:
            assert config.settings is not None
            factory = partial(
                credential_from_settings, config.settings, timeout=options.credential_timeout
            )
            try:
                credential, owned = factory(), True
            except ConfigurationError as exc:
                if not self._lazy:
                    raise
                # No lifespan to fail: keep serving, and let every negotiation say what is wrong.
                logger.error("SignalR configuration error: %s", exc)
                credential, owned = _UnusableCredential(exc), False
        adapter = CredentialAdapter(
            credential,
            scope=options.scope,
            timeout=options.credential_timeout,
            owned=owned,
            now=options.clock.now,
        )
        return _Identity(adapter=adapter, keeper=EntraTokenKeeper(adapter, options=options))

    async def aclose(self) -> None:
        identities, self._identities = list(self._identities.values()), {}
        for identity in identities:
            await _close(identity.adapter)


async def _close(adapter: CredentialAdapter) -> None:
    with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
        await adapter.close()


def _task_name(config: EndpointConfig) -> str:
    return f"signalr_asgi_auth.EntraTokenKeeper[{config.name}]"


class _UnusableCredential:
    """Stands in for a credential that could not be created, failing with the reason."""

    def __init__(self, error: ConfigurationError) -> None:
        self._error = error

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise self._error
