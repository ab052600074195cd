"""Client access tokens: every token is checked with PyJWT, never against a stored string."""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalr_asgi_auth._client_tokens import (
    MAX_TOKEN_LENGTH,
    SigningKey,
    build_claims,
    check_lifetime,
    mint_client_token,
)
from signalr_asgi_auth._errors import InvalidInputError, TokenTooLongError
from signalr_asgi_auth._options import Algorithm
from signalr_asgi_auth._secrets import Secret

# The service's AccessKey string; the HMAC key is its UTF-8, not its base64 decoding. The "é" makes a
# Latin-1 or ASCII encoding of the key fail verification. 64 bytes and more, as PyJWT wants for HS512.
ACCESS_KEY = "c2VjcmV0LWtleS1mb3ItdGhlLXRlc3RzLWxvbmctZW5vdWdoLWZvci1oczUxMi0wMTIz+/é=="
KEY_ID = "kid-0f1e2d"
AUDIENCE = "https://abc.service.signalr.net/client/?hub=chat"
ALGORITHMS: list[Algorithm] = ["HS256", "HS512"]

# Written out rather than imported, so that a change to the library's list fails here.
RESERVED = ["aud", "exp", "iat", "nbf", "iss", "actort", "acr", "azp", "c_hash", "jti", "nonce"]


def signing_key(key_id: str = KEY_ID) -> SigningKey:
    return SigningKey(key_id=key_id, secret=Secret(ACCESS_KEY))


def mint(
    *,
    user_id: str | None = "user-1",
    claims: Mapping[str, Any] | None = None,
    roles: Sequence[str] | str = (),
    lifetime: float = 3600.0,
    now: float | None = None,
    algorithm: Algorithm = "HS256",
    key: SigningKey | None = None,
) -> str:
    return mint_client_token(
        key or signing_key(),
        audience=AUDIENCE,
        claims=build_claims(user_id=user_id, claims=claims, roles=roles),
        lifetime=lifetime,
        now=time.time() if now is None else now,
        algorithm=algorithm,
    )


def verify(token: str, algorithm: Algorithm = "HS256") -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        ACCESS_KEY.encode("utf-8"),
        algorithms=[algorithm],
        audience=AUDIENCE,
        options={"require": ["exp", "iat", "nbf", "aud"]},
    )
    return claims


def segment(token: str, index: int) -> dict[str, Any]:
    """A token's header (0) or payload (1) as JSON, key order kept."""
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


# --- signature and header ---------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_token_verifies_with_pyjwt_over_the_utf8_of_the_access_key(algorithm: Algorithm) -> None:
    token = mint(algorithm=algorithm)

    assert verify(token, algorithm)["nameid"] == "user-1"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_token_fails_verification_with_another_key_or_algorithm(algorithm: Algorithm) -> None:
    token = mint(algorithm=algorithm)
    other: Algorithm = "HS512" if algorithm == "HS256" else "HS256"

    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, b"another key " * 8, algorithms=[algorithm], audience=AUDIENCE)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, ACCESS_KEY.encode("latin-1"), algorithms=[algorithm], audience=AUDIENCE)
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(token, ACCESS_KEY.encode(), algorithms=[other], audience=AUDIENCE)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_header_is_exactly_alg_typ_kid(algorithm: Algorithm) -> None:
    token = mint(algorithm=algorithm)

    assert jwt.get_unverified_header(token) == {"alg": algorithm, "typ": "JWT", "kid": KEY_ID}
    assert list(segment(token, 0)) == ["alg", "typ", "kid"]


def test_one_key_signs_with_both_algorithms_in_turn() -> None:
    # The key caches one prepared HMAC per algorithm; using one must not disturb the other.
    key = signing_key()
    for algorithm in [*ALGORITHMS, *reversed(ALGORITHMS)]:
        token = mint(key=key, algorithm=algorithm)
        assert jwt.get_unverified_header(token)["alg"] == algorithm
        verify(token, algorithm)


def test_signing_key_repr_hides_the_secret() -> None:
    assert ACCESS_KEY not in repr(signing_key())
    assert KEY_ID in repr(signing_key())


# --- claims -----------------------------------------------------------------------------------


def test_claims_in_order_custom_then_user_then_role_then_times_and_audience() -> None:
    now = time.time()
    token = mint(
        user_id="alice",
        claims={"tenant": "contoso", "level": 3, "beta": True, "scores": [1.5, 2]},
        roles=["admin"],
        lifetime=1800.75,
        now=now,
    )

    assert list(segment(token, 1)) == [
        "tenant",
        "level",
        "beta",
        "scores",
        "asrs.s.uid",
        "nameid",
        "role",
        "nbf",
        "exp",
        "iat",
        "aud",
    ]
    assert verify(token) == {
        "tenant": "contoso",
        "level": 3,
        "beta": True,
        "scores": [1.5, 2],
        "asrs.s.uid": "alice",
        "nameid": "alice",
        "role": "admin",
        "nbf": int(now),
        "exp": int(now + 1800.75),
        "iat": int(now),
        "aud": AUDIENCE,
    }


def test_times_are_whole_seconds_from_a_fractional_now() -> None:
    now = math.floor(time.time()) - 1 + 0.999  # a moment a hair before a whole second
    payload = verify(mint(now=now, lifetime=59.5))

    assert payload["iat"] == payload["nbf"] == math.floor(now)
    assert payload["exp"] == math.floor(now + 59.5)
    assert all(type(payload[name]) is int for name in ("iat", "nbf", "exp"))


def test_without_user_id_no_user_claims() -> None:
    payload = verify(mint(user_id=None))

    assert "asrs.s.uid" not in payload
    assert "nameid" not in payload


def test_one_role_is_a_string() -> None:
    assert verify(mint(roles=["admin"]))["role"] == "admin"
    assert verify(mint(roles="admin"))["role"] == "admin"


def test_several_roles_are_a_list_in_order() -> None:
    assert verify(mint(roles=["admin", "reader", "admin"]))["role"] == ["admin", "reader", "admin"]


def test_no_roles_no_role_claim() -> None:
    assert "role" not in verify(mint(roles=[]))


@pytest.mark.parametrize(
    ("claim", "roles", "expected"),
    [
        pytest.param("viewer", ["admin"], ["viewer", "admin"], id="string-claim"),
        pytest.param(
            ["viewer", "editor"], ["admin"], ["viewer", "editor", "admin"], id="list-claim"
        ),
        pytest.param(["viewer"], [], ["viewer"], id="claim-alone-stays-as-given"),
        pytest.param("viewer", [], "viewer", id="string-claim-alone"),
    ],
)
def test_roles_merge_with_a_role_claim(
    claim: str | list[str], roles: list[str], expected: str | list[str]
) -> None:
    assert verify(mint(claims={"role": claim}, roles=roles))["role"] == expected


@pytest.mark.parametrize("name", RESERVED)
def test_reserved_claim_names_are_renamed(name: str) -> None:
    payload = verify(mint(claims={name: "custom"}))

    assert payload[f"asrs.u.{name}"] == "custom"
    assert payload.get(name) != "custom"
    assert payload["aud"] == AUDIENCE


def test_names_that_only_look_reserved_pass_through() -> None:
    payload = verify(mint(claims={"AUD": "a", "sub": "b", "audience": "c", "asrs.u.x": "d"}))

    assert (payload["AUD"], payload["sub"], payload["audience"], payload["asrs.u.x"]) == (
        "a",
        "b",
        "c",
        "d",
    )


@pytest.mark.parametrize(
    "claims", [{"aud": "a", "asrs.u.aud": "b"}, {"asrs.u.jti": "a", "jti": "b"}]
)
def test_a_reserved_claim_and_its_renamed_form_together_are_refused(
    claims: dict[str, str],
) -> None:
    # Before: one of the two silently vanished from the token.
    with pytest.raises(InvalidInputError, match=r"cannot both be given.*asrs\.u\.<name>"):
        build_claims(user_id=None, claims=claims, roles=())


@pytest.mark.parametrize("name", ["asrs.s.uid", "asrs.s.sn", "asrs.s.", "asrs.s.anything"])
def test_system_claims_are_refused(name: str) -> None:
    with pytest.raises(
        InvalidInputError, match=r"reserved for the service's own settings \(asrs\.s\.\*\)"
    ):
        build_claims(user_id=None, claims={name: "x"}, roles=())


@pytest.mark.parametrize("name", ["", " ", " tenant", "tenant ", "\ttenant", 5, None, b"tenant"])
def test_bad_claim_names_are_refused(name: object) -> None:
    with pytest.raises(InvalidInputError, match="Claim names must be non-empty strings"):
        build_claims(user_id=None, claims={name: "x"}, roles=())  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param({"a": 1}, id="dict"),
        pytest.param([["a"]], id="nested-list"),
        pytest.param([1, [2]], id="list-with-list"),
        pytest.param([], id="empty-list"),
        pytest.param((), id="empty-tuple"),
        pytest.param(math.nan, id="nan"),
        pytest.param(math.inf, id="inf"),
        pytest.param(-math.inf, id="minus-inf"),
        pytest.param([1.0, math.nan], id="list-with-nan"),
        pytest.param(["a", None], id="list-with-none"),
        pytest.param({"a"}, id="set"),
        pytest.param(b"bytes", id="bytes"),
        pytest.param(object(), id="object"),
    ],
)
def test_bad_claim_values_are_refused(value: object) -> None:
    with pytest.raises(
        InvalidInputError,
        match=r"Claim 'tenant' must be a string, number or boolean, or a non-empty list of them",
    ):
        build_claims(user_id=None, claims={"tenant": value}, roles=())  # type: ignore[dict-item]


def test_tuple_claim_values_become_lists() -> None:
    assert verify(mint(claims={"tags": ("a", 1, False)}))["tags"] == ["a", 1, False]


@pytest.mark.parametrize("claims", [[("tenant", "x")], "tenant=x", 5])
def test_claims_must_be_a_mapping(claims: object) -> None:
    with pytest.raises(
        InvalidInputError, match="claims must be a mapping of claim names to values"
    ):
        build_claims(user_id=None, claims=claims, roles=())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("user_id", "match"),
    [
        pytest.param("", "user_id must be a non-empty string", id="empty"),
        pytest.param(42, "user_id must be a non-empty string", id="int"),
        pytest.param(b"alice", "user_id must be a non-empty string", id="bytes"),
        pytest.param("x" * 1025, "user_id is 1025 characters long; at most 1024", id="too-long"),
        pytest.param("ali\x00ce", "user_id must not contain control characters", id="nul"),
        pytest.param("alice\n", "user_id must not contain control characters", id="newline"),
        pytest.param("ali\tce", "user_id must not contain control characters", id="tab"),
        pytest.param("alice\x7f", "user_id must not contain control characters", id="del"),
        pytest.param("ali\x9bce", "user_id must not contain control characters", id="c1-csi"),
        pytest.param("alice\x85", "user_id must not contain control characters", id="c1-nel"),
        pytest.param("\x80alice", "user_id must not contain control characters", id="c1-first"),
    ],
)
def test_bad_user_ids_are_refused(user_id: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        build_claims(user_id=user_id, claims=None, roles=())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "user_id", ["a", "x" * 1024, "Ålice Ünicode 用户 🚀", "a b", "name@contoso.com"]
)
def test_good_user_ids_round_trip(user_id: str) -> None:
    payload = verify(mint(user_id=user_id))

    assert payload["asrs.s.uid"] == payload["nameid"] == user_id


@pytest.mark.parametrize(
    "roles",
    [
        pytest.param([""], id="empty-role"),
        pytest.param([5], id="int-role"),
        pytest.param([None], id="none-role"),
        pytest.param(["admin", ""], id="second-empty"),
        pytest.param("", id="empty-string"),
    ],
)
def test_bad_roles_are_refused(roles: object) -> None:
    with pytest.raises(InvalidInputError, match="Each role must be a non-empty string"):
        build_claims(user_id=None, claims=None, roles=roles)  # type: ignore[arg-type]


@pytest.mark.parametrize("roles", [5, {"admin"}, None])
def test_roles_must_be_a_sequence(roles: object) -> None:
    with pytest.raises(InvalidInputError, match="roles must be a sequence of strings"):
        build_claims(user_id=None, claims=None, roles=roles)  # type: ignore[arg-type]


def test_nameid_claim_that_differs_from_user_id_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"claims\['nameid'\] differs from user_id"):
        build_claims(user_id="alice", claims={"nameid": "mallory"}, roles=())


def test_nameid_claim_equal_to_user_id_is_accepted() -> None:
    payload = verify(mint(user_id="alice", claims={"nameid": "alice"}))

    assert payload["nameid"] == payload["asrs.s.uid"] == "alice"


def test_nameid_claim_without_user_id_passes_through() -> None:
    payload = verify(mint(user_id=None, claims={"nameid": "bob"}))

    assert payload["nameid"] == "bob"
    assert "asrs.s.uid" not in payload


# --- length -----------------------------------------------------------------------------------


def _padded(length: int, key_id: str) -> str:
    return mint(claims={"pad": "p" * length}, key=signing_key(key_id), now=time.time())


def _exactly(limit: int) -> tuple[int, str]:
    """A padding length and key id that make a token of exactly ``limit`` characters."""
    for key_id in ("k", "kk", "kkk", "kkkk"):  # base64 never yields a length of 4n+1: shift it
        for length in range(limit // 2, limit):
            try:
                token = _padded(length, key_id)
            except TokenTooLongError:
                break
            if len(token) == limit:
                return length, key_id
    msg = "no padding gives a token of exactly the limit"
    raise AssertionError(msg)  # pragma: no cover


def test_token_of_exactly_4096_characters_is_accepted_and_one_more_is_refused() -> None:
    assert MAX_TOKEN_LENGTH == 4096
    length, key_id = _exactly(4096)

    assert len(_padded(length, key_id)) == 4096
    with pytest.raises(
        TokenTooLongError, match=r"would be 409[7-9] characters long.* at most 4096"
    ):
        _padded(length + 1, key_id)


def test_too_long_token_is_an_invalid_input_error_that_says_what_to_do() -> None:
    with pytest.raises(InvalidInputError, match="Send fewer or shorter claims or roles") as caught:
        mint(roles=[f"role-{i:04d}" for i in range(400)])

    assert isinstance(caught.value, TokenTooLongError)


# --- lifetime ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (1, 1.0),
        (0.5, 0.5),
        (3600, 3600.0),
        (86400, 86400.0),
        (timedelta(minutes=5), 300.0),
        (timedelta(hours=24), 86400.0),
    ],
)
def test_check_lifetime_accepts_seconds_and_timedeltas(value: object, seconds: float) -> None:
    result = check_lifetime(value)

    assert result == seconds
    assert type(result) is float


@pytest.mark.parametrize(
    ("value", "match"),
    [
        pytest.param(-1, "lifetime must be more than zero seconds", id="negative"),
        pytest.param(0, "lifetime must be more than zero seconds", id="zero"),
        pytest.param(0.0, "lifetime must be more than zero seconds", id="zero-float"),
        pytest.param(timedelta(0), "lifetime must be more than zero seconds", id="zero-timedelta"),
        pytest.param(timedelta(seconds=-5), "lifetime must be more than zero", id="neg-timedelta"),
        pytest.param(math.nan, "lifetime must be a finite number of seconds", id="nan"),
        pytest.param(math.inf, "lifetime must be a finite number of seconds", id="inf"),
        pytest.param(10**400, "lifetime must be a finite number of seconds", id="huge-int"),
        pytest.param(
            True, "lifetime must be a number of seconds or a timedelta, not bool", id="bool"
        ),
        pytest.param(
            "60", "lifetime must be a number of seconds or a timedelta, not str", id="str"
        ),
        pytest.param(None, "lifetime must be a number of seconds or a timedelta", id="none"),
        pytest.param(86400.001, "lifetime must be at most 86400 seconds", id="over-a-day"),
        pytest.param(timedelta(hours=25), "lifetime must be at most 86400 seconds", id="25h"),
    ],
)
def test_check_lifetime_refuses(value: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        check_lifetime(value)


# --- any valid input --------------------------------------------------------------------------


def _carried(text: str) -> bool:
    """Whether the upstream X-ASRS-User-Claims header carries ``text`` unambiguously."""
    return (
        bool(text)
        and "," not in text
        and ": " not in text
        and text == text.strip()
        and not re.search(r"[\x00-\x1f\x7f-\x9f]", text)
    )


_user_ids = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x7f", min_codepoint=32),
    min_size=1,
    max_size=32,
).filter(_carried)
_scalars = (
    st.text(min_size=1, max_size=8).filter(_carried)
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
)
_values = _scalars | st.lists(_scalars, min_size=1, max_size=3) | st.tuples(_scalars, _scalars)
_names = (
    st.text(min_size=1, max_size=8)
    .filter(_carried)
    .filter(lambda name: not name.startswith(("asrs.s.", "asrs.u.")) and name != "nameid")
) | st.sampled_from(RESERVED)
_roles = st.lists(st.text(min_size=1, max_size=8).filter(_carried), max_size=3)


@settings(max_examples=150, deadline=None, database=None)
@given(
    user_id=st.none() | _user_ids,
    claims=st.dictionaries(_names, _values, max_size=4),
    roles=_roles,
    algorithm=st.sampled_from(ALGORITHMS),
)
def test_any_valid_input_verifies_and_round_trips(
    user_id: str | None, claims: dict[str, Any], roles: list[str], algorithm: Algorithm
) -> None:
    now = time.time()
    token = mint(user_id=user_id, claims=claims, roles=roles, now=now, algorithm=algorithm)

    expected: dict[str, Any] = {}
    for name, value in claims.items():
        written = f"asrs.u.{name}" if name in RESERVED else name
        expected[written] = list(value) if isinstance(value, list | tuple) else value
    if user_id is not None:
        expected["asrs.s.uid"] = expected["nameid"] = user_id
    if roles:
        before = expected.get("role", [])
        merged = [*(before if isinstance(before, list) else [before]), *roles]
        expected["role"] = merged[0] if len(merged) == 1 else merged
    expected.update(nbf=int(now), exp=int(now + 3600.0), iat=int(now), aud=AUDIENCE)

    assert verify(token, algorithm) == expected
    assert len(token) <= MAX_TOKEN_LENGTH


def _payload_text(token: str) -> str:
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("ascii")


@settings(max_examples=150, deadline=None, database=None)
@given(
    user_id=st.none() | _user_ids,
    claims=st.dictionaries(_names, _values, max_size=4),
    roles=_roles,
    now=st.floats(min_value=0, max_value=2**33),
    lifetime=st.floats(min_value=0.001, max_value=86400),
)
def test_payload_is_exactly_what_json_dumps_writes(
    user_id: str | None, claims: dict[str, Any], roles: list[str], now: float, lifetime: float
) -> None:
    # The payload's JSON is written by hand for speed; it must be byte for byte the standard one.
    built = build_claims(user_id=user_id, claims=claims, roles=roles)
    token = mint_client_token(
        signing_key(), audience=AUDIENCE, claims=built, lifetime=lifetime, now=now
    )
    issued = int(now)
    standard = {
        **built,
        "nbf": issued,
        "exp": max(int(now + lifetime), issued + 1),
        "iat": issued,
        "aud": AUDIENCE,
    }
    assert _payload_text(token) == json.dumps(standard, separators=(",", ":"), allow_nan=False)


def test_non_ascii_claims_and_audience_are_escaped_like_json_dumps() -> None:
    audience = "https://bücher.example/client/?hub=chat"
    claims = {"näme": "Zoë 🙂", "asrs.s.uid": "ü"}
    token = mint_client_token(signing_key(), audience=audience, claims=claims, lifetime=60, now=0)
    text = _payload_text(token)
    assert text == json.dumps(
        {**claims, "nbf": 0, "exp": 60, "iat": 0, "aud": audience}, separators=(",", ":")
    )
    assert "\\u00fc" in text
    assert "\\ud83d\\ude42" in text


def test_time_claims_given_to_mint_are_replaced_not_repeated() -> None:
    # build_claims renames these; a caller of mint_client_token that passes them gets the token's
    # own values, once each (a JSON object with a repeated name means different things to parsers).
    now = int(time.time())
    token = mint_client_token(
        signing_key(),
        audience=AUDIENCE,
        claims={"exp": 1, "nbf": 2, "iat": 3, "aud": "other", "x": 1},
        lifetime=60,
        now=now,
    )
    text = _payload_text(token)
    times = f'"nbf":{now},"exp":{now + 60},"iat":{now}'
    assert text == f'{{"x":1,{times},"aud":{json.dumps(AUDIENCE)}}}'
    assert verify(token)["exp"] == now + 60


@pytest.mark.parametrize(
    ("claims", "error"),
    [({"x": math.nan}, "cannot be written as JSON"), ({1: "x"}, "cannot be written as JSON")],
)
def test_mint_refuses_claims_that_are_not_json(claims: dict[Any, Any], error: str) -> None:
    with pytest.raises(InvalidInputError, match=error):
        mint_client_token(signing_key(), audience=AUDIENCE, claims=claims, lifetime=60, now=0)


# -- what the upstream X-ASRS-User-Claims header can carry ---------------------------------------


@pytest.mark.parametrize(
    ("arguments", "why"),
    [
        pytest.param({"claims": {"tier": "Eve, role: admin"}}, "','", id="comma-forges-a-role"),
        pytest.param(
            {"claims": {"tier": ["gold", "x, asrs.s.uid: root"]}}, "','", id="comma-in-a-list"
        ),
        pytest.param({"claims": {"tier": "gold: plus"}}, "': '", id="pair-separator"),
        pytest.param({"claims": {"tier": " gold"}}, "spaces", id="leading-space"),
        pytest.param({"claims": {"tier": "gold\t"}}, "spaces", id="trailing-tab"),
        pytest.param({"claims": {"tier": ""}}, "empty", id="empty-value"),
        pytest.param({"claims": {"tier": "go\x85ld"}}, "control", id="c1-control"),
        pytest.param({"claims": {"a,b": "x"}}, "','", id="comma-in-a-name"),
        pytest.param({"claims": {"a: b": "x"}}, "': '", id="separator-in-a-name"),
        pytest.param({"claims": {"a\nb": "x"}}, "control", id="newline-in-a-name"),
        pytest.param({"roles": ["admin, role: root"]}, "','", id="comma-in-a-role"),
        pytest.param({"user_id": "eve, role: admin"}, "','", id="comma-in-the-user-id"),
        pytest.param({"user_id": "eve: admin"}, "': '", id="separator-in-the-user-id"),
    ],
)
def test_what_the_upstream_claims_header_cannot_carry_is_refused(
    arguments: dict[str, Any], why: str
) -> None:
    with pytest.raises(InvalidInputError, match="X-ASRS-User-Claims") as refused:
        build_claims(**{"user_id": None, "claims": None, "roles": (), **arguments})
    assert why in str(refused.value)


def test_what_the_upstream_claims_header_can_carry_passes() -> None:
    payload = build_claims(
        user_id="Ada Lovelace",
        claims={"tier": "gold:plus", "url": "https://contoso.com/a?b=c", "n": 3, "ok": True},
        roles=["admin", "ops"],
    )
    assert payload["tier"] == "gold:plus"
    assert payload["role"] == ["admin", "ops"]
