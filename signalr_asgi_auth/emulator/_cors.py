"""CORS for the client endpoint: browsers call ``/client/negotiate`` cross-origin, with credentials.

``@microsoft/signalr`` sends ``credentials: "include"`` by default, so ``*`` will not do: the
``Origin`` is reflected and credentials allowed (as Azure SignalR does when ``cors.allowedOrigins``
is ``*``, its default). Error responses carry the headers too, or the browser reports an opaque
"Failed to fetch" instead of the 401. WebSocket upgrades need no CORS.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["cors_headers", "preflight"]

_ALLOWED_METHODS = "GET, POST, OPTIONS"
_MAX_AGE = "600"


def cors_headers(request_headers: Headers) -> dict[str, str]:
    """The headers that let the requesting origin read the response; none without an Origin."""
    origin = request_headers.get("origin")
    if not origin:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def preflight(request: Request) -> Response:
    """The answer to an ``OPTIONS`` preflight: the methods, and whatever headers were asked for."""
    headers = {"Access-Control-Allow-Methods": _ALLOWED_METHODS, "Access-Control-Max-Age": _MAX_AGE}
    requested = request.headers.get("access-control-request-headers")
    if requested:
        headers["Access-Control-Allow-Headers"] = requested
    return Response(status_code=204, headers=headers)
