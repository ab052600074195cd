"""A Microsoft Entra tenant's token-signing keys, found through its OpenID metadata and cached.

``GET {metadata_url}`` gives ``{"issuer", "jwks_uri", ...}``; ``GET {jwks_uri}`` gives ``{"keys": [...]}``.
The keys are kept until ``max_age``; a ``kid`` not among them triggers at most one new JWKS fetch
per ``refetch_interval``. Entra publishes a new key well before signing with it, so an unknown
``kid`` is a rollover we have not seen yet or a forgery, and the bound keeps forged ``kid`` values
from turning every request into a fetch. Concurrent callers share one fetch.

While no keys are cached and fetching them fails, the failure is remembered: requests meanwhile get
it again without a fetch, for 1 s after the first failure, doubling up to ``refetch_interval``.
Any request with a bearer token would otherwise make one outbound fetch of its own.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ._call_deadline import request_within
from ._errors import ConfigurationError, ServiceError
from ._single_flight import SingleFlight

__all__ = ["OpenIDKeys", "TenantKeys", "check_fetch_url"]

logger = logging.getLogger("signalr_asgi_auth")

_FLIGHT: Final = "keys"
_FIRST_HOLD_BACK: Final = 1.0
_LOOPBACK_NAMES: Final = frozenset({"localhost"})


def check_fetch_url(url: str, *, what: str) -> str:
    """``url`` when it is https, or http on a loopback address (a local emulator); else an error
    naming ``what``. Keys fetched over plain http from elsewhere could be anyone's."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and _is_loopback(host):
        return url
    msg = (
        f"{what} must be an https:// URL (http:// only on 127.0.0.1, ::1 or localhost, for a "
        f"local emulator), got {url!r}."
    )
    raise ConfigurationError(msg)


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class TenantKeys:
    """What one fetch found: the metadata's ``issuer`` and ``jwks_uri``, and the RSA signing keys
    by ``kid``."""

    issuer: str
    jwks_uri: str
    keys: Mapping[str, RSAPublicKey]
    fetched_at: float


class OpenIDKeys:
    """The signing keys published at ``metadata_url``, fetched on first use (never at construction)."""

    def __init__(
        self,
        *,
        metadata_url: str,
        http_client: httpx2.AsyncClient | None,
        timeout: float,
        refetch_interval: float,
        max_age: float,
        clock: Callable[[], float],
    ) -> None:
        self.metadata_url = check_fetch_url(metadata_url, what="The OpenID metadata URL")
        self._http = http_client
        self._timeout = timeout
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self._clock = clock
        self._current: TenantKeys | None = None
        self._last_attempt = -float("inf")
        self._flights: SingleFlight[TenantKeys] = SingleFlight()
        self._failures = 0
        self._failure: ServiceError | None = None
        self._held_until = -float("inf")

    async def current(self) -> TenantKeys:
        """The cached keys; fetched when there are none, refreshed once they are ``max_age`` old.

        A failed refresh keeps the old keys (logged) and is tried again after
        ``refetch_interval``; with no keys at all, :class:`ServiceError` says why.
        """
        keys = self._current
        now = self._clock()
        if keys is None:
            failure = self._failure
            if failure is not None and now < self._held_until:
                wait = self._held_until - now
                raise ServiceError(str(failure), status=failure.status, retry_after=wait)
            return await self._flights.run(_FLIGHT, self._fetch)
        if now - keys.fetched_at >= self._max_age and self._may_fetch(now):
            try:
                return await self._flights.run(_FLIGHT, self._fetch)
            except ServiceError as exc:
                logger.warning("Keeping the cached signing keys: %s", exc)
        return keys

    async def find(self, kid: str) -> tuple[RSAPublicKey | None, TenantKeys]:
        """The key named ``kid`` (``None`` when the tenant has none), and the key set looked in.

        An unknown ``kid`` fetches the JWKS again, unless that happened less than
        ``refetch_interval`` ago; callers arriving during a fetch wait for it.
        """
        keys = await self.current()
        key = keys.keys.get(kid)
        if key is None and self._may_fetch(self._clock()):
            keys = await self._flights.run(_FLIGHT, self._fetch)
            key = keys.keys.get(kid)
        return key, keys

    def _may_fetch(self, now: float) -> bool:
        in_flight = self._flights.in_flight(_FLIGHT)
        return in_flight or now - self._last_attempt >= self._refetch_interval

    async def _fetch(self) -> TenantKeys:
        try:
            keys = await self._fetch_once()
        except ServiceError as exc:
            self._failures += 1
            self._failure = exc
            hold = min(_FIRST_HOLD_BACK * 2 ** min(self._failures - 1, 32), self._refetch_interval)
            self._held_until = self._clock() + hold
            raise
        self._failures, self._failure = 0, None
        return keys

    async def _fetch_once(self) -> TenantKeys:
        self._last_attempt = self._clock()
        previous = self._current
        if previous is None or self._last_attempt - previous.fetched_at >= self._max_age:
            issuer, jwks_uri = _read_metadata(await self._get_json(self.metadata_url, "metadata"))
        else:
            issuer, jwks_uri = previous.issuer, previous.jwks_uri
        keys = _read_jwks(await self._get_json(jwks_uri, "signing keys"), jwks_uri)
        self._current = TenantKeys(issuer, jwks_uri, keys, self._clock())
        logger.debug("Fetched %d signing key(s) from %s", len(keys), jwks_uri)
        return self._current

    async def _get_json(self, url: str, what: str) -> Any:
        try:
            if self._http is not None:
                response = await request_within(self._http, "GET", url, timeout=self._timeout)
            else:
                # Fetches are rare (once per interval at most): a short-lived client needs no
                # lifespan and is never left open.
                async with httpx2.AsyncClient(follow_redirects=False) as client:
                    response = await request_within(client, "GET", url, timeout=self._timeout)
        except httpx2.HTTPError as exc:
            msg = f"Could not fetch the tenant's OpenID {what} from {url} ({type(exc).__name__})."
            raise ServiceError(msg) from exc
        if response.status_code != 200:
            msg = (
                f"Fetching the tenant's OpenID {what} from {url} got {response.status_code} "
                f"{response.reason_phrase or ''}".rstrip()
                + "; check the tenant id, authority or issuer."
            )
            raise ServiceError(msg, status=response.status_code)
        try:
            return response.json()
        except ValueError:
            msg = f"The tenant's OpenID {what} at {url} is not JSON."
            raise ServiceError(msg) from None

    def __repr__(self) -> str:
        count = len(self._current.keys) if self._current else 0
        return f"OpenIDKeys(metadata_url={self.metadata_url!r}, cached_keys={count})"


def _read_metadata(document: Any) -> tuple[str, str]:
    issuer = document.get("issuer") if isinstance(document, dict) else None
    jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
    if not isinstance(issuer, str) or not isinstance(jwks_uri, str) or not jwks_uri:
        msg = "The tenant's OpenID metadata has no 'issuer' or 'jwks_uri'."
        raise ServiceError(msg)
    try:
        check_fetch_url(jwks_uri, what="The metadata's jwks_uri")
    except ConfigurationError as exc:
        raise ServiceError(str(exc)) from None
    return issuer, jwks_uri


def _read_jwks(document: Any, url: str) -> dict[str, RSAPublicKey]:
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        msg = f"The JWKS at {url} has no 'keys' list."
        raise ServiceError(msg)
    keys: dict[str, RSAPublicKey] = {}
    for entry in entries:
        kid, key = _rsa_signing_key(entry)
        if kid is not None and key is not None:
            keys[kid] = key
    if not keys:
        msg = f"The JWKS at {url} holds no RSA signing key with a 'kid'."
        raise ServiceError(msg)
    return keys


def _rsa_signing_key(entry: Any) -> tuple[str | None, RSAPublicKey | None]:
    """``(kid, key)`` for an RSA signature key; ``(None, None)`` for anything else (encryption
    keys, other key types, entries that do not parse), which are skipped."""
    if not isinstance(entry, dict) or entry.get("kty") != "RSA":
        return None, None
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
        return None, None
    if entry.get("alg", "RS256") != "RS256":
        return None, None
    try:
        key = jwt.PyJWK(entry, algorithm="RS256").key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return None, None
    return (kid, key) if isinstance(key, RSAPublicKey) else (None, None)
