"""Azure SignalR Service for Starlette and FastAPI hub servers, with Microsoft Entra ID.

The app proves who it is with an azure-identity credential (managed identity first), gets the
service's temporary access key in the background, and signs client tokens locally.
"""

from ._auth import CONNECTION_STRING_VARIABLE, SignalRAuth
from ._client_tokens import ClaimValue
from ._clock import Clock, SystemClock
from ._context import SignalRContext
from ._errors import (
    AuthenticationFailedError,
    ConfigurationError,
    ConnectionStringError,
    EndpointDeliveryError,
    EntraTokenError,
    InvalidInputError,
    NotReadyError,
    NoUsableEndpointError,
    PartialSendError,
    PermissionDeniedError,
    ServiceError,
    SignalRAuthError,
    TokenTooLongError,
)
from ._health_route import health_endpoint
from ._middleware import SignalRAuthMiddleware
from ._negotiate import error_response, get_context, negotiate_endpoint, signalr_exception_handler
from ._options import DEFAULT_SCOPE
from ._rest import HubClient
from ._rest_fan_out import Delivery, EndpointsHubClient
from ._upstream import (
    HubMethodError,
    UpstreamAuthenticationError,
    UpstreamBodyError,
    UpstreamVerifier,
    upstream_endpoint,
    upstream_error_response,
    upstream_response,
)
from ._upstream_request import UpstreamRequest
from ._version import __version__
from .endpoints import (
    DefaultRouter,
    Endpoint,
    EndpointInfo,
    EndpointRouter,
    EndpointType,
    RouteRequest,
    StickyByUserRouter,
)
from .hubs import Hub, HubCall

__all__ = [
    "CONNECTION_STRING_VARIABLE",
    "DEFAULT_SCOPE",
    "AuthenticationFailedError",
    "ClaimValue",
    "Clock",
    "ConfigurationError",
    "ConnectionStringError",
    "DefaultRouter",
    "Delivery",
    "Endpoint",
    "EndpointDeliveryError",
    "EndpointInfo",
    "EndpointRouter",
    "EndpointType",
    "EndpointsHubClient",
    "EntraTokenError",
    "Hub",
    "HubCall",
    "HubClient",
    "HubMethodError",
    "InvalidInputError",
    "NoUsableEndpointError",
    "NotReadyError",
    "PartialSendError",
    "PermissionDeniedError",
    "RouteRequest",
    "ServiceError",
    "SignalRAuth",
    "SignalRAuthError",
    "SignalRAuthMiddleware",
    "SignalRContext",
    "StickyByUserRouter",
    "SystemClock",
    "TokenTooLongError",
    "UpstreamAuthenticationError",
    "UpstreamBodyError",
    "UpstreamRequest",
    "UpstreamVerifier",
    "__version__",
    "error_response",
    "get_context",
    "health_endpoint",
    "negotiate_endpoint",
    "signalr_exception_handler",
    "upstream_endpoint",
    "upstream_error_response",
    "upstream_response",
]
