"""The background keepers: the Entra token and the service's temporary access key.

Both run in the task group that the middleware (or ``async with auth``) owns; requests only read
what they hold. A failed refresh never throws away a value that is still valid: the last good key
keeps signing until it expires, while retries back off with jitter.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx2

from . import _telemetry as telemetry
from ._backoff import Backoff
from ._call_deadline import request_within
from ._client_tokens import SigningKey
from ._clock import Clock
from ._credentials import CredentialAdapter, EntraToken
from ._endpoint import ServiceEndpoint
from ._errors import NotReadyError, PermissionDeniedError, ServiceError, SignalRAuthError
from ._options import Options
from ._rbac import DataAction
from ._secrets import Secret
from ._service_errors import service_error, transport_error
from ._single_flight import SingleFlight

__all__ = ["AccessKeyKeeper", "EntraTokenKeeper", "entra_call", "error_health", "isoformat"]

logger = logging.getLogger("signalr_asgi_auth.keepers")

_EXPIRY_SKEW = 30.0  # a token this close to expiry may die in transit: fetch a new one instead
_MAX_RETRY_AFTER = 60.0


def isoformat(moment: float | None) -> str | None:
    if moment is None or not math.isfinite(moment):
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def error_health(
    error: BaseException | None, at: float | None, *, current: bool
) -> dict[str, Any] | None:
    """``health()``'s ``last_error``, one shape for every part that reports one: the error's type
    and message (neither holds a secret), when it happened, and whether failures go on."""
    if error is None:
        return None
    return {
        "type": type(error).__name__,
        "message": str(error),
        "at": isoformat(at),
        "current": current,
    }


class _Attempts:
    """What a keeper remembers of its refresh attempts, for messages and ``health()``."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.failures = 0
        self.failing_since: float | None = None
        self.fetches = 0
        self.last_error: SignalRAuthError | None = None
        self.last_error_at: float | None = None
        self.next_attempt_at: float | None = None

    def succeeded(self) -> None:
        self.fetches += 1
        self.failures = 0
        self.failing_since = None

    def failed(self, error: SignalRAuthError, now: float) -> float:
        """Record a failure; the delay before the next attempt."""
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = now
        self.last_error, self.last_error_at = error, now
        retry_after = error.retry_after if isinstance(error, ServiceError) else None
        return self.backoff.delay(self.failures, retry_after=retry_after)

    def snapshot(self) -> dict[str, Any]:
        return {
            "fetches": self.fetches,
            "consecutive_failures": self.failures,
            "next_attempt_at": isoformat(self.next_attempt_at),
            "last_error": error_health(
                self.last_error, self.last_error_at, current=self.failures > 0
            ),
        }


async def _refresh_forever(
    refresh: Callable[[], Awaitable[object]], attempts: _Attempts, clock: Clock, what: str
) -> None:
    """Call ``refresh`` whenever ``attempts`` says the next attempt is due (at once at first).

    A refresh records its own outcome and schedules the next attempt; an unexpected error (a bug)
    is logged with its traceback and retried after a backoff step, never ending the loop.
    """
    while True:
        due = attempts.next_attempt_at
        if due is not None:
            await clock.sleep(max(due - clock.now(), 0.0))
        try:
            await refresh()
        except SignalRAuthError:
            pass  # recorded and logged; the next attempt is scheduled
        except Exception:
            logger.exception("Unexpected error while refreshing %s", what)
            attempts.next_attempt_at = clock.now() + attempts.backoff.delay(attempts.failures + 1)


class EntraTokenKeeper:
    """Keeps a Microsoft Entra token for the service's scope fresh, refreshing it at ``refresh_on``
    or ``token_refresh_margin`` before it expires. Concurrent refreshes are single-flight."""

    def __init__(self, adapter: CredentialAdapter, *, options: Options) -> None:
        self._adapter = adapter
        self._clock = options.clock
        self._margin = options.token_refresh_margin
        self._min_gap = options.retry_initial_delay
        self._token: EntraToken | None = None
        self._flight: SingleFlight[EntraToken] = SingleFlight()
        self.ready = anyio.Event()
        self.attempts = _Attempts(Backoff(options.retry_initial_delay, options.retry_max_delay))

    @property
    def credential_name(self) -> str:
        return self._adapter.name

    def __repr__(self) -> str:
        return f"EntraTokenKeeper({self._adapter.name}, fetches={self.attempts.fetches})"

    @property
    def holds_token(self) -> bool:
        """Whether a token was ever fetched (it may have expired since)."""
        return self._token is not None or self.attempts.fetches > 0

    @property
    def valid(self) -> bool:
        """Whether the token held is still valid now."""
        token = self._token
        return token is not None and self._clock.now() < token.expires_on

    async def get(self) -> EntraToken:
        """A token that is still valid: the one held, or a fresh one if it is missing or expiring."""
        token = self._token
        if token is not None and self._clock.now() < token.expires_on - _EXPIRY_SKEW:
            return token
        return await self.refresh()

    def discard(self, token: EntraToken) -> None:
        """Forget ``token`` (the service rejected it) so that the next ``get`` fetches anew."""
        if self._token is token:
            self._token = None

    async def refresh(self) -> EntraToken:
        return await self._flight.run("token", self._fetch)

    async def _fetch(self) -> EntraToken:
        attributes = {"signalr.credential": self._adapter.name}
        try:
            with telemetry.span("signalr.entra_token.refresh", attributes):
                token = await self._adapter.get_token()
        except SignalRAuthError as exc:
            telemetry.count_refresh_failure("entra_token", exc, attributes)
            delay = self.attempts.failed(exc, self._clock.now())
            self.attempts.next_attempt_at = self._clock.now() + delay
            logger.warning(
                "Getting a Microsoft Entra token failed (attempt %d, next in %.1f s): %s",
                self.attempts.failures,
                delay,
                exc,
            )
            raise
        recovered = self.attempts.failures > 0
        self.attempts.succeeded()
        self._token = token
        self.ready.set()
        self.attempts.next_attempt_at = max(
            token.refresh_at(self._margin), token.fetched_at + self._min_gap
        )
        log = logger.info if recovered or self.attempts.fetches == 1 else logger.debug
        log(
            "Got a Microsoft Entra token from %s, expiring %s",
            self._adapter.name,
            isoformat(token.expires_on),
        )
        return token

    async def run(self) -> None:
        """Fetch now, then refresh forever; started in the owning task group."""
        await _refresh_forever(self.refresh, self.attempts, self._clock, "the Entra token")

    def health(self) -> dict[str, Any]:
        token = self._token
        now = self._clock.now()
        return {
            "credential": self._adapter.name,
            "expires_at": isoformat(token.expires_on) if token else None,
            "refresh_at": isoformat(token.refresh_at(self._margin)) if token else None,
            "age_seconds": round(now - token.fetched_at, 1) if token else None,
            "valid": token is not None and now < token.expires_on,
            **self.attempts.snapshot(),
        }


async def entra_call(
    http: httpx2.AsyncClient,
    entra: EntraTokenKeeper,
    method: str,
    url: str,
    *,
    endpoint: ServiceEndpoint,
    doing: str,
    action: str,
    request_timeout: float,
    params: Sequence[tuple[str, str]] = (),
) -> httpx2.Response:
    """One call to SignalR Service with the Entra token as bearer; the 200 response, or the error
    that says what to change. A 401 discards the token so that the next call asks anew."""
    token = await entra.get()  # in memory; fetched only when it is expiring
    bearer = token.token.reveal()
    try:
        response = await request_within(
            http,
            method,
            url,
            params=tuple(params),
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=request_timeout,
        )
    except httpx2.HTTPError as exc:
        raise transport_error(exc, endpoint=endpoint, doing=doing) from None
    if response.status_code != 200:
        if response.status_code == 401:
            entra.discard(token)
        raise service_error(response, endpoint=endpoint, doing=doing, action=action, token=bearer)
    return response


class AccessKeyKeeper:
    """Keeps the service's temporary access key: fetched with the Entra token, refreshed every
    ``key_refresh_interval``, used until ``key_lifetime - key_expiry_margin`` after its fetch."""

    _doing = "get a temporary access key"

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
        self._interval = options.key_refresh_interval
        self._usable_for = options.key_usable_for
        self._timeout = options.request_timeout
        self._key: SigningKey | None = None
        self._flight: SingleFlight[SigningKey] = SingleFlight()
        self.ready = anyio.Event()
        self.attempts = _Attempts(Backoff(options.retry_initial_delay, options.retry_max_delay))
        self.on_forbidden: Callable[[PermissionDeniedError], None] | None = None
        """Told of each 403 instead of a WARNING per attempt (``mode="auto"`` says it once)."""
        telemetry.watch_key_age(self)

    def __repr__(self) -> str:
        return f"AccessKeyKeeper({self._endpoint.endpoint!r}, fetches={self.attempts.fetches})"

    def current(self) -> SigningKey:
        """The key to sign with now; :class:`NotReadyError` when there is none still usable."""
        key = self._key
        if key is not None and self._clock.now() < key.usable_until:
            return key
        raise self.not_ready()

    def not_ready(self) -> NotReadyError:
        now = self._clock.now()
        due = self.attempts.next_attempt_at
        retry_after = 1.0 if due is None else min(max(due - now, 1.0), _MAX_RETRY_AFTER)
        error = self.attempts.last_error if self.attempts.failures else None
        key = self._key
        # The message names no count: it is what negotiation answers and warns, once per
        # outage as long as it stays the same (health() counts the failures).
        if key is not None:
            what = f"The SignalR access key expired at {isoformat(key.usable_until)}"
            since = self.attempts.failing_since
            why = f" and refreshing it has failed since {isoformat(since)}" if since else ""
            why += f": {error}" if error else "."
        elif error is not None:
            what, why = "No SignalR access key yet", f": {error}"
        elif not self._entra.holds_token:
            # The key is asked for with the Entra token: while that first request hangs, the
            # service has not been asked anything.
            what = "No SignalR access key yet"
            why = (
                f": the first request to {self._entra.credential_name} for a Microsoft Entra "
                "token is under way."
            )
        else:
            what = "No SignalR access key yet"
            why = f": the first request to {self._endpoint.server_endpoint} is under way."
        return NotReadyError(
            f"{what}{why} Retrying in the background.", retry_after=retry_after, cause=error
        )

    async def refresh(self) -> SigningKey:
        return await self._flight.run("key", self._fetch_recorded)

    async def _fetch_recorded(self) -> SigningKey:
        attributes = {telemetry.ENDPOINT: self._endpoint.endpoint}
        try:
            with telemetry.span("signalr.access_key.refresh", attributes):
                key = await self._fetch()
        except SignalRAuthError as exc:
            telemetry.count_refresh_failure("access_key", exc, attributes)
            now = self._clock.now()
            delay = self.attempts.failed(exc, now)
            self.attempts.next_attempt_at = now + delay
            held = self._key
            keeps = (
                f"the current key stays usable until {isoformat(held.usable_until)}"
                if held is not None and now < held.usable_until
                else "no usable key"
            )
            quiet = isinstance(exc, PermissionDeniedError) and self.on_forbidden is not None
            (logger.debug if quiet else logger.warning)(
                "Refreshing the SignalR access key failed (attempt %d, next in %.1f s; %s): %s",
                self.attempts.failures,
                delay,
                keeps,
                exc,
            )
            if isinstance(exc, PermissionDeniedError) and self.on_forbidden is not None:
                self.on_forbidden(exc)
            raise
        recovered = self.attempts.failures > 0
        self.attempts.succeeded()
        self._key = key
        self.attempts.next_attempt_at = self._clock.now() + self._interval
        self.ready.set()
        log = logger.info if recovered or self.attempts.fetches == 1 else logger.debug
        log(
            "Got a SignalR access key (kid %s) from %s, usable until %s",
            key.key_id,
            self._endpoint.server_endpoint,
            isoformat(key.usable_until),
        )
        return key

    async def _fetch(self) -> SigningKey:
        response = await entra_call(
            self._http,
            self._entra,
            "GET",
            self._endpoint.access_key_url,
            endpoint=self._endpoint,
            doing=self._doing,
            action=DataAction.ACCESS_KEY,
            request_timeout=self._timeout,
        )
        key_id, secret = self._read(response)
        fetched_at = self._clock.now()
        return SigningKey(
            key_id=key_id,
            secret=Secret(secret),
            usable_until=fetched_at + self._usable_for,
            fetched_at=fetched_at,
        )

    def _read(self, response: httpx2.Response) -> tuple[str, str]:
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        key_id = body.get("KeyId") if isinstance(body, dict) else None
        secret = body.get("AccessKey") if isinstance(body, dict) else None
        if not isinstance(body, dict):
            problem = "is not a JSON object"
        elif not isinstance(key_id, str) or not key_id:
            problem = "has no KeyId string"
        elif not isinstance(secret, str) or not secret:
            problem = "has no AccessKey string"
        else:
            return key_id, secret
        msg = (
            f"SignalR Service at {self._endpoint.server_endpoint} answered the access-key request "
            f"with a reply that {problem}."
        )
        raise ServiceError(msg, status=response.status_code)

    async def run(self) -> None:
        """Fetch now, then refresh forever; started in the owning task group."""
        await _refresh_forever(self.refresh, self.attempts, self._clock, "the SignalR access key")

    @property
    def telemetry_endpoint(self) -> str:
        return self._endpoint.endpoint

    def key_age(self) -> float | None:
        """Seconds since the key in use was fetched (the ``signalr.access_key.age`` gauge)."""
        key = self._key
        if key is None or key.fetched_at is None:
            return None
        return self._clock.now() - key.fetched_at

    def health(self) -> dict[str, Any]:
        key = self._key
        now = self._clock.now()
        fetched = key.fetched_at if key and key.fetched_at is not None else None
        return {
            "key_id": key.key_id if key else None,
            "fetched_at": isoformat(fetched),
            "age_seconds": round(now - fetched, 1) if fetched is not None else None,
            "usable_until": isoformat(key.usable_until) if key else None,
            "valid": key is not None and now < key.usable_until,
            **self.attempts.snapshot(),
        }
