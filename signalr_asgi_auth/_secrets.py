"""A wrapper that keeps tokens, keys and client secrets out of reprs, logs and messages."""

from __future__ import annotations

from typing import Final

__all__ = ["Secret"]

_MASK: Final = "**********"


class Secret:
    """A string that prints as asterisks; call :meth:`reveal` at the one place that needs the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)
