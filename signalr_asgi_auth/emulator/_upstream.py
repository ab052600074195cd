"""The emulated resource's upstream settings: where client invocations and connection events go.

As in Azure's upstream settings, an ordered list of templates; an event goes to the first template
whose hub, category and event patterns all match it. A pattern is ``*`` (anything), one name, or
names joined by commas; names compare case-insensitively, as hub and method names do in SignalR.
A URL template may name ``{hub}``, ``{category}`` and ``{event}``, which are filled in (URL-encoded).

Only ``http(s)://`` URLs on a loopback host are accepted unless ``allow_remote`` is set: the
emulator signs what it sends with the resource's keys and its tenant's tokens.
"""

from __future__ import annotations

import ipaddress
import math
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final
from urllib.parse import quote, urlsplit

__all__ = [
    "DEFAULT_UPSTREAM_TIMEOUT",
    "UPSTREAM_ROUTE",
    "ManagedIdentityAuth",
    "UpstreamSettings",
    "UpstreamTable",
    "UpstreamTemplate",
    "is_loopback",
]

UPSTREAM_ROUTE: Final = "upstream.call"
"""The request log's name for the emulator's outbound calls to upstream URLs."""

DEFAULT_UPSTREAM_TIMEOUT: Final = 20.0

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDERS: Final = frozenset({"hub", "category", "event"})


class _Pattern:
    """``*``, one name, or a comma-separated list of names."""

    __slots__ = ("_names", "text")

    def __init__(self, text: str, *, what: str) -> None:
        if not isinstance(text, str) or not text.strip():
            msg = f"{what} must be '*', a name or comma-separated names, got {text!r}."
            raise ValueError(msg)
        names = [name.strip().casefold() for name in text.split(",")]
        if not all(names):
            msg = f"{what} {text!r} has an empty name between its commas."
            raise ValueError(msg)
        self.text = text.strip()
        self._names: frozenset[str] | None = None if "*" in names else frozenset(names)

    def matches(self, value: str) -> bool:
        return self._names is None or value.casefold() in self._names


@lru_cache(maxsize=256)
def _pattern(text: str) -> _Pattern:
    return _Pattern(text, what="pattern")


@dataclass(frozen=True, slots=True)
class ManagedIdentityAuth:
    """Send ``Authorization: Bearer <token>``: an Entra token of the resource's system-assigned
    identity, with ``resource`` (the app's client id or Application ID URI) as its audience."""

    resource: str

    def __post_init__(self) -> None:
        if not isinstance(self.resource, str) or not self.resource.strip():
            msg = (
                "ManagedIdentityAuth needs the resource (audience) the upstream app expects: its "
                f"client id or Application ID URI, got {self.resource!r}."
            )
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class UpstreamTemplate:
    """One upstream setting: the URL to POST to, which events it takes, and how it authenticates
    (``auth=None``: only the ``X-ASRS-Signature`` header)."""

    url_template: str
    hub_pattern: str = "*"
    category_pattern: str = "*"
    event_pattern: str = "*"
    auth: ManagedIdentityAuth | None = None

    def __post_init__(self) -> None:
        _check_url_template(self.url_template)
        for name in ("hub_pattern", "category_pattern", "event_pattern"):
            _Pattern(getattr(self, name), what=name)
        if self.auth is not None and not isinstance(self.auth, ManagedIdentityAuth):
            msg = f"auth must be None or ManagedIdentityAuth(resource=...), got {self.auth!r}."
            raise ValueError(msg)

    def matches(self, hub: str, category: str, event: str) -> bool:
        return (
            _pattern(self.hub_pattern).matches(hub)
            and _pattern(self.category_pattern).matches(category)
            and _pattern(self.event_pattern).matches(event)
        )

    def url_for(self, hub: str, category: str, event: str) -> str:
        values = {"hub": hub, "category": category, "event": event}
        return _PLACEHOLDER.sub(lambda m: quote(values[m.group(1)], safe=""), self.url_template)


class UpstreamSettings:
    """The upstream templates in order, the seconds each call may take, and whether URLs off this
    machine are allowed. A template may be given as its URL alone (every event, no bearer token)."""

    __slots__ = ("allow_remote", "templates", "timeout")

    def __init__(
        self,
        templates: Iterable[UpstreamTemplate | str] = (),
        *,
        timeout: float = DEFAULT_UPSTREAM_TIMEOUT,
        allow_remote: bool = False,
    ) -> None:
        if isinstance(templates, str | UpstreamTemplate):
            templates = [templates]
        items = tuple(
            t if isinstance(t, UpstreamTemplate) else UpstreamTemplate(t) for t in templates
        )
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            msg = f"The upstream timeout must be a number of seconds, got {timeout!r}."
            raise ValueError(msg)
        if not (0 < timeout < math.inf):
            msg = f"The upstream timeout must be a positive number of seconds, got {timeout!r}."
            raise ValueError(msg)
        if not allow_remote:
            for template in items:
                _check_loopback(template.url_template)
        self.templates: tuple[UpstreamTemplate, ...] = items
        self.timeout = float(timeout)
        self.allow_remote = bool(allow_remote)

    def match(self, hub: str, category: str, event: str) -> UpstreamTemplate | None:
        """The first template taking this event, or None."""
        for template in self.templates:
            if template.matches(hub, category, event):
                return template
        return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UpstreamSettings):
            return NotImplemented
        mine = (self.templates, self.timeout, self.allow_remote)
        return mine == (other.templates, other.timeout, other.allow_remote)

    def __hash__(self) -> int:
        return hash((self.templates, self.timeout, self.allow_remote))

    def __repr__(self) -> str:
        return (
            f"UpstreamSettings({list(self.templates)!r}, timeout={self.timeout!r}, "
            f"allow_remote={self.allow_remote!r})"
        )


class UpstreamTable:
    """The settings in force; replaced whole (tests and apps change them while clients are
    connected), so a call sees either the old or the new settings, never a mix."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self._lock = threading.Lock()
        self._settings = settings

    @property
    def settings(self) -> UpstreamSettings:
        with self._lock:
            return self._settings

    @settings.setter
    def settings(self, settings: UpstreamSettings) -> None:
        if not isinstance(settings, UpstreamSettings):
            msg = (
                f"The upstream settings must be an UpstreamSettings, got {type(settings).__name__}."
            )
            raise TypeError(msg)
        with self._lock:
            self._settings = settings

    def __repr__(self) -> str:
        return f"UpstreamTable({self.settings!r})"


def _check_url_template(template: object) -> None:
    if not isinstance(template, str) or not template.strip():
        msg = f"url_template must be a URL such as http://127.0.0.1:8000/upstream/{{event}}, got {template!r}."
        raise ValueError(msg)
    unknown = sorted(set(_PLACEHOLDER.findall(template)) - _PLACEHOLDERS)
    if unknown:
        msg = (
            f"url_template {template!r} has unknown placeholder(s) "
            f"{', '.join('{' + name + '}' for name in unknown)}; the placeholders are {{hub}}, "
            "{category} and {event} (Key Vault references are not emulated)."
        )
        raise ValueError(msg)
    parts = urlsplit(_example(template))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"url_template must be an absolute http:// or https:// URL, got {template!r}."
        raise ValueError(msg)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 in brackets or not) is this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_loopback(template: str) -> None:
    if is_loopback(urlsplit(_example(template)).hostname or ""):
        return
    msg = (
        f"The upstream URL {template!r} is not on this machine (127.0.0.1, ::1 or localhost). The "
        "emulator sends signed requests and bearer tokens there: set allow_remote if you mean it."
    )
    raise ValueError(msg)


def _example(template: str) -> str:
    """The template with placeholders filled in, to check what kind of URL it makes."""
    return _PLACEHOLDER.sub("x", template.strip())
