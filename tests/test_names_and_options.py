"""Hub and application names, and the validation of every option."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from typing import Any

import pytest

from signalr_asgi_auth._clock import SystemClock
from signalr_asgi_auth._errors import ConfigurationError, InvalidInputError
from signalr_asgi_auth._names import check_application_name, prefixed_hub
from signalr_asgi_auth._options import DEFAULT_SCOPE, Options

from .support import DURATION_OPTIONS


def build(**options: Any) -> Options:
    """``Options.build`` with options chosen at run time (and wrong on purpose)."""
    return Options.build(**options)


# --- hub names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hub",
    [
        "a",
        "Z",
        "chat",
        "Chat_Hub",
        "a1",
        "a_b`c,d.e[f]",
        "h" + "x" * 127,  # 128 characters
    ],
)
def test_valid_hub_names_are_lower_cased(hub: str) -> None:
    assert prefixed_hub(hub, None) == hub.lower()


@pytest.mark.parametrize(
    "hub",
    [
        pytest.param("", id="empty"),
        pytest.param("1chat", id="digit-first"),
        pytest.param("_chat", id="underscore-first"),
        pytest.param("[chat]", id="bracket-first"),
        pytest.param("h" + "x" * 128, id="129-characters"),
        pytest.param("chat-hub", id="dash"),
        pytest.param("chat hub", id="space"),
        pytest.param("chat/hub", id="slash"),
        pytest.param("chat?x=1", id="query"),
        pytest.param("chat&hub=x", id="ampersand"),
        pytest.param("chät", id="non-ascii-letter"),
        pytest.param("chat\n", id="trailing-newline"),
        pytest.param("chat ", id="trailing-space"),
    ],
)
def test_invalid_hub_names_are_refused(hub: str) -> None:
    with pytest.raises(
        InvalidInputError,
        match=r"Invalid hub name .*: it must start with a letter and hold 1 to 128 letters, digits",
    ):
        prefixed_hub(hub, None)


@pytest.mark.parametrize(("hub", "kind"), [(None, "NoneType"), (5, "int"), (b"chat", "bytes")])
def test_non_string_hub_names_are_refused_by_type(hub: object, kind: str) -> None:
    with pytest.raises(InvalidInputError, match=f"Invalid hub name a {kind}:"):
        prefixed_hub(hub, None)


def test_long_hub_names_are_cut_short_in_the_message() -> None:
    with pytest.raises(InvalidInputError) as caught:
        prefixed_hub("-" * 5000, None)

    assert len(str(caught.value)) < 300


def test_hub_boundary_is_128_characters() -> None:
    assert len(prefixed_hub("a" * 128, None)) == 128
    with pytest.raises(InvalidInputError, match="Invalid hub name"):
        prefixed_hub("a" * 129, None)


def test_application_name_prefixes_the_hub() -> None:
    assert prefixed_hub("ChatHub", "myapp") == "myapp_chathub"


def test_application_name_and_hub_are_both_lower_cased_together() -> None:
    application = check_application_name("My_App1")

    assert prefixed_hub("Chat", application) == "my_app1_chat"


def test_no_application_no_prefix() -> None:
    assert prefixed_hub("Chat", None) == "chat"
    assert prefixed_hub("Chat", "") == "chat"


# --- application names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [(None, None), ("app", "app"), ("MyApp", "myapp"), ("a_1_B", "a_1_b"), ("A", "a")],
)
def test_check_application_name_accepts(name: str | None, expected: str | None) -> None:
    assert check_application_name(name) == expected


@pytest.mark.parametrize(
    "name", ["", "1app", "_app", "my-app", "my app", "my.app", "app\n", "äpp", 5, b"app"]
)
def test_check_application_name_refuses(name: Any) -> None:
    with pytest.raises(
        ConfigurationError,
        match="application_name must start with a letter and hold only letters, digits and underscores",
    ):
        check_application_name(name)


# --- options: defaults and types --------------------------------------------------------------


def test_defaults() -> None:
    options = Options.build()

    assert options.scope == DEFAULT_SCOPE == "https://signalr.azure.com/.default"
    assert options.application_name is None
    assert options.algorithm == "HS256"
    assert options.key_refresh_interval == 55 * 60
    assert options.key_lifetime == 90 * 60
    assert options.key_expiry_margin == 5 * 60
    assert options.key_usable_for == 85 * 60
    assert options.token_lifetime == 60 * 60
    assert options.token_refresh_margin == 5 * 60
    assert options.startup_timeout == 10
    assert options.retry_initial_delay <= options.retry_max_delay
    assert isinstance(options.clock, SystemClock)


def test_the_dataclass_defaults_match_build() -> None:
    built, plain = Options.build(), Options()

    assert dataclasses.replace(plain, clock=built.clock) == built


MAY_BE_ZERO = {"startup_timeout", "key_expiry_margin", "token_refresh_margin"}


@pytest.mark.parametrize("name", DURATION_OPTIONS)
def test_durations_accept_a_timedelta(name: str) -> None:
    # valid, and consistent with the other defaults
    value = getattr(Options.build(), name) * (2 if name == "key_lifetime" else 0.5)

    options = build(**{name: timedelta(seconds=value)})

    assert getattr(options, name) == value
    assert type(getattr(options, name)) is float


@pytest.mark.parametrize("name", DURATION_OPTIONS)
def test_durations_accept_ints_and_floats_and_hold_floats(name: str) -> None:
    whole = 7200 if name == "key_lifetime" else 2  # consistent with the other defaults
    as_int = build(**{name: whole})
    as_float = build(**{name: whole + 0.5})

    assert getattr(as_int, name) == float(whole)
    assert type(getattr(as_int, name)) is float
    assert getattr(as_float, name) == whole + 0.5


def _bad_durations() -> list[Any]:
    cases = []
    for name in DURATION_OPTIONS:
        bad: list[tuple[object, str]] = [
            (-1, "more than zero" if name not in MAY_BE_ZERO else "zero or more"),
            (timedelta(seconds=-1), "than zero" if name not in MAY_BE_ZERO else "zero or more"),
            (math.nan, "a finite number of seconds"),
            (math.inf, "a finite number of seconds"),
            (10**400, "a finite number of seconds"),
            (True, "a number of seconds or a timedelta, not bool"),
            ("10", "a number of seconds or a timedelta, not str"),
            (None, "a number of seconds or a timedelta, not NoneType"),
        ]
        if name not in MAY_BE_ZERO:
            bad += [(0, "more than zero seconds"), (timedelta(0), "more than zero seconds")]
        cases += [
            pytest.param(name, value, match, id=f"{name}={value!r:.12}") for value, match in bad
        ]
    return cases


@pytest.mark.parametrize(("name", "value", "match"), _bad_durations())
def test_invalid_durations_name_the_option(name: str, value: object, match: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{name} must .*{match}"):
        build(**{name: value})


@pytest.mark.parametrize("name", sorted(MAY_BE_ZERO))
def test_some_durations_may_be_zero(name: str) -> None:
    assert getattr(build(**{name: 0}), name) == 0.0


def test_token_lifetime_is_at_most_a_day() -> None:
    assert Options.build(token_lifetime=timedelta(hours=24)).token_lifetime == 86400.0
    with pytest.raises(ConfigurationError, match=r"^token_lifetime must be at most 86400 seconds"):
        Options.build(token_lifetime=86400.5)


@pytest.mark.parametrize(
    "scope", ["", "   ", "https://signalr.azure.com/.default extra", "a\tb", 5]
)
def test_invalid_scope(scope: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^scope must be one Entra scope"):
        Options.build(scope=scope)


def test_scope_can_be_overridden() -> None:
    assert Options.build(scope="api://custom/.default").scope == "api://custom/.default"


@pytest.mark.parametrize("algorithm", ["HS512", "HS256"])
def test_algorithms(algorithm: Any) -> None:
    assert Options.build(algorithm=algorithm).algorithm == algorithm


@pytest.mark.parametrize("algorithm", ["RS256", "hs256", "", None, "none"])
def test_invalid_algorithm(algorithm: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^algorithm must be 'HS256' or 'HS512'"):
        Options.build(algorithm=algorithm)


def test_application_name_is_checked_and_lower_cased() -> None:
    assert Options.build(application_name="MyApp").application_name == "myapp"
    with pytest.raises(ConfigurationError, match=r"^application_name must"):
        Options.build(application_name="my-app")


def test_clock_is_kept() -> None:
    clock = SystemClock()

    assert Options.build(clock=clock).clock is clock


# --- options: consistency ---------------------------------------------------------------------


def test_refresh_must_come_before_the_key_stops_being_usable() -> None:
    usable = 90 * 60 - 5 * 60
    assert Options.build(key_refresh_interval=usable - 1).key_refresh_interval == usable - 1

    with pytest.raises(
        ConfigurationError,
        match=r"key_refresh_interval \(5100 s\) must be shorter than key_lifetime minus "
        r"key_expiry_margin \(5100 s\)",
    ):
        Options.build(key_refresh_interval=usable)
    with pytest.raises(ConfigurationError, match="keys would expire before they are refreshed"):
        Options.build(key_lifetime=3600, key_expiry_margin=600, key_refresh_interval=3000)


@pytest.mark.parametrize("margin", [90 * 60, 100 * 60])
def test_margin_must_be_shorter_than_the_key_lifetime(margin: float) -> None:
    with pytest.raises(
        ConfigurationError,
        match=rf"key_expiry_margin \({margin:g} s\) must be shorter than key_lifetime \(5400 s\)",
    ):
        Options.build(key_expiry_margin=margin)


def test_retry_initial_delay_must_not_exceed_the_maximum() -> None:
    assert Options.build(retry_initial_delay=30, retry_max_delay=30).retry_initial_delay == 30

    with pytest.raises(
        ConfigurationError,
        match=r"retry_initial_delay \(31 s\) must not exceed retry_max_delay \(30 s\)",
    ):
        Options.build(retry_initial_delay=31, retry_max_delay=30)


def test_options_are_frozen() -> None:
    options = Options.build()

    with pytest.raises(dataclasses.FrozenInstanceError):
        options.token_lifetime = 1.0  # type: ignore[misc]
