"""Client tokens issued by SignalR Service: ``POST /api/hubs/{hub}/:generateToken``.

The path for identities that may not fetch the temporary access key (SignalR REST API Owner): the
service signs each token. A token is reused for ``service_token_cache_fraction`` of its lifetime,
per (endpoint, hub, user id, lifetime in minutes), in an LRU cache of at most
``service_token_cache_size`` tokens; concurrent negotiations for one of those share one request.

When the service says to wait (429 or 503 with ``Retry-After``) or refuses this identity (403), it is
not asked again for a while, whichever users negotiate: until the ``Retry-After`` (at most five
minutes; five seconds after a 429 without one), or for ten seconds after a 403. Meanwhile
negotiations fail at once with that answer; then one request asks again while the others keep
failing at once, and its answer ends or renews the wait. Many users negotiating through a missing
role or a throttled service would otherwise send one request each.
"""

from __future__ import annotations

import binascii
import json
import logging
import math
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Any, Final
from urllib.parse import quote

import httpx2
from jwt.utils import base64url_decode

from . import _telemetry as telemetry
from ._endpoint import ServiceEndpoint
from ._errors import PermissionDeniedError, ServiceError, SignalRAuthError
from ._keepers import EntraTokenKeeper, entra_call, error_health, isoformat
from ._options import Options
from ._rbac import DataAction
from ._single_flight import SingleFlight

__all__ = ["GENERATE_TOKEN_API_VERSION", "ServiceTokens", "minutes_to_expire"]

logger = logging.getLogger("signalr_asgi_auth.service_tokens")

GENERATE_TOKEN_API_VERSION: Final = "2023-07-01"
"""The first REST API version that has ``:generateToken``."""

_CacheKey = tuple[str, str | None, str, str | None, int]
"""Endpoint, application, hub, user id, minutes to expire."""

_PROBE_HUB: Final = "signalr_asgi_auth_probe"
_FORBIDDEN_WAIT: Final = 10.0
"""Seconds without asking again after a 403 (a role assignment takes minutes to reach the service)."""
_THROTTLED_WAIT: Final = 5.0
"""Seconds without asking again after a 429 that gives no ``Retry-After``."""
_MAX_WAIT: Final = 300.0
"""The longest ``Retry-After`` obeyed, so that a wrong value cannot stop the app for hours."""


def minutes_to_expire(lifetime: float) -> int:
    """The API takes whole minutes: ``lifetime`` seconds rounded up, and at least one."""
    return max(1, math.ceil(lifetime / 60))


@dataclass(frozen=True, slots=True)
class _Wait:
    """No request to the service before ``until``: cache misses get ``error`` at once."""

    until: float
    error: SignalRAuthError


@dataclass(frozen=True, slots=True, repr=False)
class _Issued:
    token: str
    reuse_until: float


class ServiceTokens:
    """Asks SignalR Service for client tokens with the Entra keeper's token, and caches them."""

    def __init__(
        self,
        *,
        endpoint: ServiceEndpoint,
        entra: EntraTokenKeeper,
        http: httpx2.AsyncClient,
        options: Options,
    ) -> None:
        self._endpoint = endpoint
        self._entra = entra
        self._http = http
        self._clock = options.clock
        self._timeout = options.request_timeout
        self._application = options.application_name
        self._fraction = options.service_token_cache_fraction
        self._max_size = options.service_token_cache_size
        self._cache: OrderedDict[_CacheKey, _Issued] = OrderedDict()
        self._flight: SingleFlight[_Issued] = SingleFlight()
        self.hits = 0
        self.misses = 0
        self.requests = 0
        self.evictions = 0
        self.failures = 0
        self.last_error: SignalRAuthError | None = None
        self._last_error_at: float | None = None
        self._wait: _Wait | None = None
        self.held_back = 0
        """Negotiations answered with the last error while the service was not to be asked."""

    def __repr__(self) -> str:
        return (
            f"ServiceTokens({self._endpoint.endpoint!r}, cached={len(self._cache)}, "
            f"requests={self.requests})"
        )

    async def token(self, hub: str, *, user_id: str | None, lifetime: float) -> str:
        """A client token for ``hub`` (lower-case, without the application prefix)."""
        minutes = minutes_to_expire(lifetime)
        key = (self._endpoint.endpoint, self._application, hub, user_id, minutes)
        cached = self._cache.get(key)
        if cached is not None and self._clock.now() < cached.reuse_until:
            self._cache.move_to_end(key)
            self.hits += 1
            telemetry.count_service_token_lookup(self._endpoint.endpoint, hit=True)
            return cached.token
        self.misses += 1
        telemetry.count_service_token_lookup(self._endpoint.endpoint, hit=False)
        self._wait_or_ask()
        issued = await self._flight.run(key, partial(self._fetch_recorded, key))
        return issued.token

    async def probe(self) -> SignalRAuthError | None:
        """Whether the service issues client tokens to this identity: the error if not. One
        request (shared by concurrent callers); the token is dropped."""
        key = (self._endpoint.endpoint, self._application, _PROBE_HUB, None, 1)
        try:
            await self._flight.run(key, partial(self._fetch_recorded, key, store=False))
        except SignalRAuthError as exc:
            return exc
        return None

    def _wait_or_ask(self) -> None:
        """Raise the last error while the service is not to be asked; after that, let this one
        request through and hold the others back until its answer (or its timeout)."""
        wait = self._wait
        if wait is None:
            return
        now = self._clock.now()
        if now < wait.until:
            self.held_back += 1
            # The same exception each time, as concurrent callers of one request share it; its
            # traceback is reset so that it does not grow with every raise.
            raise wait.error.with_traceback(None)
        self._wait = _Wait(until=now + self._timeout, error=wait.error)

    def _wait_after(self, error: SignalRAuthError) -> _Wait | None:
        if isinstance(error, PermissionDeniedError):
            seconds = _FORBIDDEN_WAIT
        elif isinstance(error, ServiceError) and (error.retry_after or error.status == 429):
            seconds = min(error.retry_after or _THROTTLED_WAIT, _MAX_WAIT)
        else:
            return None  # a 500 or a timeout may be over at the next request
        return _Wait(until=self._clock.now() + seconds, error=error)

    def clear(self) -> None:
        """Forget every cached token (local signing is back; they would only take memory)."""
        self._cache.clear()

    async def _fetch_recorded(self, key: _CacheKey, *, store: bool = True) -> _Issued:
        attributes = {telemetry.ENDPOINT: self._endpoint.endpoint, telemetry.HUB: key[2]}
        try:
            with telemetry.span("signalr.service_token", attributes):
                issued = await self._fetch(key)
        except SignalRAuthError as exc:
            self.failures += 1
            self.last_error, self._last_error_at = exc, self._clock.now()
            self._wait = self._wait_after(exc)
            # The negotiate endpoint logs failed negotiations too; here only the first of a run.
            log = logger.warning if self.failures == 1 else logger.debug
            log("Getting a client token from SignalR Service failed: %s", exc)
            raise
        if self.failures:
            logger.info("SignalR Service issues client tokens again.")
        self.failures = 0
        self._wait = None
        if store:
            self._store(key, issued)
        return issued

    async def _fetch(self, key: _CacheKey) -> _Issued:
        _, application, hub, user_id, minutes = key
        params = [("api-version", GENERATE_TOKEN_API_VERSION)]
        if application:
            params.append(("application", application))
        if user_id is not None:
            params.append(("userId", user_id))
        params.append(("minutesToExpire", str(minutes)))
        url = self._endpoint.server_url(f"/api/hubs/{quote(hub, safe='')}/:generateToken")
        shown = f"{application}_{hub}" if application else hub
        doing = f"get a client token for hub {shown!r}"
        asked_at = self._clock.now()
        self.requests += 1
        response = await entra_call(
            self._http,
            self._entra,
            "POST",
            url,
            endpoint=self._endpoint,
            doing=doing,
            action=DataAction.CLIENT_TOKEN,
            request_timeout=self._timeout,
            params=params,
        )
        token = self._read(response)
        lifetime = _issued_lifetime(token, requested=minutes * 60.0)
        return _Issued(token, reuse_until=asked_at + self._fraction * lifetime)

    def _read(self, response: httpx2.Response) -> str:
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        token = body.get("token") if isinstance(body, dict) else None
        if isinstance(token, str) and token.count(".") == 2:
            return token
        problem = "is not a JSON object" if not isinstance(body, dict) else "has no token string"
        msg = (
            f"SignalR Service at {self._endpoint.server_endpoint} answered the client-token "
            f"request with a reply that {problem}."
        )
        raise ServiceError(msg, status=response.status_code)

    def _store(self, key: _CacheKey, issued: _Issued) -> None:
        if issued.reuse_until <= self._clock.now():
            return  # service_token_cache_fraction=0: shared by concurrent callers, then dropped
        self._cache[key] = issued
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_size:
            self._cache.popitem(last=False)
            self.evictions += 1

    def health(self) -> dict[str, Any]:
        return {
            "cached": len(self._cache),
            "max_size": self._max_size,
            "hits": self.hits,
            "misses": self.misses,
            "requests": self.requests,
            "evictions": self.evictions,
            "consecutive_failures": self.failures,
            "held_back": self.held_back,
            "not_asking_until": None if self._wait is None else isoformat(self._wait.until),
            "last_error": error_health(
                self.last_error, self._last_error_at, current=self.failures > 0
            ),
        }


def _issued_lifetime(token: str, *, requested: float) -> float:
    """How long the service made the token live (``exp - iat``, both by its clock), if shorter
    than what was asked for: reusing it for a fraction of the request's lifetime could hand out
    a token that has expired."""
    try:
        claims = json.loads(base64url_decode(token.split(".")[1]))
    except (ValueError, binascii.Error, IndexError):
        return requested
    if not isinstance(claims, dict):
        return requested
    expires, issued = _number(claims.get("exp")), _number(claims.get("iat", claims.get("nbf")))
    if expires is None or issued is None:
        return requested
    return max(0.0, min(requested, expires - issued))


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
