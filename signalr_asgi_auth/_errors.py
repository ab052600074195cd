"""The exceptions this library raises, as one tree.

    SignalRAuthError
    ├── ConfigurationError (also a ValueError)     a setting is wrong: fix the code or the environment
    │   └── ConnectionStringError                  a connection string is malformed or incomplete
    ├── InvalidInputError (also a ValueError)      a negotiate argument is wrong: hub, user id, claims, lifetime
    │   ├── TokenTooLongError                      the client token would exceed the service's 4 KB limit
    │   └── UpstreamBodyError                      an upstream body over max_body_size (413) or too slow (408)
    ├── NotReadyError                              no usable signing key (yet); the keepers keep trying
    │   └── NoUsableEndpointError                  of several endpoints, none is usable now (reasons per endpoint)
    ├── ProtocolError (also a ValueError)          bytes on a Default-mode wire that cannot be read
    │   └── MessageTooLargeError                   a message over a reader's limit (in ``protocol``)
    ├── UpstreamAuthenticationError                an upstream request carries no credential we accept (401)
    └── ServiceError                               Microsoft Entra ID or SignalR Service answered badly
        ├── AuthenticationFailedError              no valid Entra token: 401, or the credential failed
        │   └── EntraTokenError                    the credential could not get a token
        ├── PermissionDeniedError                  403: the identity lacks a role on the resource
        └── PartialSendError                       a send to several users or groups failed for some

Messages say what to do. None of them ever holds a token, a key or a client secret. The two
upstream errors live with the verifier in ``_upstream.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._rbac import SCOPE_LEVELS

__all__ = [
    "AuthenticationFailedError",
    "ConfigurationError",
    "ConnectionStringError",
    "EndpointDeliveryError",
    "EntraTokenError",
    "InvalidInputError",
    "NoUsableEndpointError",
    "NotReadyError",
    "PartialSendError",
    "PermissionDeniedError",
    "ProtocolError",
    "ServiceError",
    "SignalRAuthError",
    "TokenTooLongError",
    "printable",
    "short",
    "shown",
]


def shown(value: object, limit: int = 80) -> str:
    """``value``'s repr for a message, cut at ``limit`` characters. Any object may come from a
    caller and a repr may fail (a huge int's raises ValueError): then its type is named instead."""
    try:
        text = repr(value)
    except Exception:
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def printable(text: str) -> str:
    """``text`` with each character a terminal or a log reader would act on (control and format
    characters, line and paragraph separators) written as its escape: ``\\n``, ``\\x1b``,
    ``\\u202e``. For text from outside (a name, a service's answer) printed among our own lines,
    which it must not be able to end, recolour or imitate."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def short(text: str, limit: int = 64) -> str:
    """What a client wrote (a method or protocol name, a header key), fit for a log line and for
    a message echoed back: cut at ``limit`` characters, and every character that is not printable
    (newlines, ANSI escapes, bidirectional overrides, line separators) written as its escape, so
    that a name cannot start a forged log line or repaint a terminal."""
    shown_part = printable(text[:limit])
    if len(shown_part) < len(text) or len(shown_part) > limit:
        return shown_part[: limit - 1] + "…"
    return shown_part


class SignalRAuthError(Exception):
    """The base of every exception this library raises on purpose."""


class ConfigurationError(SignalRAuthError, ValueError):
    """Raised when a setting is missing or invalid: an option, the endpoint, the credential."""


class ConnectionStringError(ConfigurationError):
    """Raised when a connection string is malformed, incomplete or contradictory.

    The message names the key to fix and never repeats a secret value.
    """


class InvalidInputError(SignalRAuthError, ValueError):
    """Raised when a negotiate or token argument is invalid; the negotiate endpoint answers 400."""


class TokenTooLongError(InvalidInputError):
    """Raised when a client token would be longer than the 4096 characters the service accepts."""


class NotReadyError(SignalRAuthError):
    """Raised when no valid signing key is at hand: before the first one arrives or after the last
    one expired while refreshes failed. The negotiate endpoint answers 503 with ``Retry-After``.

    ``cause`` holds the last refresh error, if any, whose explanation the message repeats.
    """

    def __init__(self, message: str, *, retry_after: float, cause: Exception | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.cause = cause


class NoUsableEndpointError(NotReadyError):
    """Raised when, of several endpoints, none can take a negotiation now. ``reasons`` says why,
    per endpoint name; the negotiate endpoint answers 503 with them and ``Retry-After``."""

    def __init__(self, message: str, *, retry_after: float, reasons: Mapping[str, str]) -> None:
        super().__init__(message, retry_after=retry_after)
        self.reasons = dict(reasons)


class ProtocolError(SignalRAuthError, ValueError):
    """Raised when bytes of the service protocol or the SignalR hub protocol are malformed: a size
    prefix, a message array, a field of the wrong type, a JSON record. The message names what was
    wrong and where, never the payload itself (it may carry a user's data or a token)."""


class ServiceError(SignalRAuthError):
    """Raised when Microsoft Entra ID or SignalR Service answers with an error, too slowly, or with a
    reply that cannot be read. ``status`` is the HTTP status, when there was one."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class AuthenticationFailedError(ServiceError):
    """Raised when the service rejects the Entra token (401), typically a token for another cloud,
    tenant or audience."""


class EntraTokenError(AuthenticationFailedError):
    """Raised when the credential could not get a Microsoft Entra token (the managed-identity endpoint
    is unreachable, refuses, or the identity is not assigned to this host)."""


class PermissionDeniedError(ServiceError):
    """Raised when the service answers 403: the identity lacks a role that grants ``action``.

    Attributes name everything needed to fix it: ``roles`` (any one of them is enough), ``principal_id``
    (the Entra object id), ``app_id``, ``resource`` (the endpoint) and ``action``.
    """

    def __init__(
        self,
        *,
        action: str,
        roles: Sequence[str],
        principal_id: str | None,
        app_id: str | None,
        resource: str,
        doing: str,
        resource_name: str | None = None,
    ) -> None:
        self.action = action
        self.roles = tuple(roles)
        self.principal_id = principal_id
        self.app_id = app_id
        self.resource = resource
        super().__init__(
            _permission_message(
                action=action,
                roles=self.roles,
                principal_id=principal_id,
                app_id=app_id,
                resource=resource,
                doing=doing,
                resource_name=resource_name,
            ),
            status=403,
        )


class PartialSendError(ServiceError):
    """Raised when a send to several users or groups (one request each) failed for some of them.

    ``sent`` names the recipients the service accepted the message for; ``failed`` maps each other
    recipient to its error (a timeout may hide a delivery: that error says so). ``status`` is the
    first failure's. Sending again to ``failed`` alone reaches the rest.
    """

    def __init__(
        self,
        *,
        target: str,
        kind: str,
        hub: str,
        sent: Sequence[str],
        failed: Mapping[str, ServiceError],
    ) -> None:
        self.sent = tuple(sent)
        self.failed = dict(failed)
        first, error = next(iter(self.failed.items()))
        others = len(self.failed) - 1
        more = f" (and {others} more; see .failed)" if others else ""
        super().__init__(
            f"{target!r:.80} was sent to {len(self.sent)} of {len(self.sent) + len(self.failed)} "
            f"{kind} in hub {hub!r}. It failed for {first!r:.80}{more}: {error}",
            status=error.status,
            retry_after=error.retry_after,
        )


class EndpointDeliveryError(ServiceError):
    """Raised when a call made at several SignalR endpoints (the app has more than one) failed at
    some of them, after every endpoint was tried.

    ``sent`` names the endpoints that took the call (or answered, for an existence check);
    ``failed`` maps each other endpoint's name to its error. ``status`` and ``retry_after`` are the
    first failure's. The clients of the endpoints in ``sent`` got the message: sending again
    reaches them twice.
    """

    def __init__(
        self, *, doing: str, sent: Sequence[str], failed: Mapping[str, SignalRAuthError]
    ) -> None:
        self.sent = tuple(sent)
        self.failed = dict(failed)
        first, error = next(iter(self.failed.items()))
        others = len(self.failed) - 1
        more = f" (and {others} more endpoint(s); see .failed)" if others else ""
        took = ", ".join(map(repr, self.sent)) or "none"
        # A server connection's NotReadyError (Default mode) has no status: 503, as negotiate says.
        status = error.status if isinstance(error, ServiceError) else 503
        super().__init__(
            f"Could not {doing} at endpoint {first!r}{more}: {error} "
            f"Endpoints that took it: {took}.",
            status=status,
            retry_after=getattr(error, "retry_after", None),
        )


def _permission_message(
    *,
    action: str,
    roles: tuple[str, ...],
    principal_id: str | None,
    app_id: str | None,
    resource: str,
    doing: str,
    resource_name: str | None,
) -> str:
    if principal_id:
        who = f"principal (object id) {principal_id}"
        who += f", app id {app_id}" if app_id else ""
    else:
        who = "the identity (its object id could not be read from the token)"
    wanted = " or ".join(f"'{role}'" for role in roles)
    where = ", ".join(SCOPE_LEVELS[:-1]) + f" or {SCOPE_LEVELS[-1]}"
    scope = (
        "/subscriptions/<subscription-id>/resourceGroups/<resource-group>"
        f"/providers/Microsoft.SignalRService/SignalR/{resource_name or '<name>'}"
    )
    assignee = principal_id or "<principal-object-id>"
    first = roles[0] if roles else "SignalR Service Owner"
    return (
        f"SignalR Service at {resource} refused to {doing} (403 Forbidden) for {who}: it needs the data "
        f"action {action}. Assign the role {wanted} to this principal at the {where} scope of this "
        f"SignalR resource, e.g. az role assignment create --assignee-object-id {assignee} "
        f"--assignee-principal-type ServicePrincipal --role '{first}' --scope {scope}. "
        "Owner, Contributor and Reader grant no data-plane access. "
        "Role assignments can take up to 30 minutes to apply."
    )
