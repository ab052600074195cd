"""Client access tokens: the JWTs browsers present to SignalR Service.

Signed here with HMAC (HS256/HS512) over the temporary access key, or over the access key of a
connection string. Built by hand rather than with ``jwt.encode``: the header is fixed per key, so it
is encoded once, and the HMAC state over the key is prepared once; minting is then the payload's JSON
(written directly, byte for byte what ``json.dumps`` writes), two base64 encodings and one HMAC (see
``benchmarks/``). Tests verify every token with PyJWT.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_string
from typing import Final

from ._durations import to_seconds
from ._errors import InvalidInputError, TokenTooLongError, shown
from ._names import check_id
from ._options import MAX_TOKEN_LIFETIME, Algorithm
from ._secrets import Secret

__all__ = [
    "MAX_TOKEN_LENGTH",
    "RESERVED_CLAIMS",
    "ClaimValue",
    "SigningKey",
    "build_claims",
    "check_lifetime",
    "mint_client_token",
]

MAX_TOKEN_LENGTH: Final = 4096
"""The service refuses longer client tokens."""

RESERVED_CLAIMS: Final = frozenset(
    {"aud", "exp", "iat", "nbf", "iss", "actort", "acr", "azp", "c_hash", "jti", "nonce"}
)
"""Claim names that carry meaning for JWT validation; a custom claim so named becomes ``asrs.u.<name>``."""

_SYSTEM_PREFIX: Final = "asrs.s."
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")

Scalar = str | int | float | bool
ClaimValue = Scalar | Sequence[Scalar]
"""A claim value: a string, number or boolean, or a list of them (a multi-valued claim)."""

_DIGESTS: Final = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}


_URL_SAFE: Final = bytes.maketrans(b"+/", b"-_")
_JSON: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_TIMES: Final = frozenset({"nbf", "exp", "iat", "aud"})
"""What :func:`mint_client_token` writes itself, after the claims."""


def _b64(data: bytes) -> bytes:
    """base64url without padding (``base64.urlsafe_b64encode`` is two Python calls slower)."""
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An HMAC key with its id (the JWT ``kid``) and the moment after which it must not sign."""

    key_id: str
    secret: Secret
    usable_until: float = math.inf
    fetched_at: float | None = None
    _macs: dict[str, hmac.HMAC] = field(default_factory=dict, repr=False, compare=False)
    _headers: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    def signer(self, algorithm: Algorithm) -> tuple[bytes, hmac.HMAC]:
        """The encoded JWT header and a prepared HMAC for ``algorithm`` (cached on the key)."""
        mac = self._macs.get(algorithm)
        if mac is None:
            mac = hmac.new(self.secret.reveal().encode(), digestmod=_DIGESTS[algorithm])
            header = {"alg": algorithm, "typ": "JWT", "kid": self.key_id}
            self._headers[algorithm] = _b64(json.dumps(header, separators=(",", ":")).encode())
            self._macs[algorithm] = mac
        return self._headers[algorithm], mac


def check_lifetime(value: object) -> float:
    """A client-token lifetime in seconds: above zero, at most a day."""
    return to_seconds(value, name="lifetime", error=InvalidInputError, maximum=MAX_TOKEN_LIFETIME)


def build_claims(
    *,
    user_id: str | None,
    claims: Mapping[str, ClaimValue] | None,
    roles: Sequence[str] | str,
) -> dict[str, object]:
    """The custom and system claims of a client token, checked, in the order the C# SDK writes them."""
    payload: dict[str, object] = {}
    if claims is not None:
        if not isinstance(claims, Mapping):
            msg = f"claims must be a mapping of claim names to values, not {type(claims).__name__}."
            raise InvalidInputError(msg)
        for name, value in claims.items():
            written = _claim_name(name)
            if written in payload:  # both "aud" and "asrs.u.aud": one would silently vanish
                reserved = written.removeprefix("asrs.u.")
                msg = (
                    f"Claims {reserved!r} and {written!r} cannot both be given: a custom claim named "
                    "like a reserved one is sent as asrs.u.<name>. Pass only one of them."
                )
                raise InvalidInputError(msg)
            payload[written] = _claim_value(name, value)
    if user_id is not None:
        check_id(user_id, "user_id")
        _check_header_text(user_id, "user_id")  # it rides in the header as nameid
        if payload.get("nameid", user_id) != user_id:
            msg = "claims['nameid'] differs from user_id; pass the user id only as user_id=."
            raise InvalidInputError(msg)
        payload["asrs.s.uid"] = user_id
        payload["nameid"] = user_id
    role_list = [] if type(roles) is tuple and not roles else _roles(roles)  # () is the default
    if role_list:
        existing = payload.get("role")
        before = [] if existing is None else existing if isinstance(existing, list) else [existing]
        merged = [*before, *role_list]
        payload["role"] = merged[0] if len(merged) == 1 else merged
    return payload


def _claim_name(name: object) -> str:
    if not isinstance(name, str) or not name or name != name.strip():
        msg = (
            f"Claim names must be non-empty strings without surrounding spaces, got {shown(name)}."
        )
        raise InvalidInputError(msg)
    _check_header_text(name, f"Claim name {name!r:.80}")
    if name.startswith(_SYSTEM_PREFIX):
        msg = (
            f"Claim {name!r:.80} is reserved for the service's own settings (asrs.s.*); use the "
            "named arguments (user_id=) instead."
        )
        raise InvalidInputError(msg)
    return f"asrs.u.{name}" if name in RESERVED_CLAIMS else name


def _claim_value(name: str, value: object) -> ClaimValue:
    if _is_scalar(value):
        if isinstance(value, str):
            _check_header_text(value, f"The value of claim {name!r:.80}")
        return value  # type: ignore[return-value]
    if isinstance(value, list | tuple) and value and all(_is_scalar(item) for item in value):
        for item in value:
            if isinstance(item, str):
                _check_header_text(item, f"A value of claim {name!r:.80}")
        return list(value)
    msg = (
        f"Claim {name!r:.80} must be a string, number or boolean, or a non-empty list of them; "
        f"got {type(value).__name__}."
    )
    raise InvalidInputError(msg)


def _is_scalar(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)


def _roles(roles: Sequence[str] | str) -> list[str]:
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, Sequence):
        msg = f"roles must be a sequence of strings, not {type(roles).__name__}."
        raise InvalidInputError(msg)
    for role in roles:
        if not isinstance(role, str) or not role:
            msg = f"Each role must be a non-empty string, got {shown(role)}."
            raise InvalidInputError(msg)
        _check_header_text(role, f"Role {role!r:.80}")
    return list(roles)


def _check_header_text(text: str, what: str) -> None:
    """Refuse what the upstream ``X-ASRS-User-Claims`` header cannot carry unambiguously.

    The service lists a connection's claims to upstream handlers as ``type: value`` pairs joined
    by ``", "`` (.NET's way of printing claims), and readers (the Azure Functions extension, this
    library's verifier) split the header at every comma and each pair at ``": "``, trimming
    spaces. A value holding either would reach the handler as claims the app never issued:
    ``"Eve, role: admin"`` reads as a second claim ``role: admin``.
    """
    if not text:
        problem = "is empty (readers drop a claim without a value)"
    elif "," in text:
        problem = "holds ',' (the header separates claims with commas)"
    elif ": " in text:
        problem = "holds ': ' (the header separates a claim's type from its value with it)"
    elif text != text.strip():
        problem = "starts or ends with spaces (readers trim them)"
    elif _CONTROL.search(text):
        problem = "holds control characters (a header cannot carry them)"
    else:
        return
    msg = (
        f"{what} {problem}. SignalR Service passes a connection's claims to upstream handlers in "
        "its X-ASRS-User-Claims header as 'type: value, type: value', where this text would "
        "read as something else."
    )
    raise InvalidInputError(msg)


def mint_client_token(
    key: SigningKey,
    *,
    audience: str,
    claims: Mapping[str, object],
    lifetime: float,
    now: float,
    algorithm: Algorithm = "HS256",
) -> str:
    """Sign a client token: ``claims`` then ``nbf``, ``exp``, ``iat``, ``aud``."""
    issued = int(now)
    # Whole seconds, as JWTs count; at least one after iat, or a sub-second lifetime would give a
    # token that is born expired (exp == iat).
    expires = max(int(now + lifetime), issued + 1)
    try:
        members = _json_members(claims)
    except (TypeError, ValueError) as exc:  # build_claims admits only JSON values; belt and braces
        msg = "The claims cannot be written as JSON."
        raise InvalidInputError(msg) from exc
    # Written here rather than by json.dumps of a merged dict: negotiate pays for every microsecond
    # (benchmarks/negotiate.py), and only the claims need the encoder.
    body = (
        f'{{{members}"nbf":{issued},"exp":{expires},"iat":{issued},"aud":{_json_string(audience)}}}'
    ).encode()
    header, prototype = key.signer(algorithm)
    signing_input = header + b"." + _b64(body)
    mac = prototype.copy()
    mac.update(signing_input)
    token = (signing_input + b"." + _b64(mac.digest())).decode()
    if len(token) > MAX_TOKEN_LENGTH:
        msg = (
            f"The client token would be {len(token)} characters long; SignalR Service accepts at "
            f"most {MAX_TOKEN_LENGTH}. Send fewer or shorter claims or roles."
        )
        raise TokenTooLongError(msg)
    return token


def _json_members(claims: Mapping[str, object]) -> str:
    """``claims`` as the members of a JSON object, each followed by a comma. The ones that
    :func:`mint_client_token` writes itself are left out: its values win, and a JSON object that
    names a member twice means different things to different parsers."""
    members = []
    for name, value in claims.items():
        if name not in _TIMES:  # a name that is not a string makes _json_string raise TypeError
            written = _json_string(value) if type(value) is str else _JSON.encode(value)
            members.append(f"{_json_string(name)}:{written},")
    return "".join(members)
