"""What both examples take as a user or group name, and how they refuse one: the same rule and the
same answer (400 ``{"code", "error"}``, as ``negotiate_endpoint`` answers bad input)."""

from __future__ import annotations

from signalr_asgi_auth import InvalidInputError

__all__ = ["MAX_NAME", "name"]

MAX_NAME = 64


def name(value: object, what: str) -> str:
    """``value`` without surrounding spaces, if 1 to :data:`MAX_NAME` characters remain; else
    :class:`InvalidInputError`, which the apps' exception handler answers with 400 JSON."""
    text = value.strip() if isinstance(value, str) else ""
    if not 0 < len(text) <= MAX_NAME:
        msg = f"{what} must be a name of 1 to {MAX_NAME} characters (spaces around it are dropped)."
        raise InvalidInputError(msg)
    return text
