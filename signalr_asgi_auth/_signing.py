"""Who signs a client token: this app with a key, or SignalR Service (the ``mode`` option).

``key``: the temporary access key (or a connection string's key) signs, in memory, never over the
network. ``service``: every token comes from ``:generateToken``. ``auto``: the key signs while there
is one; while the access-key call answers 403 (no SignalR App Server role) and no key is usable,
tokens come from the service, and local signing resumes as soon as a key arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal, Protocol

import anyio

from ._client_tokens import SigningKey, mint_client_token
from ._errors import InvalidInputError, NotReadyError, PermissionDeniedError, SignalRAuthError
from ._hubs import HubAddress
from ._options import Mode, Options
from ._rbac import REST_API_OWNER, SERVICE_OWNER, SIGNALR_APP_SERVER
from ._service_tokens import ServiceTokens

__all__ = ["ClientTokenIssuer", "KeySource", "StaticKey"]

logger = logging.getLogger("signalr_asgi_auth")

_SERVICE_ROLES = f"'{REST_API_OWNER.name}' or '{SERVICE_OWNER.name}'"


class KeySource(Protocol):
    """Where the signing key comes from: the access-key keeper, or a connection string's key."""

    def current(self) -> SigningKey: ...


class StaticKey:
    """The access key of a connection string (local development and migration)."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key

    def current(self) -> SigningKey:
        return self._key

    def __repr__(self) -> str:
        return f"StaticKey(kid={self._key.key_id!r})"


class _Fallback:
    """One stretch of ``auto`` mode without the key: the key held when the 403 came (a new one
    ends the stretch) and whether the service issued a token meanwhile."""

    __slots__ = ("key", "used_service")

    def __init__(self, key: SigningKey | None) -> None:
        self.key = key
        self.used_service = False


class ClientTokenIssuer:
    """Signs client tokens locally or gets them from the service, as ``mode`` says.

    ``keys`` is ``None`` only in ``service`` mode, ``service`` only in ``key`` mode (or with a
    connection string's key, which always signs).
    """

    def __init__(
        self,
        *,
        mode: Mode,
        options: Options,
        keys: KeySource | None,
        service: ServiceTokens | None,
    ) -> None:
        self.mode = mode
        self.service = service
        self._options = options
        self._keys = keys
        self._fallback: _Fallback | None = None
        self.fallback_ready = anyio.Event()
        """Set at the first 403 in ``auto`` mode: the service path may stand in for the key."""
        self.service_ready = anyio.Event()
        """Set once the service has issued a token: startup need not wait for a key any longer."""

    def __repr__(self) -> str:
        return f"ClientTokenIssuer(mode={self.mode!r}, signing={self.signing!r})"

    async def issue(
        self,
        hub: HubAddress,
        *,
        user_id: str | None,
        payload: Mapping[str, object],
        lifetime: float,
    ) -> str:
        """A client token for ``hub``; ``payload`` is the checked claims, ``lifetime`` in seconds."""
        if self._keys is None:
            return await self._from_service(
                hub.name, user_id, payload, lifetime, falling_back=False
            )
        try:
            key = self._keys.current()
        except NotReadyError as exc:
            if not self._may_fall_back(exc):
                raise
            return await self._fall_back(exc, hub.name, user_id, payload, lifetime)
        if self._fallback is not None and key is not self._fallback.key:
            self._end_fallback()
        return mint_client_token(
            key,
            audience=hub.audience,
            claims=payload,
            lifetime=lifetime,
            now=self._options.clock.now(),
            algorithm=self._options.algorithm,
        )

    async def _fall_back(
        self,
        no_key: NotReadyError,
        hub: str,
        user_id: str | None,
        payload: Mapping[str, object],
        lifetime: float,
    ) -> str:
        try:
            token = await self._from_service(hub, user_id, payload, lifetime, falling_back=True)
        except InvalidInputError:
            raise
        except SignalRAuthError as exc:
            # Still "not ready": the key is what is missing; the message says both paths failed.
            msg = f"{no_key} Asking SignalR Service for the client token instead failed too: {exc}"
            raise NotReadyError(msg, retry_after=no_key.retry_after, cause=no_key.cause) from exc
        if self._fallback is not None:
            self._fallback.used_service = True
        self.service_ready.set()
        return token

    @property
    def signing(self) -> Literal["local", "service"]:
        """Which path signs a token now (for ``health()``)."""
        if self._keys is None:
            return "service"
        try:
            self._keys.current()
        except NotReadyError as exc:
            return "service" if self._may_fall_back(exc) else "local"
        return "local"

    def key_forbidden(self, error: PermissionDeniedError) -> None:
        """The access-key keeper's ``on_forbidden`` in ``auto`` mode: say once what happens."""
        self.fallback_ready.set()
        if self._fallback is not None:
            return
        self._fallback = _Fallback(self._held_key())
        logger.warning(
            "This app may not fetch the SignalR access key, so it cannot sign client tokens "
            "itself: %s Until a key arrives, client tokens come from SignalR Service "
            "(POST /api/hubs/{hub}/:generateToken, allowed by %s), without custom claims or "
            "roles. Assign '%s' to sign locally again: the key is retried in the background, "
            "and local signing resumes by itself.",
            error,
            _SERVICE_ROLES,
            SIGNALR_APP_SERVER.name,
        )

    async def probe_service(self) -> SignalRAuthError | None:
        """Ask the service for a token once: ``None`` when it issues them (``service_ready``)."""
        if self.service is None:
            return None
        error = await self.service.probe()
        if error is None:
            self.service_ready.set()
        return error

    def _may_fall_back(self, error: NotReadyError) -> bool:
        return (
            self.mode == "auto"
            and self.service is not None
            and isinstance(error.cause, PermissionDeniedError)
        )

    def _held_key(self) -> SigningKey | None:
        if self._keys is None:
            return None
        try:
            return self._keys.current()
        except NotReadyError:
            return None

    def _end_fallback(self) -> None:
        fallback, self._fallback = self._fallback, None
        if fallback is not None and fallback.used_service and self.service is not None:
            self.service.clear()
            logger.info("Got a SignalR access key: client tokens are signed locally again.")

    async def _from_service(
        self,
        hub: str,
        user_id: str | None,
        payload: Mapping[str, object],
        lifetime: float,
        *,
        falling_back: bool,
    ) -> str:
        assert self.service is not None
        plain = {"asrs.s.uid", "nameid"} if user_id is not None else set()
        extra = sorted(name for name in payload if name not in plain)
        if extra:
            shown = ", ".join(repr(name[:40]) for name in extra[:5])
            shown += ", ..." if extra[5:] else ""
            why = (
                "this app falls back to it because its identity may not fetch the access key"
                if falling_back
                else "mode='service' asks the service for every token"
            )
            msg = (
                f"Custom claims and roles ({shown}) cannot travel through SignalR Service's "
                f":generateToken API, which takes only a user id and a lifetime, and {why}. "
                f"Assign the identity the '{SIGNALR_APP_SERVER.name}' role (with mode='auto' or "
                "'key') so that this app signs client tokens itself, with any claims and roles."
            )
            raise InvalidInputError(msg)
        return await self.service.token(hub, user_id=user_id, lifetime=lifetime)
