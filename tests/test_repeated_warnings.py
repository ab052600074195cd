"""Failed negotiations during an outage: one warning, then one a minute, not one per request."""

from __future__ import annotations

import logging

import pytest

from signalr_asgi_auth import NotReadyError
from signalr_asgi_auth._negotiate import error_response
from signalr_asgi_auth._repeated_warnings import RepeatedWarnings

LOGGER = logging.getLogger("tests.repeated_warnings")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_repeated_message_is_warned_once_then_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER.name)
    clock = Clock()
    warnings = RepeatedWarnings(LOGGER, "Negotiation failed", interval=60, clock=clock)
    for _ in range(100):
        warnings.warn("no key")
        clock.now += 0.1  # 10 s in all
    assert warnings_in(caplog) == ["Negotiation failed: no key"]
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 99

    clock.now += 50
    warnings.warn("no key")
    assert warnings_in(caplog)[1:] == [
        "Negotiation failed: no key (100 more times since the last warning)"
    ]


def test_a_new_message_is_warned_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER.name)
    warnings = RepeatedWarnings(LOGGER, "Negotiation failed", clock=Clock())
    for message in ["no key", "no key", "403", "403", "no key"]:
        warnings.warn(message)
    assert warnings_in(caplog) == [
        "Negotiation failed: no key",
        "Negotiation failed: 403",
        "Negotiation failed: no key",
    ]


def test_the_negotiate_answers_warn_once_for_an_outage(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "signalr_asgi_auth")
    error = NotReadyError("No SignalR access key yet: test outage 7f3a.", retry_after=3)
    answers = [error_response(error) for _ in range(50)]
    assert {answer.status_code for answer in answers} == {503}
    ours = [m for m in warnings_in(caplog) if "test outage 7f3a" in m]
    assert ours == ["Negotiation failed: No SignalR access key yet: test outage 7f3a."]
