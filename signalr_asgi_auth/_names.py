"""Hub and application names: what the service accepts, and how they combine."""

from __future__ import annotations

import re

from ._errors import ConfigurationError, InvalidInputError, shown

__all__ = ["MAX_ID_LENGTH", "check_application_name", "check_id", "prefixed_hub"]

MAX_ID_LENGTH = 1024
"""The longest user id, connection id, group name or similar this library passes on."""

_HUB = re.compile(r"[A-Za-z][A-Za-z0-9_`,.\[\]]{0,127}")
_APPLICATION = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # category Cc: C0, DEL and C1


def check_application_name(name: str | None) -> str | None:
    """The application name, lower-cased, or ``None``; it prefixes every hub as ``{app}_{hub}``."""
    if name is None:
        return None
    if not isinstance(name, str) or not _APPLICATION.fullmatch(name):
        msg = (
            "application_name must start with a letter and hold only letters, digits and "
            f"underscores, got {shown(name)}."
        )
        raise ConfigurationError(msg)
    return name.lower()


def prefixed_hub(hub: object, application: str | None) -> str:
    """The hub name as the service sees it: lower-cased, with the application prefix if any."""
    if not isinstance(hub, str) or not _HUB.fullmatch(hub):
        shown = repr(hub)[:80] if isinstance(hub, str) else f"a {type(hub).__name__}"
        msg = (
            f"Invalid hub name {shown}: it must start with a letter and hold 1 to 128 letters, digits "
            "or _`,.[] characters."
        )
        raise InvalidInputError(msg)
    hub = hub.lower()
    return f"{application}_{hub}" if application else hub


def check_id(value: object, what: str) -> str:
    """``value`` if it is a usable id (user, connection, group...): a non-empty string of at most
    :data:`MAX_ID_LENGTH` characters, without control characters. ``what`` names it in errors."""
    if not isinstance(value, str) or not value:
        msg = f"{what} must be a non-empty string, not {shown(value)}."
        raise InvalidInputError(msg)
    if len(value) > MAX_ID_LENGTH:
        msg = f"{what} is {len(value)} characters long; at most {MAX_ID_LENGTH} are allowed."
        raise InvalidInputError(msg)
    if _CONTROL.search(value):
        msg = f"{what} must not contain control characters."
        raise InvalidInputError(msg)
    return value
