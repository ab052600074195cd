"""Verifying upstream requests from Azure SignalR Service (serverless mode), and answering them.

A request is accepted when either credential checks out:

- ``Authorization: Bearer <token>`` (upstream ``Auth`` type ``ManagedIdentity``): a Microsoft Entra
  access token, RS256 only, signed by a key of the tenant's JWKS (found through its OpenID
  metadata), for the configured audience, from the configured issuer, within its lifetime;
- ``X-ASRS-Signature: sha256=<hex>[,sha256=<hex>]``: the HMAC-SHA256 of ``X-ASRS-Connection-Id``
  keyed with one of the resource's access keys (the service signs with each of its keys).

Checks run in this order: headers (400 when malformed), credentials (401), body (400; 413 over
``max_body_size``, 408 when it takes longer than ``body_timeout`` to arrive). Neither credential
covers the body or the headers other than the connection id: they prove who sent the request, and
TLS keeps it intact. So a captured request could be replayed with any body; the body is read as a
stream that stops at the limit, never whole first.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NoReturn, TypeAlias

import anyio
import httpx2
import jwt
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._durations import to_seconds
from ._endpoint import normalize_url
from ._errors import (
    ConfigurationError,
    InvalidInputError,
    ProtocolError,
    ServiceError,
    SignalRAuthError,
    short,
    shown,
)
from ._oidc_keys import OpenIDKeys, TenantKeys, check_fetch_url
from ._repeated_warnings import RepeatedWarnings
from ._secrets import Secret
from ._upstream_request import (
    AuthMethod,
    HubProtocolName,
    UpstreamRequest,
    read_body,
    read_head,
)
from .protocol._hub_messages import Completion
from .protocol._msgpack_hub import write_msgpack_message

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "PUBLIC_AUTHORITY",
    "HubMethodError",
    "UpstreamAuthenticationError",
    "UpstreamBodyError",
    "UpstreamHandler",
    "UpstreamVerifier",
    "error_completion",
    "upstream_endpoint",
    "upstream_error_response",
    "upstream_response",
    "verified_upstream",
]

logger = logging.getLogger("signalr_asgi_auth")

PUBLIC_AUTHORITY: Final = "https://login.microsoftonline.com"
"""Microsoft Entra ID in the global Azure cloud."""

DEFAULT_MAX_BODY_SIZE: Final = 1024 * 1024
"""1 MiB: what SignalR Service itself takes in one message (its REST API's body limit); an
upstream body is one client message."""

_PUBLIC_V1_ISSUER: Final = "https://sts.windows.net/{tenant}/"
_MULTI_TENANT: Final = frozenset({"common", "organizations", "consumers"})
_KEYS_MAX_AGE: Final = 24 * 3600.0
_MAX_SIGNATURES: Final = 32
_COMPLETION: Final = 3
_RETRY_AFTER: Final = "5"

UpstreamHandler: TypeAlias = Callable[[UpstreamRequest], Awaitable[object] | object]
"""What :func:`upstream_endpoint` calls: sync or async, returning the invocation's result."""


class UpstreamAuthenticationError(SignalRAuthError):
    """Raised when an upstream request carries no credential the verifier accepts; answered 401.

    ``reasons`` holds one reason per credential tried; no token or key is ever quoted.
    """

    def __init__(self, reasons: Sequence[str], *, token_presented: bool) -> None:
        self.reasons = tuple(reasons)
        self.token_presented = token_presented
        super().__init__("The upstream request is not authenticated: " + "; ".join(reasons) + ".")


class UpstreamBodyError(InvalidInputError):
    """Raised when an upstream body is larger than ``max_body_size`` (``status`` 413) or does
    not arrive within ``body_timeout`` (408)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class HubMethodError(Exception):
    """Raise this from a hub method (``@hub.on``) or an upstream handler to fail the client's
    invocation with this message; from ``on_connected`` to close the client with it.

    Any other exception reaches the client without its details: a generic completion error from a
    hub method, a 500 answer (which the service reports generically) from an upstream handler.
    """


class _Refused(Exception):
    """One credential's refusal, gathered into :class:`UpstreamAuthenticationError`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UpstreamVerifier:
    """Checks that upstream requests come from your SignalR resource, and reads them.

    Entra tokens (upstream ``Auth`` type ``ManagedIdentity``): ``audience`` is the ``Resource`` of
    the upstream setting (your app registration's client id or Application ID URI; several are
    allowed). ``tenant_id`` says whose tokens to trust, with ``authority`` for another cloud or a
    local emulator; or give the exact ``issuer``. Since any identity in the tenant can get a token
    for ``audience``, ``allowed_object_ids`` (the SignalR resource's managed identity) narrows it.

    Signatures: ``access_keys`` are the resource's access keys, primary and secondary.

    Give either or both: a request passing either check is accepted. Nothing is fetched at
    construction; the tenant's keys are fetched on first use and cached, and an unknown ``kid``
    fetches them again at most once per ``refetch_interval``. ``http_client`` (optional) is used
    for those fetches and never closed here; ``clock`` returns epoch seconds.

    The body of an authenticated request is read up to ``max_body_size`` bytes (1 MiB) and for at
    most ``body_timeout`` seconds; beyond either the request is refused (413, 408).
    """

    def __init__(
        self,
        *,
        audience: str | Sequence[str] | None = None,
        tenant_id: str | None = None,
        authority: str | None = None,
        issuer: str | None = None,
        allowed_object_ids: Sequence[str] | None = None,
        access_keys: str | Secret | Sequence[str | Secret] = (),
        http_client: httpx2.AsyncClient | None = None,
        refetch_interval: float | timedelta = 60.0,
        leeway: float | timedelta = 60.0,
        timeout: float | timedelta = 10.0,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        body_timeout: float | timedelta = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._max_body_size = _body_size(max_body_size)
        self._body_timeout = to_seconds(body_timeout, name="body_timeout")
        # Unauthenticated callers choose how often (and with which reason) they are refused.
        self._refusals = RepeatedWarnings(logger, "Refused an upstream request")
        self._outages = RepeatedWarnings(logger, "Could not verify an upstream request")
        self._access_keys = _access_keys(access_keys)
        self._audiences = _audiences(audience)
        self._object_ids = _object_ids(allowed_object_ids)
        self._leeway = to_seconds(leeway, name="leeway", allow_zero=True, maximum=600)
        self._tenant_id: str | None = None
        self._issuers: frozenset[str] = frozenset()
        self._keys: OpenIDKeys | None = None
        wants_entra = any(v is not None for v in (tenant_id, authority, issuer, allowed_object_ids))
        if wants_entra and not self._audiences:
            msg = (
                "audience is required to verify Entra tokens: set it to the Resource of the "
                "upstream setting's managed-identity auth (the app's client id or Application ID URI)."
            )
            raise ConfigurationError(msg)
        if not self._audiences and not self._access_keys:
            msg = (
                "UpstreamVerifier needs a way to check requests: audience with tenant_id or "
                "issuer (Entra tokens), and/or access_keys (X-ASRS-Signature)."
            )
            raise ConfigurationError(msg)
        if self._audiences:
            self._keys = OpenIDKeys(
                metadata_url=self._trust(tenant_id, authority, issuer),
                http_client=http_client,
                timeout=to_seconds(timeout, name="timeout"),
                refetch_interval=to_seconds(refetch_interval, name="refetch_interval"),
                max_age=_KEYS_MAX_AGE,
                clock=clock,
            )

    def _trust(self, tenant_id: str | None, authority: str | None, issuer: str | None) -> str:
        """Sets the accepted issuers (and tenant); returns the OpenID metadata URL."""
        if tenant_id is not None and issuer is None:
            return self._trust_tenant(tenant_id, authority)
        if issuer is not None and tenant_id is None and authority is None:
            return self._trust_issuer(issuer)
        msg = (
            "Give tenant_id (with authority for another cloud or an emulator) or issuer to verify "
            "Entra tokens: one of them, and authority only with tenant_id."
        )
        raise ConfigurationError(msg)

    def _trust_tenant(self, tenant_id: str, authority: str | None) -> str:
        tenant = self._tenant_id = _tenant(tenant_id)
        base = check_fetch_url(
            normalize_url(authority or PUBLIC_AUTHORITY, key="authority"), what="authority"
        )
        # v2 tokens name the authority. v1 tokens (what the service's managed identity gets) name
        # the issuer of the tenant's v1 metadata, accepted too once fetched from the authority.
        issuers = {f"{base}/{tenant}/v2.0"}
        if base == PUBLIC_AUTHORITY:
            issuers.add(_PUBLIC_V1_ISSUER.format(tenant=tenant))
        self._issuers = frozenset(issuers)
        return f"{base}/{tenant}/.well-known/openid-configuration"

    def _trust_issuer(self, issuer: str) -> str:
        if not isinstance(issuer, str) or not issuer.strip():
            msg = (
                "issuer must be the tokens' exact 'iss', e.g. https://sts.windows.net/<tenant-id>/."
            )
            raise ConfigurationError(msg)
        base = check_fetch_url(normalize_url(issuer, key="issuer"), what="issuer")
        self._issuers = frozenset({issuer.strip()})
        return f"{base}/.well-known/openid-configuration"

    async def verify(self, request: Request) -> UpstreamRequest:
        """The verified, parsed upstream request.

        Raises :class:`InvalidInputError` for malformed headers or body (answer 400),
        :class:`UpstreamAuthenticationError` when no credential is accepted (401) and
        :class:`ServiceError` when the tenant's keys cannot be fetched (503);
        :func:`upstream_error_response` gives those answers. In FastAPI::

            @app.post("/upstream/{event}")
            async def upstream(request: Request) -> Response:
                try:
                    call = await verifier.verify(request)
                except SignalRAuthError as exc:
                    return upstream_error_response(exc)
                if call.event == "add":
                    return upstream_response(call, sum(call.arguments))
                return upstream_response(call, None)
        """
        head = read_head(request.headers)
        try:
            method, principal_id = await self._authenticate(request.headers, head.connection_id)
        except UpstreamAuthenticationError as exc:
            self._refusals.warn(str(exc), key=UpstreamAuthenticationError)
            raise
        except ServiceError as exc:
            self._outages.warn(str(exc))
            raise
        body = read_body(await self._read_body(request), request.headers, head)
        return UpstreamRequest(
            hub=head.hub,
            category=head.category,
            event=head.event,
            connection_id=head.connection_id,
            user_id=head.user_id,
            claims=head.claims,
            query=head.query,
            arguments=body.arguments,
            invocation_id=body.invocation_id,
            error=body.error,
            authenticated_by=method,
            principal_id=principal_id,
            protocol=body.protocol,
        )

    async def _read_body(self, request: Request) -> bytes:
        """The body, read as it arrives and given up on at ``max_body_size`` bytes or after
        ``body_timeout`` seconds: a signature admits any body, of any size, at any pace."""
        limit = self._max_body_size
        too_large = UpstreamBodyError(
            f"The upstream request's body is larger than {limit} bytes (max_body_size).",
            status=413,
        )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        # aclosing: a stream left at the limit is closed now, not whenever it is collected.
        with anyio.move_on_after(self._body_timeout) as reading:
            async with aclosing(request.stream()) as stream:
                async for chunk in stream:
                    size += len(chunk)
                    if size > limit:
                        raise too_large
                    chunks.append(chunk)
        if reading.cancelled_caught:
            msg = (
                f"The upstream request's body did not arrive within {self._body_timeout:g} s "
                "(body_timeout)."
            )
            raise UpstreamBodyError(msg, status=408)
        return b"".join(chunks)

    async def _authenticate(
        self, headers: Headers, connection_id: str
    ) -> tuple[AuthMethod, str | None]:
        reasons: list[str] = []
        unavailable: ServiceError | None = None
        authorization = headers.get("authorization")
        signatures = headers.getlist("x-asrs-signature")
        if authorization is not None:
            try:
                return "entra", await self._check_bearer(authorization)
            except _Refused as refusal:
                reasons.append(refusal.reason)
            except ServiceError as exc:  # the keys are out of reach: a signature may still do
                unavailable = exc
        if signatures:
            if self._signature_matches(signatures, connection_id):
                return "signature", None
            reasons.append(self._signature_refusal())
        if unavailable is not None:
            raise unavailable
        if authorization is None and not signatures:
            wanted = ["an 'Authorization: Bearer' Entra token"] if self._keys else []
            wanted += ["an X-ASRS-Signature header"] if self._access_keys else []
            reasons.append(f"no credentials: expected {' or '.join(wanted)}")
        raise UpstreamAuthenticationError(reasons, token_presented=authorization is not None)

    # -- X-ASRS-Signature -----------------------------------------------------------------------

    def _signature_matches(self, values: list[str], connection_id: str) -> bool:
        presented = _presented_signatures(values)
        # The header's wire bytes: what the service hashed (the UTF-8 of the connection id).
        message = connection_id.encode("latin-1")
        matched = False
        for key in self._access_keys:
            digest = hmac.new(key.reveal().encode(), message, hashlib.sha256).hexdigest().encode()
            for candidate in presented:
                # every pair is compared: the time taken says nothing about which one matched
                matched |= hmac.compare_digest(digest, candidate)
        return matched

    def _signature_refusal(self) -> str:
        if not self._access_keys:
            return "X-ASRS-Signature cannot be checked: this verifier has no access_keys"
        return (
            "X-ASRS-Signature holds no HMAC-SHA256 of X-ASRS-Connection-Id made with a configured "
            "access key (were the keys regenerated?)"
        )

    # -- Entra bearer tokens --------------------------------------------------------------------

    async def _check_bearer(self, authorization: str) -> str | None:
        """The token's ``oid``, once the token is verified; :class:`_Refused` says why not."""
        if self._keys is None:
            _refuse("a bearer token was sent, but without an audience this verifier takes none")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            _refuse("the Authorization header is not 'Bearer <token>'")
        claims, keys = await self._signed_claims(token.strip(), self._keys)
        self._check_times(claims)
        self._check_identity(claims, keys)
        oid = claims.get("oid")
        return oid if isinstance(oid, str) else None

    async def _signed_claims(
        self, token: str, tenant_keys: OpenIDKeys
    ) -> tuple[dict[str, Any], TenantKeys]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            _refuse("the bearer token is not a well-formed JWT")
        algorithm = header.get("alg")
        if algorithm != "RS256":
            _refuse(f"the bearer token's algorithm is {shown(algorithm)}; only RS256 is accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            _refuse("the bearer token has no 'kid' header naming its signing key")
        key, keys = await tenant_keys.find(kid)
        if key is None:
            _refuse(
                f"the bearer token's signing key (kid {shown(kid)}) is not one of the tenant's "
                f"keys at {keys.jwks_uri}"
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                # The claims are checked afterwards, against the injected clock.
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError:
            _refuse("the bearer token's signature does not verify with the tenant's key")
        except jwt.InvalidTokenError as exc:
            _refuse(f"the bearer token cannot be read ({type(exc).__name__})")
        return claims, keys

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            _refuse("the bearer token has no numeric 'exp' claim")
        if not now <= expires + self._leeway:
            _refuse(f"the bearer token expired at {_utc(expires)}")
        not_before = claims.get("nbf", -math.inf)
        if not isinstance(not_before, int | float) or isinstance(not_before, bool):
            _refuse("the bearer token's 'nbf' claim is not a number")
        if now + self._leeway < not_before:
            _refuse(f"the bearer token is not valid before {_utc(not_before)}")

    def _check_identity(self, claims: dict[str, Any], keys: TenantKeys) -> None:
        audience = claims.get("aud")
        granted = [audience] if isinstance(audience, str) else audience
        if not isinstance(granted, list) or not any(
            isinstance(aud, str) and aud in self._audiences for aud in granted
        ):
            _refuse(
                f"the bearer token's audience {shown(audience)} is not the configured audience "
                f"({', '.join(sorted(self._audiences))})"
            )
        issuer = claims.get("iss")
        accepted = self._issuers | ({keys.issuer} if self._tenant_id else set())
        if not isinstance(issuer, str) or issuer not in accepted:
            _refuse(
                f"the bearer token's issuer {shown(issuer)} is not the configured issuer "
                f"({', '.join(sorted(accepted))})"
            )
        tenant = claims.get("tid")
        if self._tenant_id and (not isinstance(tenant, str) or tenant.lower() != self._tenant_id):
            _refuse(f"the bearer token is for tenant {shown(tenant)}, not {self._tenant_id}")
        oid = claims.get("oid")
        if self._object_ids and (not isinstance(oid, str) or oid.lower() not in self._object_ids):
            _refuse(f"the bearer token's object id {shown(oid)} is not in allowed_object_ids")

    def __repr__(self) -> str:
        entra = ""
        if self._keys is not None:
            entra = f"audience={sorted(self._audiences)!r}, issuer={sorted(self._issuers)!r}, "
        return f"UpstreamVerifier({entra}access_keys={len(self._access_keys)})"


def _refuse(reason: str) -> NoReturn:
    raise _Refused(reason)


def _presented_signatures(values: list[str]) -> list[bytes]:
    presented: list[bytes] = []
    for item in ",".join(values).split(","):
        algorithm, separator, digest = item.strip().partition("=")
        if separator and algorithm.strip().lower() == "sha256":
            # the service writes upper-case hex; compare without regard to case
            presented.append(digest.strip().lower().encode("latin-1", "replace"))
    return presented[:_MAX_SIGNATURES]


def _utc(seconds: float) -> str:
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return shown(seconds)
    return moment.isoformat().replace("+00:00", "Z")


# -- configuration ------------------------------------------------------------------------------


def _body_size(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    msg = f"max_body_size must be a positive number of bytes, got {shown(value)}."
    raise ConfigurationError(msg)


def _access_keys(value: object) -> tuple[Secret, ...]:
    items = [value] if isinstance(value, str | Secret) else value
    if not isinstance(items, Sequence):
        msg = "access_keys must be a list of the resource's access keys (str or Secret)."
        raise ConfigurationError(msg)
    keys = []
    for item in items:
        key = item.reveal() if isinstance(item, Secret) else item
        if not isinstance(key, str) or not key.strip():
            msg = "access_keys must hold non-empty strings (or Secret); one is empty or not text."
            raise ConfigurationError(msg)
        keys.append(Secret(key.strip()))
    return tuple(keys)


def _audiences(value: object) -> frozenset[str]:
    if value is None:
        return frozenset()
    items = [value] if isinstance(value, str) else value
    if isinstance(items, Sequence) and items and all(_is_text(item) for item in items):
        return frozenset(item.strip() for item in items)
    msg = "audience must be the app's client id or Application ID URI (or a list of them)."
    raise ConfigurationError(msg)


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _object_ids(value: object) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str) or not isinstance(value, Sequence):
        msg = "allowed_object_ids must be a list of object ids (GUIDs), not a single string."
        raise ConfigurationError(msg)
    return frozenset(_guid(item, name="allowed_object_ids") for item in value)


def _tenant(value: object) -> str:
    if isinstance(value, str) and value.strip().lower() in _MULTI_TENANT:
        msg = (
            f"tenant_id must be one tenant's id, not {value.strip()!r}: upstream tokens come from "
            "the tenant of the SignalR resource's managed identity."
        )
        raise ConfigurationError(msg)
    return _guid(value, name="tenant_id")


def _guid(value: object, *, name: str) -> str:
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value.strip()))
        except ValueError:
            pass
    msg = f"{name} takes directory GUIDs (e.g. 72f988bf-86f1-41af-91ab-2d7cd011db47), got {shown(value)}."
    raise ConfigurationError(msg)


# -- answers ------------------------------------------------------------------------------------


def upstream_error_response(exc: SignalRAuthError) -> JSONResponse:
    """The answer for an error from :meth:`UpstreamVerifier.verify`: 401 with
    ``WWW-Authenticate: Bearer`` for refused credentials, 400 for malformed requests (413 for a
    body over ``max_body_size``, 408 for one slower than ``body_timeout``), 503 with
    ``Retry-After`` when the tenant's keys are out of reach. The body is ``{"code", "error"}``."""
    headers: dict[str, str] = {}
    if isinstance(exc, UpstreamAuthenticationError):
        status, code = 401, "unauthorized"
        refused_token = exc.token_presented
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"' if refused_token else "Bearer"
    elif isinstance(exc, UpstreamBodyError):
        status = exc.status
        code = "payload_too_large" if status == 413 else "request_timeout"
    elif isinstance(exc, InvalidInputError):
        status, code = 400, "invalid_request"
    else:
        status, code = 503, "service_error" if isinstance(exc, ServiceError) else "unavailable"
        wait = exc.retry_after if isinstance(exc, ServiceError) else None
        headers["Retry-After"] = str(math.ceil(wait)) if wait else _RETRY_AFTER
    return JSONResponse({"code": code, "error": str(exc)}, status_code=status, headers=headers)


def upstream_response(call: UpstreamRequest, result: object) -> Response:
    """The answer to the service once ``call`` is handled.

    When the client awaits a result (``invocation_id`` is set), a hub-protocol completion message
    carrying ``result`` in the client's protocol (``call.protocol``), which the service relays to
    the client as it is: JSON with its record separator, or for a MessagePack client the
    size-prefixed MessagePack completion (``application/x-msgpack``). A :class:`Response` passes
    through untouched. Otherwise ``None`` gives 204, anything else a JSON body (the service
    ignores it).
    """
    if isinstance(result, Response):
        return result
    if call.invocation_id is not None:
        return _completion(call.invocation_id, call.protocol, result=result)
    if result is None:
        return Response(status_code=204)
    return JSONResponse(result)


_NOT_JSON = "The server's result could not be written as JSON."
_NOT_MESSAGEPACK = "The server's result could not be written as MessagePack."
_MESSAGEPACK_MEDIA_TYPE: Final = "application/x-msgpack"


def _completion(invocation_id: str, protocol: HubProtocolName, **outcome: object) -> Response:
    if protocol == "messagepack":
        return _messagepack_completion(invocation_id, **outcome)
    message = {"type": _COMPLETION, "invocationId": invocation_id, **outcome}
    try:
        text = json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):  # NaN, inf or an object JSON cannot hold: the handler's bug
        logger.warning("The upstream handler's result for %s is not JSON", short(invocation_id))
        error = {"type": _COMPLETION, "invocationId": invocation_id, "error": _NOT_JSON}
        text = json.dumps(error, separators=(",", ":"))
    return Response(text + "\x1e", media_type="application/json")


def _messagepack_completion(invocation_id: str, **outcome: object) -> Response:
    if "error" in outcome:
        message = Completion.with_error(invocation_id, str(outcome["error"]))
    else:
        message = Completion.with_result(invocation_id, outcome.get("result"))
    try:
        body = write_msgpack_message(message)
    except ProtocolError:  # an object MessagePack cannot hold: the handler's bug
        logger.warning(
            "The upstream handler's result for %s is not MessagePack", short(invocation_id)
        )
        body = write_msgpack_message(Completion.with_error(invocation_id, _NOT_MESSAGEPACK))
    return Response(body, media_type=_MESSAGEPACK_MEDIA_TYPE)


def error_completion(
    invocation_id: str, error: str, *, protocol: HubProtocolName = "json"
) -> Response:
    """The answer that fails the client's invocation with ``error``, in the client's ``protocol``."""
    return _completion(invocation_id, protocol, error=error)


async def verified_upstream(
    request: Request, verifier: UpstreamVerifier
) -> UpstreamRequest | Response:
    """The verified request, or the answer refusing it (405 for another method than POST, then
    as :func:`upstream_error_response`)."""
    if request.method != "POST":
        body = {"code": "method_not_allowed", "error": "Upstream requests are POSTs."}
        return JSONResponse(body, status_code=405, headers={"Allow": "POST"})
    try:
        return await verifier.verify(request)
    except SignalRAuthError as exc:
        return upstream_error_response(exc)


def upstream_endpoint(
    verifier: UpstreamVerifier, handler: UpstreamHandler
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint for upstream calls: ``Route("/upstream/{event}", endpoint,
    methods=["POST"])``, or in FastAPI ``app.add_route("/upstream/{event}", endpoint,
    methods=["POST"])``.

    It verifies and reads the request, calls ``handler(call)`` (sync or async) with the
    :class:`UpstreamRequest` and answers with :func:`upstream_response`. Refused credentials get
    401, malformed requests 400, unreachable tenant keys 503. A :class:`HubMethodError` from the
    handler fails the client's invocation with its message.
    """

    async def endpoint(request: Request) -> Response:
        call = await verified_upstream(request, verifier)
        if isinstance(call, Response):
            return call
        try:
            result = handler(call)
            if inspect.isawaitable(result):
                result = await result
        except HubMethodError as exc:
            if call.invocation_id is None:
                return Response(status_code=204)
            return _completion(call.invocation_id, call.protocol, error=str(exc))
        return upstream_response(call, result)

    return endpoint
