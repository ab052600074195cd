"""Retry delays, and one call in flight per key (on asyncio and trio)."""

from __future__ import annotations

import random

import anyio
import pytest

from signalr_asgi_auth._backoff import Backoff
from signalr_asgi_auth._single_flight import SingleFlight

# --- backoff ----------------------------------------------------------------------------------

# initial 1 s, maximum 60 s: the top of the range doubles from 1 s and stops at 60 s.
CEILINGS = {1: 1.0, 2: 2.0, 3: 4.0, 4: 8.0, 5: 16.0, 6: 32.0, 7: 60.0, 8: 60.0, 9: 60.0, 10: 60.0}


@pytest.mark.parametrize("failures", list(CEILINGS))
def test_lowest_delay_is_a_tenth_of_the_initial_delay(failures: int) -> None:
    assert Backoff(1.0, 60.0, random=lambda: 0.0).delay(failures) == pytest.approx(0.1)


@pytest.mark.parametrize(("failures", "ceiling"), CEILINGS.items())
def test_highest_delay_doubles_up_to_the_maximum(failures: int, ceiling: float) -> None:
    assert Backoff(1.0, 60.0, random=lambda: 1.0).delay(failures) == pytest.approx(ceiling)


def test_delay_is_uniform_between_the_bounds() -> None:
    assert Backoff(1.0, 60.0, random=lambda: 0.5).delay(4) == pytest.approx(0.1 + 0.5 * 7.9)


def test_default_random_stays_within_the_bounds() -> None:
    backoff = Backoff(2.0, 30.0)
    for failures in range(1, 12):
        ceiling = min(30.0, 2.0 * 2 ** (failures - 1))
        delays = [backoff.delay(failures) for _ in range(50)]
        assert all(0.2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1  # jittered, not in step


def test_injected_random_is_used() -> None:
    rng = random.Random(7)
    expected = random.Random(7)

    delay = Backoff(1.0, 60.0, random=rng.random).delay(3)

    assert delay == pytest.approx(0.1 + expected.random() * 3.9)


@pytest.mark.parametrize("failures", [0, -3])
def test_no_failures_counts_as_the_first(failures: int) -> None:
    assert Backoff(1.0, 60.0, random=lambda: 1.0).delay(failures) == 1.0


@pytest.mark.parametrize("failures", [64, 1024, 1100, 10**6])
def test_a_long_outage_stays_at_the_maximum(failures: int) -> None:
    # Before: float * 2**1024 raised OverflowError after ~1025 consecutive failures.
    assert Backoff(1.0, 60.0, random=lambda: 1.0).delay(failures) == 60.0
    assert Backoff(1.0, 60.0, random=lambda: 0.0).delay(failures) == pytest.approx(0.1)


def test_initial_above_maximum_is_capped() -> None:
    assert Backoff(10.0, 5.0, random=lambda: 1.0).delay(1) == 5.0
    assert Backoff(10.0, 5.0, random=lambda: 0.0).delay(1) == 1.0


def test_retry_after_is_a_lower_bound() -> None:
    low = Backoff(1.0, 60.0, random=lambda: 0.0)
    high = Backoff(1.0, 60.0, random=lambda: 1.0)

    assert low.delay(1, retry_after=30.0) == 30.0
    assert high.delay(6, retry_after=5.0) == 32.0  # the backoff is already longer


@pytest.mark.parametrize("retry_after", [601.0, 3600.0, 1e12, float("inf")])
def test_retry_after_is_capped_at_ten_times_the_maximum(retry_after: float) -> None:
    assert Backoff(1.0, 60.0, random=lambda: 0.0).delay(1, retry_after=retry_after) == 600.0


def test_retry_after_at_the_cap_is_kept() -> None:
    assert Backoff(1.0, 60.0, random=lambda: 0.0).delay(1, retry_after=600.0) == 600.0


@pytest.mark.parametrize("retry_after", [None, 0.0, -5.0, float("nan")])
def test_useless_retry_after_is_ignored(retry_after: float | None) -> None:
    assert Backoff(1.0, 60.0, random=lambda: 1.0).delay(3, retry_after=retry_after) == 4.0


# --- single flight ----------------------------------------------------------------------------


class Call:
    """A call that blocks until released, counting how often it started."""

    def __init__(self, error: Exception | None = None) -> None:
        self.started = 0
        self.release = anyio.Event()
        self.error = error

    async def __call__(self) -> object:
        self.started += 1
        number = self.started
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return ("result", number)


@pytest.mark.anyio
async def test_fifty_concurrent_callers_share_one_call() -> None:
    flight: SingleFlight[object] = SingleFlight()
    call = Call()
    results: list[object] = []

    async def caller() -> None:
        results.append(await flight.run("key", call))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        assert flight.in_flight("key")
        call.release.set()

    assert call.started == 1
    assert len(results) == 50
    assert all(result is results[0] for result in results)
    assert results[0] == ("result", 1)
    assert not flight.in_flight("key")


@pytest.mark.anyio
async def test_the_error_is_shared_and_not_remembered() -> None:
    flight: SingleFlight[object] = SingleFlight()
    boom = RuntimeError("identity endpoint unreachable")
    call = Call(error=boom)
    errors: list[BaseException] = []

    async def caller() -> None:
        try:
            await flight.run("key", call)
        except RuntimeError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        call.release.set()

    assert call.started == 1
    assert len(errors) == 10
    assert all(error is boom for error in errors)
    assert not flight.in_flight("key")

    # The next call starts afresh rather than replaying the failure.
    retry = Call()
    retry.release.set()
    assert await flight.run("key", retry) == ("result", 1)


@pytest.mark.anyio
async def test_a_cancelled_leader_lets_a_waiter_lead() -> None:
    flight: SingleFlight[object] = SingleFlight()
    call = Call()
    results: list[object] = []
    leader_scope = anyio.CancelScope()

    async def leader() -> None:
        with leader_scope:
            results.append(await flight.run("key", call))

    async def waiter() -> None:
        results.append(await flight.run("key", call))

    async with anyio.create_task_group() as tg:
        tg.start_soon(leader)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert call.started == 1
        leader_scope.cancel()
        await anyio.wait_all_tasks_blocked()
        assert call.started == 2  # the waiter took over instead of waiting forever
        assert flight.in_flight("key")
        call.release.set()

    assert leader_scope.cancelled_caught
    assert results == [("result", 2)]
    assert not flight.in_flight("key")


@pytest.mark.anyio
async def test_a_cancelled_waiter_does_not_disturb_the_leader() -> None:
    flight: SingleFlight[object] = SingleFlight()
    call = Call()
    results: list[object] = []

    async def leader() -> None:
        results.append(await flight.run("key", call))

    async with anyio.create_task_group() as tg:
        tg.start_soon(leader)
        await anyio.wait_all_tasks_blocked()
        with anyio.move_on_after(0.01):
            await flight.run("key", call)
        call.release.set()

    assert call.started == 1
    assert results == [("result", 1)]


@pytest.mark.anyio
async def test_different_keys_run_separately() -> None:
    flight: SingleFlight[object] = SingleFlight()
    calls = {"a": Call(), "b": Call()}
    results: dict[str, object] = {}

    async def caller(key: str) -> None:
        results[key] = await flight.run(key, calls[key])

    async with anyio.create_task_group() as tg:
        for key in ("a", "b", "a", "b"):
            tg.start_soon(caller, key)
        await anyio.wait_all_tasks_blocked()
        assert flight.in_flight("a")
        assert flight.in_flight("b")
        assert (calls["a"].started, calls["b"].started) == (1, 1)
        calls["a"].release.set()
        await anyio.wait_all_tasks_blocked()
        assert not flight.in_flight("a")
        assert flight.in_flight("b")  # released separately
        calls["b"].release.set()

    assert results == {"a": ("result", 1), "b": ("result", 1)}


@pytest.mark.anyio
async def test_sequential_calls_each_run() -> None:
    flight: SingleFlight[object] = SingleFlight()
    call = Call()
    call.release.set()

    assert await flight.run("key", call) == ("result", 1)
    assert await flight.run("key", call) == ("result", 2)
