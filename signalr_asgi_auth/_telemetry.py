"""OpenTelemetry spans and metrics, when ``opentelemetry-api`` is installed (the ``otel`` extra).

Without it every function here is bound at import to a no-op, so the hot paths pay one call to
nothing. With it, the API's global providers decide where the data goes (nowhere until the app
installs an SDK); the tracer and meter are the API's proxies, so an SDK set up after this import
still receives everything.

What is recorded: the endpoint (the service's URL), the hub, the HTTP status, the error's type and
what was being done. Never a token, a key, a user id, a connection id or an error message (messages
name principals and may quote a user id).

Spans: ``signalr.entra_token.refresh``, ``signalr.access_key.refresh``, ``signalr.rest``,
``signalr.service_token``, ``signalr.server_connection.{connect,handshake,reconnect,stop}``.
Metrics: ``signalr.negotiations`` (by outcome), ``signalr.access_key.age``,
``signalr.refresh.failures``, ``signalr.service_token.cache`` (hit or miss),
``signalr.server_connections.up``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol

from ._version import __version__

__all__ = [
    "ENABLED",
    "KeyAgeSource",
    "SpanLike",
    "count_negotiation",
    "count_refresh_failure",
    "count_service_token_lookup",
    "error_type",
    "server_connection_down",
    "server_connection_up",
    "span",
    "watch_key_age",
]

ENDPOINT = "signalr.endpoint"
HUB = "signalr.hub"
STATUS = "http.response.status_code"
ERROR_TYPE = "error.type"

Attributes = Mapping[str, str | int | bool]


class SpanLike(Protocol):
    """What callers may do with the span they are given: add a (non-secret) attribute."""

    def set_attribute(self, key: str, value: str | int | bool) -> object: ...


class KeyAgeSource(Protocol):
    """A keeper that can say how old its key is (seconds), and for which endpoint."""

    @property
    def telemetry_endpoint(self) -> str: ...

    def key_age(self) -> float | None: ...


class _NoSpan:
    __slots__ = ()

    def set_attribute(self, key: str, value: str | int | bool) -> None:
        pass


_NO_SPAN: AbstractContextManager[SpanLike] = nullcontext(_NoSpan())
"""Reused for every call: ``nullcontext`` holds no state between uses."""


def error_type(exc: BaseException) -> str:
    """The exception's class name: what went wrong, never the message (it may name a user)."""
    return type(exc).__name__


try:
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
except ImportError:  # the otel extra is not installed: bind the no-ops
    ENABLED = False

    def span(name: str, attributes: Attributes) -> AbstractContextManager[SpanLike]:
        return _NO_SPAN

    def count_negotiation(hub: str, outcome: str) -> None:
        pass

    def count_refresh_failure(what: str, exc: BaseException, attributes: Attributes) -> None:
        pass

    def count_service_token_lookup(endpoint: str, *, hit: bool) -> None:
        pass

    def server_connection_up(endpoint: str, hub: str) -> None:
        pass

    def server_connection_down(endpoint: str, hub: str) -> None:
        pass

    def watch_key_age(source: KeyAgeSource) -> None:
        pass

else:
    ENABLED = True
    _tracer = _trace.get_tracer("signalr_asgi_auth", __version__)
    _meter = _metrics.get_meter("signalr_asgi_auth", __version__)
    _negotiations = _meter.create_counter(
        "signalr.negotiations", unit="{negotiation}", description="Negotiations by outcome"
    )
    _refresh_failures = _meter.create_counter(
        "signalr.refresh.failures",
        unit="{failure}",
        description="Failed refreshes of the Entra token or the access key",
    )
    _service_token_cache = _meter.create_counter(
        "signalr.service_token.cache",
        unit="{lookup}",
        description="Lookups of service-issued client tokens in the cache, by hit or miss",
    )
    _connections_up = _meter.create_up_down_counter(
        "signalr.server_connections.up",
        unit="{connection}",
        description="Server connections to SignalR Service that are up (Default mode)",
    )
    _key_sources: weakref.WeakSet[Any] = weakref.WeakSet()

    def _observe_key_ages(options: object) -> Iterable[_metrics.Observation]:
        for source in list(_key_sources):
            age = source.key_age()
            if age is not None:
                yield _metrics.Observation(age, {ENDPOINT: source.telemetry_endpoint})

    _meter.create_observable_gauge(
        "signalr.access_key.age",
        callbacks=[_observe_key_ages],
        unit="s",
        description="How long ago the access key in use was fetched",
    )

    @contextmanager
    def _recorded_span(name: str, attributes: Attributes) -> Iterator[SpanLike]:
        # The exception itself is not recorded: its message may name a principal or a user.
        with _tracer.start_as_current_span(
            name,
            kind=_trace.SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as current:
            try:
                yield current
            except Exception as exc:
                current.set_attribute(ERROR_TYPE, error_type(exc))
                status = getattr(exc, "status", None)
                if status is None:  # a refused upgrade carries the response itself
                    status = getattr(getattr(exc, "response", None), "status_code", None)
                if isinstance(status, int):
                    current.set_attribute(STATUS, status)
                current.set_status(_trace.StatusCode.ERROR)
                raise

    def span(name: str, attributes: Attributes) -> AbstractContextManager[SpanLike]:
        return _recorded_span(name, attributes)

    def count_negotiation(hub: str, outcome: str) -> None:
        _negotiations.add(1, {HUB: hub, "signalr.outcome": outcome})

    def count_refresh_failure(what: str, exc: BaseException, attributes: Attributes) -> None:
        _refresh_failures.add(
            1, {**attributes, "signalr.refresh": what, ERROR_TYPE: error_type(exc)}
        )

    def count_service_token_lookup(endpoint: str, *, hit: bool) -> None:
        _service_token_cache.add(1, {ENDPOINT: endpoint, "signalr.cache": "hit" if hit else "miss"})

    def server_connection_up(endpoint: str, hub: str) -> None:
        _connections_up.add(1, {ENDPOINT: endpoint, HUB: hub})

    def server_connection_down(endpoint: str, hub: str) -> None:
        _connections_up.add(-1, {ENDPOINT: endpoint, HUB: hub})

    def watch_key_age(source: KeyAgeSource) -> None:
        _key_sources.add(source)
