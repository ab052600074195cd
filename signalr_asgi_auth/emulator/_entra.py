"""The emulated tenant's token service: RS256 access tokens, their verification, OpenID metadata."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ._clock import EmulatorClock
from ._directory import Principal

__all__ = ["SIGNALR_AUDIENCES", "EntraAuthority", "EntraTokenError", "IssuedToken"]

SIGNALR_AUDIENCES = ("https://signalr.azure.com", "https://signalr.azure.com/")
"""What SignalR Service accepts as ``aud``: the resource, with or without the trailing slash."""

_REQUIRED_CLAIMS = ["aud", "exp", "iat", "iss", "nbf", "oid", "tid"]


class EntraTokenError(Exception):
    """A bearer token the emulated service refuses; ``reason`` says why, for the 401 body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed access token and the claims it carries."""

    token: str
    claims: dict[str, Any]

    def __repr__(self) -> str:
        return f"IssuedToken(token='**********', claims={self.claims!r})"


class EntraAuthority:
    """Signs access tokens for the tenant's principals with a key made at construction, and checks
    them.

    One RSA key per emulator: tokens of another emulator (or a real tenant) fail the signature
    check, as a foreign token fails at Azure.
    """

    def __init__(self, *, tenant_id: str, clock: EmulatorClock, token_lifetime: float) -> None:
        self.tenant_id = tenant_id
        self.token_lifetime = token_lifetime
        self._clock = clock
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = RSAAlgorithm.to_jwk(self._private_key.public_key(), as_dict=True)
        self._modulus, self._exponent = str(public["n"]), str(public["e"])
        self.key_id = _thumbprint(self._modulus, self._exponent)

    def issue(
        self,
        principal: Principal,
        *,
        audience: str,
        issuer_base: str,
        lifetime: float | None = None,
        algorithm: str = "RS256",
    ) -> IssuedToken:
        """A token as Entra issues one to a managed identity (v1 shape, ``idtyp`` app). Entra signs
        with RS256; another RSA ``algorithm`` is for tests that a verifier refuses it."""
        issued_at = int(self._clock.now())
        lifetime = self.token_lifetime if lifetime is None else lifetime
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": f"{issuer_base.rstrip('/')}/{self.tenant_id}/",
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + int(lifetime),
            "tid": self.tenant_id,
            "oid": principal.object_id,
            "sub": principal.object_id,
            "appid": principal.client_id,
            "idtyp": "app",
            "uti": uuid.uuid4().hex,
            "ver": "1.0",
        }
        headers = {"kid": self.key_id}
        token = jwt.encode(claims, self._private_key, algorithm=algorithm, headers=headers)
        return IssuedToken(token, claims)

    def verify(self, token: str, *, audiences: Collection[str]) -> dict[str, Any]:
        """The token's claims, or :class:`EntraTokenError` saying what is wrong with it."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            msg = "The bearer token is not a well-formed JWT."
            raise EntraTokenError(msg) from None
        if header.get("kid") != self.key_id:
            msg = f"The token's signing key {header.get('kid')!r} is not one of this tenant's keys."
            raise EntraTokenError(msg)
        try:
            claims = jwt.decode(
                token,
                self._private_key.public_key(),
                algorithms=["RS256"],
                audience=list(audiences),
                # Times are checked below against the emulator clock, not the wall clock.
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": _REQUIRED_CLAIMS,
                },
            )
        except jwt.InvalidAudienceError:
            msg = f"The token's audience is not one of {', '.join(audiences)}."
            raise EntraTokenError(msg) from None
        except jwt.MissingRequiredClaimError as error:
            msg = f"The token has no {error.claim!r} claim."
            raise EntraTokenError(msg) from None
        except jwt.InvalidTokenError as error:
            msg = f"The token is invalid: {error}."
            raise EntraTokenError(msg) from None
        self._check_times(claims)
        if claims["tid"] != self.tenant_id:
            msg = f"The token was issued for tenant {claims['tid']!r}, not {self.tenant_id!r}."
            raise EntraTokenError(msg)
        return claims

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock.now()
        if claims["exp"] <= now:
            msg = f"The token expired at {claims['exp']} (emulator time {int(now)})."
            raise EntraTokenError(msg)
        if claims["nbf"] > now:
            msg = f"The token is not valid before {claims['nbf']} (emulator time {int(now)})."
            raise EntraTokenError(msg)

    def jwks(self) -> dict[str, Any]:
        """The tenant's signing keys, as ``/discovery/keys`` publishes them."""
        key = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.key_id,
            "n": self._modulus,
            "e": self._exponent,
        }
        return {"keys": [key]}

    def openid_configuration(self, base_url: str, *, v2: bool) -> dict[str, Any]:
        """OpenID provider metadata; the v1 ``issuer`` is the ``iss`` of tokens issued at
        ``base_url``."""
        tenant = f"{base_url.rstrip('/')}/{self.tenant_id}"
        version = "/v2.0" if v2 else ""
        return {
            "issuer": f"{tenant}{version}" if v2 else f"{tenant}/",
            "jwks_uri": f"{tenant}/discovery{version}/keys",
            "token_endpoint": f"{tenant}/oauth2{version}/token",
            "authorization_endpoint": f"{tenant}/oauth2{version}/authorize",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token"],
            "subject_types_supported": ["pairwise"],
            "tenant_region_scope": "WW",
        }


def _thumbprint(modulus: str, exponent: str) -> str:
    # RFC 7638: a key id that names the key itself rather than a random label.
    canonical = json.dumps({"e": exponent, "kty": "RSA", "n": modulus}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
