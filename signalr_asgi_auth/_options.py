"""Every tunable of :class:`SignalRAuth`, validated once at construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict

from ._clock import Clock, SystemClock
from ._durations import Duration, to_seconds
from ._errors import ConfigurationError, shown
from ._names import check_application_name

__all__ = ["DEFAULT_SCOPE", "MAX_TOKEN_LIFETIME", "Algorithm", "Mode", "Options", "OptionsKwargs"]

DEFAULT_SCOPE = "https://signalr.azure.com/.default"
"""The Entra scope for SignalR Service in every cloud (the C# SDK hard-codes it too)."""

MAX_TOKEN_LIFETIME = 24 * 3600.0
"""Client tokens live at most a day: the service checks them only when a client connects."""

Algorithm = Literal["HS256", "HS512"]

Mode = Literal["auto", "key", "service"]
"""Who signs client tokens: this app with the temporary key (``key``), SignalR Service through
``:generateToken`` (``service``), or the key when the identity may fetch it and the service when
that call answers 403 (``auto``)."""

_MODES = ("auto", "key", "service")


class OptionsKwargs(TypedDict, total=False):
    """The keyword options of :class:`SignalRAuth` (see docs/options.md)."""

    scope: str
    application_name: str | None
    algorithm: Algorithm
    token_lifetime: Duration
    startup_timeout: Duration
    key_refresh_interval: Duration
    key_lifetime: Duration
    key_expiry_margin: Duration
    token_refresh_margin: Duration
    retry_initial_delay: Duration
    retry_max_delay: Duration
    request_timeout: Duration
    credential_timeout: Duration
    clock: Clock | None
    mode: Mode
    service_token_cache_fraction: float
    service_token_cache_size: int
    server_connection_count: int
    health_check_interval: Duration
    health_check_timeout: Duration


@dataclass(frozen=True, slots=True)
class Options:
    """Validated settings; durations are held in seconds."""

    scope: str = DEFAULT_SCOPE
    application_name: str | None = None
    algorithm: Algorithm = "HS256"
    token_lifetime: float = 3600.0
    startup_timeout: float = 10.0
    key_refresh_interval: float = 55 * 60.0
    key_lifetime: float = 90 * 60.0
    key_expiry_margin: float = 5 * 60.0
    token_refresh_margin: float = 5 * 60.0
    retry_initial_delay: float = 1.0
    retry_max_delay: float = 60.0
    request_timeout: float = 10.0
    credential_timeout: float = 30.0
    clock: Clock = field(default_factory=SystemClock)
    mode: Mode = "auto"
    service_token_cache_fraction: float = 0.5
    service_token_cache_size: int = 10_000
    server_connection_count: int = 5
    health_check_interval: float = 30.0
    health_check_timeout: float = 2.0

    @classmethod
    def build(
        cls,
        *,
        scope: str = DEFAULT_SCOPE,
        application_name: str | None = None,
        algorithm: Algorithm = "HS256",
        token_lifetime: Duration = 3600.0,
        startup_timeout: Duration = 10.0,
        key_refresh_interval: Duration = 55 * 60.0,
        key_lifetime: Duration = 90 * 60.0,
        key_expiry_margin: Duration = 5 * 60.0,
        token_refresh_margin: Duration = 5 * 60.0,
        retry_initial_delay: Duration = 1.0,
        retry_max_delay: Duration = 60.0,
        request_timeout: Duration = 10.0,
        credential_timeout: Duration = 30.0,
        clock: Clock | None = None,
        mode: Mode = "auto",
        service_token_cache_fraction: float = 0.5,
        service_token_cache_size: int = 10_000,
        server_connection_count: int = 5,
        health_check_interval: Duration = 30.0,
        health_check_timeout: Duration = 2.0,
    ) -> Options:
        if not isinstance(scope, str) or not scope.strip() or any(c.isspace() for c in scope):
            msg = f"scope must be one Entra scope such as {DEFAULT_SCOPE!r}."
            raise ConfigurationError(msg)
        if algorithm not in ("HS256", "HS512"):
            msg = f"algorithm must be 'HS256' or 'HS512', got {shown(algorithm)}."
            raise ConfigurationError(msg)
        if mode not in _MODES:
            msg = f"mode must be 'auto', 'key' or 'service', got {shown(mode)}."
            raise ConfigurationError(msg)
        options = cls(
            scope=scope,
            application_name=check_application_name(application_name),
            algorithm=algorithm,
            token_lifetime=to_seconds(
                token_lifetime, name="token_lifetime", maximum=MAX_TOKEN_LIFETIME
            ),
            startup_timeout=to_seconds(startup_timeout, name="startup_timeout", allow_zero=True),
            key_refresh_interval=to_seconds(key_refresh_interval, name="key_refresh_interval"),
            key_lifetime=to_seconds(key_lifetime, name="key_lifetime"),
            key_expiry_margin=to_seconds(
                key_expiry_margin, name="key_expiry_margin", allow_zero=True
            ),
            token_refresh_margin=to_seconds(
                token_refresh_margin, name="token_refresh_margin", allow_zero=True
            ),
            retry_initial_delay=to_seconds(retry_initial_delay, name="retry_initial_delay"),
            retry_max_delay=to_seconds(retry_max_delay, name="retry_max_delay"),
            request_timeout=to_seconds(request_timeout, name="request_timeout"),
            credential_timeout=to_seconds(credential_timeout, name="credential_timeout"),
            clock=clock if clock is not None else SystemClock(),
            mode=mode,
            service_token_cache_fraction=_fraction(service_token_cache_fraction),
            service_token_cache_size=_cache_size(service_token_cache_size),
            server_connection_count=_connection_count(server_connection_count),
            health_check_interval=to_seconds(health_check_interval, name="health_check_interval"),
            health_check_timeout=to_seconds(health_check_timeout, name="health_check_timeout"),
        )
        options._check_consistency()
        return options

    def _check_consistency(self) -> None:
        usable = self.key_lifetime - self.key_expiry_margin
        if usable <= 0:
            msg = (
                f"key_expiry_margin ({self.key_expiry_margin:g} s) must be shorter than "
                f"key_lifetime ({self.key_lifetime:g} s)."
            )
            raise ConfigurationError(msg)
        if self.key_refresh_interval >= usable:
            msg = (
                f"key_refresh_interval ({self.key_refresh_interval:g} s) must be shorter than "
                f"key_lifetime minus key_expiry_margin ({usable:g} s), or keys would expire "
                "before they are refreshed."
            )
            raise ConfigurationError(msg)
        if self.health_check_timeout >= self.health_check_interval:
            msg = (
                f"health_check_timeout ({self.health_check_timeout:g} s) must be shorter than "
                f"health_check_interval ({self.health_check_interval:g} s)."
            )
            raise ConfigurationError(msg)
        if self.retry_initial_delay > self.retry_max_delay:
            msg = (
                f"retry_initial_delay ({self.retry_initial_delay:g} s) must not exceed "
                f"retry_max_delay ({self.retry_max_delay:g} s)."
            )
            raise ConfigurationError(msg)

    @property
    def key_usable_for(self) -> float:
        """How long after its fetch a temporary key still signs tokens."""
        return self.key_lifetime - self.key_expiry_margin


def _fraction(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1:
        return float(value)
    msg = (
        "service_token_cache_fraction must be a number from 0 (no reuse) up to, but not "
        f"including, 1 (reuse until expiry), got {shown(value)}."
    )
    raise ConfigurationError(msg)


def _cache_size(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        msg = (
            "service_token_cache_size must be a whole number of tokens, 1 or more, got "
            f"{shown(value)}."
        )
        raise ConfigurationError(msg)
    return value


MAX_SERVER_CONNECTIONS = 100
"""Per hub: each counts against the resource's connection quota (a Free unit allows 20 in all)."""


def _connection_count(value: object) -> int:
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 1 <= value <= MAX_SERVER_CONNECTIONS
    ):
        return value
    msg = (
        "server_connection_count must be a whole number of connections per hub from 1 to "
        f"{MAX_SERVER_CONNECTIONS}, got {shown(value)}."
    )
    raise ConfigurationError(msg)
