"""Checking client access tokens as Azure SignalR Service does: the HMAC signature over a key that is
still valid, the audience of the hub being connected to, and the lifetime (``exp``, and ``nbf``
when given).

Each refusal carries a distinct description, sent as ``error_description`` in the 401's
``WWW-Authenticate`` header, so that a developer can tell a wrong audience from an expired key.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt.utils import base64url_decode

from ._access_keys import AccessKeyStore, IssuedKey

__all__ = [
    "CLOCK_SKEW",
    "ClientTokenError",
    "VerifiedClient",
    "client_audience",
    "client_audiences",
    "hub_audience",
    "is_key_signed",
    "user_id_of",
    "verify_client_token",
]

CLOCK_SKEW = 2.0
"""Seconds a token may be past its ``exp`` (or before its ``nbf``) and still pass: only what clock
jitter explains."""

_KEY_ALGORITHMS = re.compile(r"HS\d+")
_HASHES = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}


class ClientTokenError(Exception):
    """A client token the emulated service refuses; ``description`` says why."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass(frozen=True, slots=True, repr=False)
class VerifiedClient:
    """Who a valid token says the client is."""

    hub: str
    user_id: str | None
    claims: dict[str, Any]

    def __repr__(self) -> str:
        return f"VerifiedClient(hub={self.hub!r}, user_id={self.user_id!r})"


def client_audience(base_url: str, hub: str) -> str:
    """The audience the service requires of a client token for ``hub`` when clients reach it at
    ``base_url``: ``{scheme}://{host}/client/?hub={hub}``, the host without its port, all in lower
    case (``shared/PROTOCOL.md``, "Client access token"; the C# SDK's ``AudienceBaseUrl`` drops the
    port and .NET's ``Uri`` lower-cases the host). Stated here, not taken from the library's
    endpoint, so that a mistake in the library's audience cannot agree with itself."""
    return hub_audience(base_url, "client", hub)


def hub_audience(base_url: str, endpoint: str, hub: str) -> str:
    """``{scheme}://{host}/{endpoint}/?hub={hub}`` in lower case, the host without its port: the
    audience rule of client tokens (``client``) and of key-signed server tokens (``server``)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6: the brackets urlsplit took off
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}/{endpoint}/?hub={hub.lower()}"


def client_audiences(base_urls: Iterable[str], hub: str) -> list[str]:
    """The audiences a token for ``hub`` may carry when clients reach the service at ``base_urls``
    (one per distinct host)."""
    audiences: list[str] = []
    for url in base_urls:
        audience = client_audience(url, hub)
        if audience not in audiences:
            audiences.append(audience)
    return audiences


def is_key_signed(token: str) -> bool:
    """Whether a bearer token claims to be signed with an access key (HS256, HS512...) rather than
    by Microsoft Entra ID: which of the service's two checks it gets."""
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.DecodeError:
        return False
    return isinstance(algorithm, str) and _KEY_ALGORITHMS.fullmatch(algorithm) is not None


def user_id_of(claims: dict[str, Any]) -> str | None:
    """The user id the service takes from a token: ``asrs.s.uid``, else ``nameid``."""
    for name in ("asrs.s.uid", "nameid"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def verify_client_token(
    token: str | None,
    *,
    hub: str,
    audiences: Sequence[str],
    keys: AccessKeyStore,
    resource_keys: tuple[str, str],
    now: float,
) -> VerifiedClient:
    """The client a token admits to ``hub``; :class:`ClientTokenError` says why it admits nobody."""
    if not token:
        msg = (
            "No access token was presented: send 'Authorization: Bearer <token>' "
            "(or, on the WebSocket, the access_token query parameter)."
        )
        raise ClientTokenError(msg)
    header, claims, signing_input, signature = _parse(token)
    _check_signature(
        header, signing_input, signature, keys=keys, resource_keys=resource_keys, now=now
    )
    _check_times(claims, now)
    _check_audience(claims, audiences)
    return VerifiedClient(hub=hub.lower(), user_id=user_id_of(claims), claims=claims)


def _parse(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    parts = token.split(".")
    if len(parts) != 3:
        msg = "The access token is malformed: a JWT has three dot-separated parts."
        raise ClientTokenError(msg)
    try:
        header = json.loads(base64url_decode(parts[0]))
        claims = json.loads(base64url_decode(parts[1]))
        signature = base64url_decode(parts[2])
    except (ValueError, binascii.Error):
        msg = "The access token is malformed: its parts are not base64url-encoded JSON."
        raise ClientTokenError(msg) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        msg = "The access token is malformed: its header and payload must be JSON objects."
        raise ClientTokenError(msg)
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def _check_signature(
    header: dict[str, Any],
    signing_input: bytes,
    signature: bytes,
    *,
    keys: AccessKeyStore,
    resource_keys: tuple[str, str],
    now: float,
) -> None:
    algorithm = header.get("alg")
    if algorithm not in _HASHES:
        msg = f"The token's algorithm {algorithm!r} is not accepted: sign with HS256 or HS512."
        raise ClientTokenError(msg)
    digest = _HASHES[algorithm]

    def signed_with(secret: str) -> bool:
        expected = hmac.new(secret.encode(), signing_input, digest).digest()
        return hmac.compare_digest(expected, signature)

    kid = header.get("kid")
    named = keys.find(kid) if isinstance(kid, str) else None
    if named is not None:
        # The kid names a temporary key: that key alone decides (as the service looks it up).
        if not signed_with(named.access_key):
            msg = f"The signature is invalid: the token was not signed with the key {kid!r} names."
            raise ClientTokenError(msg)
        _check_key_valid(named, now)
        return
    # No kid, or one we never issued (the C# SDK's kid for a connection-string key is a per-process
    # hash): any of the resource's keys, or any temporary key, may have signed it.
    if any(signed_with(secret) for secret in resource_keys):
        return
    for issued in keys.issued:
        if signed_with(issued.access_key):
            _check_key_valid(issued, now)
            return
    if isinstance(kid, str):
        msg = (
            f"The signature key was not found: kid {kid!r} names no key this resource issued, "
            "and neither access key signed the token."
        )
    else:
        msg = "The signature is invalid: no access key of this resource signed the token."
    raise ClientTokenError(msg)


def _check_key_valid(key: IssuedKey, now: float) -> None:
    if not key.is_valid_at(now):
        msg = (
            f"The signature key {key.key_id!r} expired at {_when(key.expires_at)}: temporary "
            "access keys are valid for 90 minutes; fetch a new one from /api/v1/auth/accessKey."
        )
        raise ClientTokenError(msg)


_LAST_SECOND = 253_402_300_799
"""9999-12-31T23:59:59Z: .NET, which reads the service's tokens, holds no later date. A time
beyond it (``10**400`` parses as a Python int) is refused as a malformed claim."""


def _epoch_seconds(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not (-_LAST_SECOND <= value <= _LAST_SECOND)
    ):
        msg = (
            f"The token's {name!r} claim must be a number of seconds since the epoch, up to "
            "the year 9999."
        )
        raise ClientTokenError(msg)
    return float(value)


def _check_times(claims: dict[str, Any], now: float) -> None:
    expires = _epoch_seconds(claims, "exp")
    if expires is None:
        msg = "The token has no expiration: the 'exp' claim is required."
        raise ClientTokenError(msg)
    if now > expires + CLOCK_SKEW:
        msg = f"The token expired at {_when(expires)}; negotiate again for a fresh token."
        raise ClientTokenError(msg)
    # The service validates lifetimes as .NET does: nbf too, when the token has one.
    not_before = _epoch_seconds(claims, "nbf")
    if not_before is not None and now + CLOCK_SKEW < not_before:
        msg = f"The token is not valid before {_when(not_before)}; check the issuer's clock."
        raise ClientTokenError(msg)


def _check_audience(claims: dict[str, Any], audiences: Sequence[str]) -> None:
    audience = claims.get("aud")
    presented = audience if isinstance(audience, list) else [audience]
    # Compared exactly, as .NET's token validation compares audiences: the SDKs write the one form.
    if any(isinstance(value, str) and value in audiences for value in presented):
        return
    if audience is None:
        msg = f"The token has no audience: the 'aud' claim must be {' or '.join(audiences)}."
    else:
        expected = " or ".join(repr(value) for value in audiences)
        msg = f"The audience {audience!r} is invalid: expected {expected}{_hint(presented)}."
    raise ClientTokenError(msg)


def _hint(presented: list[object]) -> str:
    """What is wrong with an audience that is nearly right."""
    for value in presented:
        if not isinstance(value, str):
            continue
        try:
            has_port = urlsplit(value).port is not None
        except ValueError:  # a port that is not a number is still a port
            has_port = True
        if has_port:
            return " (the host without its port)"
        if value != value.lower():
            return " (scheme, host and hub in lower case)"
    return ""


def _when(epoch: float) -> str:
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # before year 1: say the number
        return f"{epoch:.0f} seconds since the epoch"
