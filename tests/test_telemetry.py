"""OpenTelemetry spans and metrics, judged by the SDK's in-memory exporters, against the emulator with
the real azure-identity managed identity: the attributes each span and metric carries, and that no
token, key, user id or principal id appears anywhere in them. Without ``opentelemetry`` the module
binds no-ops (checked in a subprocess that cannot import it)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from signalr_asgi_auth import NotReadyError
from signalr_asgi_auth.emulator import Emulator

from .server.support import EchoHub
from .support import auth_for, principal_with_role, wait_until

pytestmark = pytest.mark.anyio

USER = "user-4e1f-telemetry"
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.")

_SPANS = InMemorySpanExporter()
_METRICS = InMemoryMetricReader()
_installed: list[bool] = []


@pytest.fixture
def telemetry() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    """The SDK as an app would install it, once per process (the API's providers are global);
    each test starts with no spans and reads metrics as differences where it must."""
    if not _installed:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(_SPANS))
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[_METRICS]))
        _installed.append(True)
    _SPANS.clear()
    _METRICS.get_metrics_data()  # collect now: each test's counters are read as deltas below
    yield _SPANS, _METRICS
    _SPANS.clear()


def spans(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def points(reader: InMemoryMetricReader) -> dict[str, list[dict[str, Any]]]:
    """Every data point by metric name: ``{"attributes": ..., "value": ...}``."""
    found: dict[str, list[dict[str, Any]]] = {}
    data = reader.get_metrics_data()
    if data is None:  # nothing recorded yet in this process
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            if scope.scope.name != "signalr_asgi_auth":
                continue
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(
                    {"attributes": dict(point.attributes or {}), "value": point.value}  # type: ignore[union-attr]
                    for point in metric.data.data_points
                )
    return found


def value(found: dict[str, list[dict[str, Any]]], name: str, **attributes: Any) -> float:
    return float(
        sum(
            point["value"]
            for point in found.get(name, [])
            if all(point["attributes"].get(key) == wanted for key, wanted in attributes.items())
        )
    )


def everything_recorded(exporter: InMemorySpanExporter, reader: InMemoryMetricReader) -> str:
    recorded = [span.to_json() for span in exporter.get_finished_spans()]
    data = reader.get_metrics_data()
    return "\n".join([*recorded, data.to_json() if data is not None else ""])


def assert_no_secret(recorded: str, *secrets: str) -> None:
    assert JWT.search(recorded) is None, "a JWT in the telemetry"
    for secret in secrets:
        assert secret not in recorded


async def test_refreshes_rest_calls_and_negotiations(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, reader = telemetry
    before = points(reader)
    principal = emulator.add_principal("owner")
    emulator.assign(principal, "SignalR App Server")
    emulator.assign(principal, "SignalR REST API Owner")
    auth = auth_for(emulator, emulator_url, principal)
    async with auth as signalr:
        reply = await signalr.negotiate("chat", user_id=USER)
        await signalr.hub("chat").send_to_user(USER, "hello", "there")
        assert await signalr.hub("chat").user_exists(USER) is False
        found = points(reader)
    endpoint = auth.endpoint.endpoint

    (entra,) = spans(exporter, "signalr.entra_token.refresh")
    assert entra.attributes == {"signalr.credential": "ManagedIdentityCredential"}
    assert entra.status.status_code is StatusCode.UNSET
    (key,) = spans(exporter, "signalr.access_key.refresh")
    assert key.attributes == {"signalr.endpoint": endpoint}
    assert entra.kind is key.kind is trace.SpanKind.CLIENT
    rest = spans(exporter, "signalr.rest")
    assert [(span.attributes or {}).get("http.request.method") for span in rest] == ["POST", "HEAD"]
    assert [(span.attributes or {}).get("http.response.status_code") for span in rest] == [202, 404]
    assert {(span.attributes or {})["signalr.hub"] for span in rest} == {"chat"}
    assert {(span.attributes or {})["signalr.endpoint"] for span in rest} == {endpoint}

    negotiated = value(found, "signalr.negotiations", **{"signalr.hub": "chat"})
    assert negotiated - value(before, "signalr.negotiations", **{"signalr.hub": "chat"}) == 1
    assert value(found, "signalr.negotiations", **{"signalr.outcome": "ok"}) >= 1
    (age,) = [
        p
        for p in found["signalr.access_key.age"]
        if p["attributes"] == {"signalr.endpoint": endpoint}
    ]
    assert 0 <= age["value"] < 60

    assert_no_secret(
        everything_recorded(exporter, reader),
        USER,
        reply["accessToken"],
        emulator.issued_keys[0].access_key,
        principal.object_id,
        app_service_env["IDENTITY_HEADER"],
    )


async def test_failures_carry_the_error_type_never_the_message(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, reader = telemetry
    before = points(reader)
    principal = emulator.add_principal("no-role")  # the key request gets a 403
    auth = auth_for(emulator, emulator_url, principal, startup_timeout=0.1, mode="key")
    async with auth as signalr:
        await wait_until(lambda: len(spans(exporter, "signalr.access_key.refresh")) >= 2)
        with pytest.raises(NotReadyError):
            await signalr.negotiate("chat", user_id=USER)
        found = points(reader)
    failed = spans(exporter, "signalr.access_key.refresh")[0]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description is None  # the message names the principal: not recorded
    assert (failed.attributes or {})["error.type"] == "PermissionDeniedError"
    assert (failed.attributes or {})["http.response.status_code"] == 403
    assert not failed.events  # no exception event with its message
    refused = {"signalr.refresh": "access_key", "error.type": "PermissionDeniedError"}
    assert (
        value(found, "signalr.refresh.failures", **refused)
        - value(before, "signalr.refresh.failures", **refused)
        >= 2
    )
    not_ready = {"signalr.hub": "chat", "signalr.outcome": "NotReadyError"}
    assert (
        value(found, "signalr.negotiations", **not_ready)
        - value(before, "signalr.negotiations", **not_ready)
        == 1
    )
    assert_no_secret(
        everything_recorded(exporter, reader), USER, principal.object_id, "SignalR App Server"
    )


async def test_service_tokens_and_their_cache(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, reader = telemetry
    before = points(reader)
    owner = principal_with_role(emulator, "SignalR REST API Owner")
    auth = auth_for(emulator, emulator_url, owner, mode="service")
    async with auth as signalr:
        first = await signalr.negotiate("chat", user_id=USER)
        second = await signalr.negotiate("chat", user_id=USER)
        found = points(reader)
    endpoint = auth.endpoint.endpoint
    assert first["accessToken"] == second["accessToken"]
    issued = [
        s
        for s in spans(exporter, "signalr.service_token")
        if (s.attributes or {})["signalr.hub"] == "chat"
    ]
    assert len(issued) == 1
    assert issued[0].attributes == {"signalr.endpoint": endpoint, "signalr.hub": "chat"}

    def lookups(result: str, points: dict[str, list[dict[str, Any]]]) -> float:
        return value(points, "signalr.service_token.cache", **{"signalr.cache": result})

    assert lookups("hit", found) - lookups("hit", before) == 1
    assert lookups("miss", found) - lookups("miss", before) == 1
    assert_no_secret(everything_recorded(exporter, reader), USER, first["accessToken"])


async def test_server_connection_lifecycle(
    emulator_url: str,
    app_service_env: dict[str, str],
    default_emulator: Emulator,
    telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, reader = telemetry
    emulator = default_emulator
    principal = principal_with_role(emulator)
    hub = EchoHub("chat")
    auth = auth_for(emulator, emulator_url, principal, hubs=[hub], server_connection_count=2)
    endpoint = auth.endpoint.endpoint
    up = {"signalr.endpoint": endpoint, "signalr.hub": "chat"}
    async with auth:
        await wait_until(lambda: len(emulator.server_connections) == 2)
        await wait_until(lambda: value(points(reader), "signalr.server_connections.up", **up) == 2)
        emulator.drop_server_connections()
        await wait_until(lambda: len(spans(exporter, "signalr.server_connection.reconnect")) == 2)
        await wait_until(lambda: value(points(reader), "signalr.server_connections.up", **up) == 2)
    assert value(points(reader), "signalr.server_connections.up", **up) == 0
    for name in ("connect", "handshake", "reconnect", "stop"):
        recorded = spans(exporter, f"signalr.server_connection.{name}")
        assert len(recorded) == (4 if name == "handshake" else 2), name
        assert all(
            span.attributes is not None and span.attributes.items() >= up.items()
            for span in recorded
        )
        assert all(span.status.status_code is StatusCode.UNSET for span in recorded), name
    stopped = spans(exporter, "signalr.server_connection.stop")
    assert {(span.attributes or {}).get("signalr.finack") for span in stopped} == {True}
    assert_no_secret(everything_recorded(exporter, reader), principal.object_id)


@pytest.fixture
def default_emulator(emulator: Emulator) -> Emulator:
    emulator.service_mode = "default"
    return emulator


def test_without_opentelemetry_every_function_is_a_no_op() -> None:
    script = """
import sys
sys.modules["opentelemetry"] = None  # what an environment without the otel extra looks like
from signalr_asgi_auth import _telemetry as t
assert t.ENABLED is False
first = t.span("x", {"a": 1})
assert first is t.span("y", {}), "one shared no-op context, no allocation per call"
with first as span:
    span.set_attribute("k", "v")
t.count_negotiation("chat", "ok")
t.count_refresh_failure("access_key", ValueError(), {})
t.count_service_token_lookup("e", hit=True)
t.server_connection_up("e", "h")
t.server_connection_down("e", "h")
t.watch_key_age(object())
import signalr_asgi_auth
print("ok", "opentelemetry" in sys.modules and sys.modules["opentelemetry"] is not None)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "False"]


def test_with_opentelemetry_the_module_is_enabled() -> None:
    from signalr_asgi_auth import _telemetry

    assert _telemetry.ENABLED is True
