"""Microsoft Entra tokens from any azure-identity credential, sync or async, without blocking the loop.

A sync ``TokenCredential`` runs in a worker thread (anyio), an ``AsyncTokenCredential`` is awaited.
``get_token_info`` (azure-core >= 1.31) is preferred for its ``refresh_on``; ``get_token`` is the
fallback for older or hand-written credentials.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeAlias

import anyio
from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError

from ._errors import ConfigurationError, EntraTokenError
from ._secrets import Secret

if TYPE_CHECKING:
    from ._connection_string import ConnectionSettings

__all__ = [
    "AnyCredential",
    "CredentialAdapter",
    "EntraToken",
    "TokenPrincipal",
    "credential_from_settings",
    "read_principal",
    "scrub",
]

logger = logging.getLogger("signalr_asgi_auth.credentials")

AnyCredential: TypeAlias = TokenCredential | AsyncTokenCredential
"""What ``credential=`` accepts: any azure-identity credential, sync or async."""

_ENV_SECRETS = ("IDENTITY_HEADER", "MSI_SECRET", "AZURE_CLIENT_SECRET")
_MAX_DETAIL = 300


@dataclass(frozen=True, slots=True)
class EntraToken:
    """A Microsoft Entra access token and its timing (epoch seconds)."""

    token: Secret
    expires_on: float
    refresh_on: float | None
    fetched_at: float

    def refresh_at(self, margin: float) -> float:
        """When to fetch the next one: ``refresh_on``, else ``margin`` before expiry (at most
        half the token's life earlier, so that short-lived tokens are not refreshed at once)."""
        if self.refresh_on is not None:
            return min(self.refresh_on, self.expires_on)
        lifetime = max(self.expires_on - self.fetched_at, 0.0)
        return self.expires_on - min(margin, lifetime / 2)


@dataclass(frozen=True, slots=True)
class TokenPrincipal:
    """Who a token speaks for, read from its claims without verifying it (only for messages)."""

    object_id: str | None
    app_id: str | None
    tenant_id: str | None


def read_principal(token: str) -> TokenPrincipal:
    """The ``oid``, ``appid``/``azp`` and ``tid`` claims of a JWT; ``None`` for what cannot be read."""
    try:
        body = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        return TokenPrincipal(None, None, None)
    if not isinstance(claims, dict):
        return TokenPrincipal(None, None, None)

    def text(name: str) -> str | None:
        value = claims.get(name)
        return value if isinstance(value, str) and value else None

    return TokenPrincipal(text("oid"), text("appid") or text("azp"), text("tid"))


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with each secret (and well-known secret environment values) replaced, shortened."""
    for secret in (*secrets, *(os.environ.get(name) for name in _ENV_SECRETS)):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= _MAX_DETAIL else first[: _MAX_DETAIL - 1] + "…"


class CredentialAdapter:
    """One async ``get_token`` over a sync or async credential, for one scope."""

    def __init__(
        self,
        credential: AnyCredential,
        *,
        scope: str,
        timeout: float,
        owned: bool,
        now: Callable[[], float],
    ) -> None:
        if not callable(getattr(credential, "get_token", None)):
            msg = (
                "credential must be an azure-identity credential (a TokenCredential or "
                f"AsyncTokenCredential), not {type(credential).__name__}."
            )
            raise ConfigurationError(msg)
        self.credential = credential
        self.name = type(credential).__name__
        self._scope = scope
        self._timeout = timeout
        self._owned = owned
        self._now = now
        fetch = getattr(credential, "get_token_info", None) or credential.get_token
        self._is_async = inspect.iscoroutinefunction(fetch)
        self._fetch: Callable[..., Any] = fetch

    def __repr__(self) -> str:
        return f"CredentialAdapter({self.name}, scope={self._scope!r})"

    async def get_token(self) -> EntraToken:
        try:
            with anyio.fail_after(self._timeout):
                if self._is_async:
                    result = await self._fetch(self._scope)
                else:
                    result = await anyio.to_thread.run_sync(
                        partial(self._fetch, self._scope), abandon_on_cancel=True
                    )
        except TimeoutError:
            msg = (
                f"{self.name} did not return a Microsoft Entra token for {self._scope} within "
                f"{self._timeout:g} s."
            )
            raise EntraTokenError(msg) from None
        except ClientAuthenticationError as exc:
            detail = scrub(exc.message if isinstance(exc.message, str) else str(exc))
            msg = f"{self.name} could not get a Microsoft Entra token for {self._scope}: {detail}"
            raise EntraTokenError(msg) from None
        except (
            Exception
        ) as exc:  # any credential may fail in its own way; none may crash the keeper
            logger.debug("Credential failure", exc_info=True)
            detail = scrub(str(exc)) or type(exc).__name__
            msg = (
                f"{self.name} failed while getting a Microsoft Entra token for {self._scope} "
                f"({type(exc).__name__}): {detail}"
            )
            raise EntraTokenError(msg) from None
        return self._read(result)

    def _read(self, result: object) -> EntraToken:
        token = getattr(result, "token", None)
        expires_on = getattr(result, "expires_on", None)
        refresh_on = getattr(result, "refresh_on", None)
        if not isinstance(token, str) or not token or not isinstance(expires_on, int | float):
            msg = f"{self.name} returned something that is not an access token."
            raise EntraTokenError(msg)
        return EntraToken(
            token=Secret(token),
            expires_on=float(expires_on),
            refresh_on=float(refresh_on) if isinstance(refresh_on, int | float) else None,
            fetched_at=self._now(),
        )

    async def close(self) -> None:
        """Close the credential if this library created it; the caller's own stays open."""
        if not self._owned:
            return
        closer: Callable[[], object] | None = getattr(self.credential, "close", None)
        if closer is None:
            return
        try:
            if inspect.iscoroutinefunction(closer):
                await closer()
            else:
                await anyio.to_thread.run_sync(closer)
        except Exception:
            logger.debug("Closing %s failed", self.name, exc_info=True)


def credential_from_settings(
    settings: ConnectionSettings, *, timeout: float | None = None
) -> AnyCredential:
    """The azure-identity credential a connection string's ``AuthType`` asks for (as the C# SDK picks).

    Sync credentials: they run in worker threads, so they work under asyncio and trio alike and need
    no aiohttp. ``timeout`` (the ``credential_timeout`` option) bounds each of their HTTP attempts,
    which azure-core would otherwise let take 300 s. :class:`CredentialAdapter` stops waiting after
    ``timeout`` either way, but the worker thread lives until the call ends, and azure-core retries
    a read timeout three times, about 5 s apart in all: a hung identity endpoint holds a thread for
    about ``4 * timeout + 5`` s, not 20 minutes.
    """
    import azure.identity as identity

    auth_type, client_id = settings.auth_type, settings.client_id
    transport: dict[str, Any] = (
        {} if timeout is None else {"connection_timeout": timeout, "read_timeout": timeout}
    )
    build: Callable[[], AnyCredential]
    if auth_type == "azure":
        build = partial(
            identity.DefaultAzureCredential, managed_identity_client_id=client_id, **transport
        )
    elif auth_type == "azure.msi" or (auth_type == "aad" and not settings.tenant_id):
        build = partial(identity.ManagedIdentityCredential, client_id=client_id, **transport)
    elif settings.client_secret is not None:
        build = partial(
            identity.ClientSecretCredential,
            settings.tenant_id or "",
            client_id or "",
            settings.client_secret.reveal(),
            **transport,
        )
    elif settings.client_cert_path is not None:
        build = partial(
            identity.CertificateCredential,
            settings.tenant_id or "",
            client_id or "",
            certificate_path=settings.client_cert_path,
            **transport,
        )
    else:
        msg = f"AuthType {auth_type!r} needs ClientSecret or ClientCert in the connection string."
        raise ConfigurationError(msg)
    try:
        return build()
    except (ValueError, OSError) as exc:
        secret = settings.client_secret.reveal() if settings.client_secret else None
        msg = f"Could not create the credential for AuthType={auth_type}: {scrub(str(exc), secret)}"
        raise ConfigurationError(msg) from None
