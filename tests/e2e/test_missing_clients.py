"""A missing real client skips the end-to-end tests on a developer's machine and fails them in CI.

Not marked ``e2e``: these run in the fast selection too, so that a CI configuration that hides the
judges is caught wherever the suite runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .support import chromium_or_skip, node_or_skip

CHECKS: list[Callable[[], str]] = [node_or_skip, chromium_or_skip]


@pytest.fixture
def no_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither Node nor Chromium on PATH."""
    monkeypatch.setenv("PATH", "/nonexistent")


@pytest.mark.usefixtures("no_clients")
@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize(
    ("value", "outcome", "reason"),
    [
        ("", pytest.skip.Exception, r"is not (on PATH|installed)"),
        ("false", pytest.skip.Exception, r"is not (on PATH|installed)"),
        ("0", pytest.skip.Exception, r"is not (on PATH|installed)"),
        ("true", pytest.fail.Exception, r"CI=true: the end-to-end tests must run, not skip"),
        ("True", pytest.fail.Exception, r"CI=true: the end-to-end tests must run, not skip"),
        ("1", pytest.fail.Exception, r"CI=true: the end-to-end tests must run, not skip"),
    ],
)
def test_a_missing_client_skips_outside_ci_and_fails_in_ci(
    check: Callable[[], str],
    value: str,
    outcome: type[BaseException],
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(outcome, match=reason):
        check()


def test_without_ci_set_a_missing_client_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"Node\.js is not on PATH"):
        node_or_skip()
