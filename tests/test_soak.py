"""A simulated day of refresh cycles at the default settings (a key every 55 minutes, usable for 85;
retries from 1 s doubling to 60 s), with the library and the emulator on one virtual clock.

The clock's ``sleep`` parks the sleeping task; the test moves time forward to the earliest
deadline, wakes that task, and waits (in real time) until every background task is parked again
before moving on. A day of refreshes, faults and thousands of negotiations takes a few seconds.

Faults are drawn from a seeded ``random.Random``. Faults shorter than the key's remaining validity
must cost nothing: every negotiation succeeds. Longer ones must cost exactly the time when no key
was usable: from the last good key's fetch plus its usable period until the first successful retry
after the fault, and that retry must come within one backoff step of the fault's end.

azure-identity's credentials are not used here: MSAL's cache and throttle read the real clock, so
a small async credential asks the emulator's managed-identity endpoint instead (same wire protocol).
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import hmac
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import ClientAuthenticationError

from signalr_asgi_auth import NotReadyError, SignalRAuth, SignalRContext
from signalr_asgi_auth.emulator import Emulator, Fault, Principal

from .faults import keeper_tasks
from .support import principal_with_role

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

DAY = 24 * 3600.0
MINUTE = 60.0
USABLE = 85 * MINUTE  # the defaults: key_lifetime 90 min - key_expiry_margin 5 min
RETRY_MAX = 60.0  # the default retry_max_delay
KEEPERS = 2  # background tasks that sleep on the clock: the Entra token and access-key keepers
SERVICE = "http://signalr.emulator"
EDGE = 2.0  # real time passes between clock steps: no verdict this close to a key's boundary


class VirtualClock:
    """A ``Clock`` whose time moves only when the test says so; ``sleep`` waits for that."""

    def __init__(self, start: float, on_move: Callable[[float], None]) -> None:
        self._now = start
        self._on_move = on_move
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()
        self._parked = anyio.Event()
        on_move(start)

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        entry = (self._now + max(seconds, 0.0), next(self._order), anyio.Event())
        heapq.heappush(self._sleepers, entry)
        self._parked.set()
        try:
            await entry[2].wait()
        finally:
            if entry in self._sleepers:  # cancelled at shutdown
                self._sleepers.remove(entry)
                heapq.heapify(self._sleepers)

    async def settle(self) -> None:
        """Wait until every background task sleeps (they may be talking to the emulator)."""
        with anyio.fail_after(10):
            while len(self._sleepers) < KEEPERS:
                self._parked = anyio.Event()
                await self._parked.wait()

    async def run_until(self, moment: float) -> None:
        """Move to ``moment``, waking each sleeper on the way at its deadline, in order."""
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= moment:
            deadline, _, wake = heapq.heappop(self._sleepers)
            self._move(deadline)
            wake.set()
            await self.settle()
        self._move(moment)

    def _move(self, moment: float) -> None:
        self._now = max(self._now, moment)
        self._on_move(self._now)


class EmulatorIdentity:
    """An async credential for the emulator's App Service managed-identity endpoint."""

    def __init__(
        self, url: str, identity_header: str, principal: Principal, http: httpx2.AsyncClient
    ) -> None:
        self._url = f"{url}/msi/token"
        self._header = identity_header
        self._client_id = principal.client_id
        self._http = http

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        resource = scopes[0].removesuffix("/.default")
        query = {"api-version": "2019-08-01", "resource": resource, "client_id": self._client_id}
        reply = await self._http.get(
            self._url, params=query, headers={"X-IDENTITY-HEADER": self._header}
        )
        if reply.status_code != 200:
            msg = f"The identity endpoint answered {reply.status_code}."
            raise ClientAuthenticationError(message=msg)
        body = reply.json()
        return AccessTokenInfo(body["access_token"], int(body["expires_on"]))

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        info = await self.get_token_info(*scopes)
        return AccessToken(info.token, info.expires_on)

    async def close(self) -> None:
        pass  # the HTTP client is the test's

    async def __aenter__(self) -> EmulatorIdentity:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


@dataclass(frozen=True)
class FaultKind:
    route: str
    status: int


KINDS = [
    FaultKind("signalr.access_key", 500),
    FaultKind("signalr.access_key", 503),
    FaultKind("signalr.access_key", 401),
    FaultKind("signalr.access_key", 403),
    FaultKind("signalr.access_key", 404),
    FaultKind("identity.app_service", 500),
    FaultKind("identity.app_service", 503),
]


@dataclass
class Window:
    kind: FaultKind
    start: float
    end: float


@dataclass
class Day:
    probes: list[tuple[float, bool]]
    windows: list[Window]
    fetches: list[float]
    failed_requests: int


def _usable_until(auth: SignalRAuth) -> float:
    value = auth.health()["access_key"]["usable_until"]
    assert value is not None
    return datetime.fromisoformat(value).timestamp()


def _check_token(token: str, emulator: Emulator) -> None:
    """What the service checks when a client connects: a key it issued and has not expired signed
    the token (PyJWT's time checks would use the real clock, so they are done here)."""
    key = emulator.find_key(jwt.get_unverified_header(token)["kid"])
    assert key is not None
    assert key.is_valid_at(emulator.clock.now())
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(key.access_key.encode(), signing_input.encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(jwt.utils.base64url_decode(signature), expected)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["nbf"] <= emulator.clock.now() < claims["exp"]


async def _live_a_day(emulator: Emulator, *, seed: int, longer_than_the_key: bool) -> Day:
    rng = random.Random(seed)
    principal = principal_with_role(emulator)
    clock = VirtualClock(
        time.time(), lambda now: setattr(emulator.clock, "offset", now - time.time())
    )
    # The emulator's app in process: the same routes, faults, roles and log, without sockets.
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(emulator.app))
    credential = EmulatorIdentity(SERVICE, emulator.identity_header, principal, http)
    auth = SignalRAuth(endpoint=SERVICE, credential=credential, http_client=http, clock=clock)
    start = clock.now()
    probes: list[tuple[float, bool]] = []
    windows: list[Window] = []
    next_fault = start + rng.uniform(10, 60) * MINUTE
    active: tuple[Window, Fault] | None = None

    async def negotiate(signalr: SignalRContext, at: float) -> None:
        try:
            reply = await signalr.negotiate("chat", user_id=f"user-{len(probes)}")
        except NotReadyError as exc:
            refused: NotReadyError | None = exc
        else:
            refused = None
            if len(probes) % 10 == 0:
                _check_token(reply["accessToken"], emulator)
        if refused is not None:  # the 503's Retry-After: the next attempt, at most a backoff step
            assert 1 <= refused.retry_after <= RETRY_MAX
        probes.append((at, refused is None))

    async with http, auth as signalr:
        for minute in range(1, int(DAY / MINUTE) + 1):
            at = start + minute * MINUTE - 30  # off the refresh schedule's whole minutes
            # Fault edges before this probe, in time order.
            while True:
                edge = active[0].end if active is not None else next_fault
                if edge > at:
                    break
                await clock.run_until(edge)
                if active is not None:
                    emulator.remove_fault(active[1])
                    active = None
                    next_fault = edge + rng.uniform(5, 90) * MINUTE
                    continue
                remaining = _usable_until(auth) - clock.now()
                if longer_than_the_key:
                    duration = remaining + rng.uniform(2, 20) * MINUTE
                else:  # it ends early enough for the retry after it (<= 60 s) to beat expiry
                    duration = rng.uniform(0.05, 0.95) * (remaining - RETRY_MAX - 5)
                kind = rng.choice(KINDS)
                window = Window(kind, edge, edge + duration)
                windows.append(window)
                active = (window, emulator.inject(kind.route, status=kind.status))
            await clock.run_until(at)
            await negotiate(signalr, at)
        assert len(keeper_tasks()) == KEEPERS
    assert keeper_tasks() == []
    entries = emulator.log.entries("signalr.access_key")
    return Day(
        probes=probes,
        windows=windows,
        fetches=sorted(entry.at for entry in entries if entry.status == 200),
        failed_requests=sum(entry.status != 200 for entry in emulator.log),
    )


async def test_faults_shorter_than_the_key_cost_no_negotiation(
    emulator: Emulator,
) -> None:
    day = await _live_a_day(emulator, seed=20240601, longer_than_the_key=False)
    assert len(day.probes) == 24 * 60
    failed = [at for at, ok in day.probes if not ok]
    assert failed == []
    assert len(day.windows) >= 10
    assert day.failed_requests >= 5  # the faults did hit refreshes
    # Refreshed all day long: never a gap longer than a key's usable period.
    gaps = [later - earlier for earlier, later in itertools.pairwise(day.fetches)]
    assert len(day.fetches) >= 20
    assert max(gaps) < USABLE


async def test_faults_longer_than_the_key_cost_only_the_expected_windows(
    emulator: Emulator,
) -> None:
    day = await _live_a_day(emulator, seed=7, longer_than_the_key=True)

    def key_usable(at: float) -> bool | None:
        """Whether a key fetched before ``at`` is still usable; None too close to call."""
        index = bisect.bisect_right(day.fetches, at + EDGE)
        if index and at - day.fetches[index - 1] < EDGE:
            return None  # fetched at the same moment (the emulator's clock lags by milliseconds)
        latest = day.fetches[index - 1] if index else None
        if latest is None:
            return False
        left = latest + USABLE - at
        return None if abs(left) < EDGE else left > 0

    verdicts = [(at, ok, key_usable(at)) for at, ok in day.probes]
    wrong = [(at, ok) for at, ok, usable in verdicts if usable is not None and ok != usable]
    assert wrong == [], "negotiation disagreed with the key's validity"
    failed = [at for at, ok in day.probes if not ok]
    assert len(failed) >= 30, "the long faults should have cost some negotiations"
    # Failures only inside a fault, or in the backoff step after it.
    outside = [
        at
        for at in failed
        if not any(w.start <= at <= w.end + RETRY_MAX + EDGE for w in day.windows)
    ]
    assert outside == []
    # When no key was usable at a fault's end, the first retry after it brought one back.
    last_probe = day.probes[-1][0]
    outages = [
        window
        for window in day.windows
        if window.end + RETRY_MAX + EDGE < last_probe and key_usable(window.end) is False
    ]
    assert len(outages) >= 3
    for window in outages:
        after = [fetch for fetch in day.fetches if fetch >= window.end]
        assert after, f"no key after the fault {window}"
        assert after[0] - window.end <= RETRY_MAX + EDGE, (window, after[0] - window.end)
