"""Several SignalR resources behind one app: their configuration, keepers, health probes and routing."""

from ._config import (
    Endpoint,
    EndpointConfig,
    EndpointType,
    endpoints_from_environment,
    parse_endpoint_key,
)
from ._routers import DefaultRouter, EndpointInfo, EndpointRouter, RouteRequest, StickyByUserRouter
from ._set import EndpointRuntime, EndpointSet

__all__ = [
    "DefaultRouter",
    "Endpoint",
    "EndpointConfig",
    "EndpointInfo",
    "EndpointRouter",
    "EndpointRuntime",
    "EndpointSet",
    "EndpointType",
    "RouteRequest",
    "StickyByUserRouter",
    "endpoints_from_environment",
    "parse_endpoint_key",
]
