"""The ready-made health route over ``health()``, for a platform's health check (App Service's
health check path, a Kubernetes probe, a load balancer).

The HTTP status is the verdict (probes read nothing else): 200 while tokens can be issued (``ok``,
``degraded``), 503 while they cannot (``starting``, ``unavailable``, ``stopped``). The body is the
snapshot itself, which holds no secret, for the person reading it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._auth import SignalRAuth
from ._middleware import STATE_KEY

__all__ = ["health_endpoint"]

HEALTHY = frozenset({"ok", "degraded"})
"""The statuses answered with 200; any other (``starting``, ``unavailable``, ``stopped``, or one a
later version adds) is 503, so a probe never takes an unknown state for a healthy one."""

_HEADERS = {"Cache-Control": "no-store"}


def health_endpoint(auth: SignalRAuth | None = None) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint for ``Route("/healthz", health_endpoint())`` (FastAPI:
    ``app.add_route("/healthz", health_endpoint())``) that answers GET and HEAD with
    ``auth.health()`` as JSON: 200 for ``ok`` and ``degraded``, 503 for ``starting``,
    ``unavailable`` and ``stopped``, never cached.

    Without ``auth`` it reads the SignalR context that ``SignalRAuthMiddleware`` puts into the
    request; pass ``auth`` when the route sits outside the middleware (e.g. on the outer app).
    """
    if auth is not None and not isinstance(auth, SignalRAuth):
        msg = f"auth must be a SignalRAuth or None, not {type(auth).__name__}."
        raise TypeError(msg)

    # A function, not an ASGI app: Starlette's routes then answer only GET and HEAD (405 for the
    # rest), and FastAPI's add_route takes it as it is.
    async def health(request: Request) -> Response:
        report = _report(request, auth)
        status = 200 if report.get("status") in HEALTHY else 503
        return _JSON(report, status_code=status, headers=_HEADERS)

    return health


def _report(request: Request, auth: SignalRAuth | None) -> dict[str, object]:
    if auth is not None:
        return auth.health()
    state = request.scope.get("state")
    context = state.get(STATE_KEY) if isinstance(state, dict) else None
    if context is None:
        # A probe must get an answer, not a traceback: the route works only behind the
        # middleware (or with auth=...), and the body says so to whoever reads it.
        return {
            "status": "unavailable",
            "error": "No SignalR context on this request: add SignalRAuthMiddleware to the "
            "app, or pass auth= to health_endpoint().",
        }
    report: dict[str, object] = context.health()
    return report


class _JSON(JSONResponse):
    """Keys in the order ``health()`` wrote them (status first), any value JSON cannot hold as text."""

    def render(self, content: object) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str).encode()
