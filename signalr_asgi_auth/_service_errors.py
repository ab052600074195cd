"""How an unsuccessful exchange with SignalR Service becomes one of our exceptions.

Shared by everything that calls the service (the access-key keeper, the REST client): the message
says what went wrong and what to change, a 403 names the roles that grant the refused action, and no
token or key ever appears in it.
"""

from __future__ import annotations

import math

import httpx2

from ._call_deadline import DeadlineExceeded
from ._credentials import read_principal, scrub
from ._endpoint import ServiceEndpoint
from ._errors import AuthenticationFailedError, PermissionDeniedError, ServiceError
from ._rbac import roles_granting

__all__ = ["service_error", "transport_error"]


def service_error(
    response: httpx2.Response,
    *,
    endpoint: ServiceEndpoint,
    doing: str,
    action: str,
    token: str | None,
    access_key: bool = False,
) -> ServiceError:
    """The exception for an error answer from SignalR Service, with what to do about it.

    ``token`` is the bearer sent (only scrubbed from the reply and read for the principal's ids);
    ``access_key`` says it was a JWT signed with the connection string's key, not an Entra token.
    """
    status = response.status_code
    detail = _reply_detail(response, token)
    where = f"SignalR Service at {endpoint.endpoint}"
    if status == 401 and access_key:
        msg = (
            f"{where} rejected the token signed with the access key while trying to {doing} "
            f"(401 Unauthorized){detail}. Check that the connection string's AccessKey is a "
            "current key of this resource (keys change when they are regenerated) and that this "
            "machine's clock is right."
        )
        return AuthenticationFailedError(msg, status=status)
    if status == 401:
        msg = (
            f"{where} rejected the Microsoft Entra token while trying to {doing} (401 Unauthorized)"
            f"{detail}. The token must be for the scope https://signalr.azure.com/.default and "
            "from the tenant of the SignalR resource; in sovereign clouds set the credential's "
            "authority host."
        )
        return AuthenticationFailedError(msg, status=status)
    if status == 403:
        principal = read_principal(token) if token else None
        return PermissionDeniedError(
            action=action,
            roles=[role.name for role in roles_granting(action)],
            principal_id=principal.object_id if principal else None,
            app_id=principal.app_id if principal else None,
            resource=endpoint.endpoint,
            doing=doing,
            resource_name=endpoint.resource_name,
        )
    retry_after = _retry_after(response)
    if status == 404:
        msg = (
            f"{where} has no API at {response.request.url.path} (404 Not Found) while trying to "
            f"{doing}{detail}. Check that the endpoint is the SignalR resource's own URL."
        )
    elif status == 429:
        msg = f"{where} is throttling requests to {doing} (429 Too Many Requests){detail}."
    else:
        phrase = response.reason_phrase or "error"
        msg = f"{where} answered {status} {phrase} while trying to {doing}{detail}."
    return ServiceError(msg, status=status, retry_after=retry_after)


def _reply_detail(response: httpx2.Response, token: str | None) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        return ""
    return f": {scrub(message, token).strip().rstrip('.')}"  # the sentence ends after it


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def transport_error(exc: Exception, *, endpoint: ServiceEndpoint, doing: str) -> ServiceError:
    """The exception for a request that got no answer: timeout, refused connection, broken reply."""
    where = f"SignalR Service at {endpoint.server_endpoint}"
    if isinstance(exc, DeadlineExceeded):
        msg = f"{where} did not answer within {exc.seconds:g} s while trying to {doing}."
    elif isinstance(exc, httpx2.TimeoutException):
        msg = f"{where} did not answer in time while trying to {doing} ({type(exc).__name__})."
    else:
        msg = f"Could not reach {where} to {doing} ({type(exc).__name__}): {scrub(str(exc))}"
    return ServiceError(msg)
