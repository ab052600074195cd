"""The rules of client tokens that ``scripts/mutation tokens`` found unguarded: the configured
algorithm and the app's clock reach the token the service judges, a service-issued token is not
reused past the lifetime it really has, and refusals say what was wrong.

Every token is judged by the emulator over HTTP (as SignalR Service would) or decoded with PyJWT
against the resource's key; nothing of the library is mocked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
import warnings
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning

from signalr_asgi_auth import InvalidInputError, SignalRAuth
from signalr_asgi_auth.emulator import Emulator, Principal

from .support import FAST, auth_for, principal_with_role, wait_until

pytestmark = pytest.mark.anyio

AUDIENCE = "http://127.0.0.1/client/?hub=chat"
"""The emulator's client audience: the endpoint without its port, as the service writes it."""


class SteppedClock:
    """The real clock plus an offset that the test sets."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class FixedClock:
    """A clock that stands where the test puts it (whole seconds from now on), so that a
    boundary is met exactly."""

    def __init__(self) -> None:
        self.at = float(int(time.time()))

    def now(self) -> float:
        return self.at

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


def signed(claims: dict[str, Any], key: str) -> str:
    """An HS256 JWT of exactly ``claims`` (PyJWT's encode refuses an ``exp`` that is not a time)."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(key.encode(), head + b"." + body, hashlib.sha256).digest()
    return (head + b"." + body + b"." + b64(signature)).decode()


def service_calls(emulator: Emulator) -> int:
    return len(emulator.log.entries("signalr.generate_token"))


async def service_negotiate(reply: dict[str, str]) -> httpx2.Response:
    """What a real client does with the app's negotiate reply: the service's negotiate."""
    async with httpx2.AsyncClient(timeout=5) as http:
        return await http.post(
            f"{reply['url']}&negotiateVersion=1".replace("/client/?", "/client/negotiate?"),
            headers={"Authorization": f"Bearer {reply['accessToken']}"},
        )


def key_auth(emulator: Emulator, url: str, **options: Any) -> SignalRAuth:
    """Signing with the resource's primary key (an access-key connection string)."""
    connection_string = emulator.connection_string(url, auth_type=None)
    return SignalRAuth.from_connection_string(connection_string, **{**FAST, **options})


@pytest.fixture
def owner(emulator: Emulator) -> Principal:
    return principal_with_role(emulator, "SignalR REST API Owner")


# -- local signing ------------------------------------------------------------------------------


async def test_the_configured_algorithm_signs_and_the_service_accepts_it(
    emulator: Emulator, emulator_url: str
) -> None:
    async with key_auth(emulator, emulator_url, algorithm="HS512") as signalr:
        reply = await signalr.negotiate("chat", user_id="alice")

    assert jwt.get_unverified_header(reply["accessToken"])["alg"] == "HS512"
    with warnings.catch_warnings():
        # PyJWT asks for 64-byte keys with HS512; the service's keys are what they are.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        claims = jwt.decode(
            reply["accessToken"],
            emulator.access_keys[0].encode(),
            algorithms=["HS512"],  # an HS256 signature fails here
            audience=AUDIENCE,
            options={"require": ["exp", "iat", "nbf", "aud"]},
        )
    assert claims["nameid"] == "alice"
    answer = await service_negotiate(reply)
    assert answer.status_code == 200, answer.text


async def test_the_apps_clock_dates_the_token(emulator: Emulator, emulator_url: str) -> None:
    # An app whose clock runs ten minutes behind signs tokens that were issued ten minutes ago:
    # the token's times come from the configured clock, not from the machine's.
    clock = SteppedClock(offset=-600)
    async with key_auth(emulator, emulator_url, clock=clock) as signalr:
        token = await signalr.client_token("chat", user_id="alice", lifetime=900)
        expected = int(clock.now())

    claims = jwt.decode(token, options={"verify_signature": False})
    assert abs(claims["iat"] - expected) <= 1
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] - claims["iat"] == 900


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"claims": {"a,b": "x"}}, "Claim name 'a,b' holds ','"),
        ({"claims": {5: "x"}}, "without surrounding spaces, got 5."),
        ({"claims": {"asrs.s.role": "x"}}, "use the named arguments (user_id=) instead."),
        ({"claims": {"tier": "gold, role: admin"}}, "The value of claim 'tier' holds ','"),
        ({"claims": {"tier": ""}}, "The value of claim 'tier' is empty (readers drop"),
        ({"claims": {"tier": ["gold", "role: admin"]}}, "A value of claim 'tier' holds ': '"),
        ({"claims": {"tier": {"level": 1}}}, "non-empty list of them; got dict."),
        ({"roles": 5}, "roles must be a sequence of strings, not int."),
        ({"roles": ["admin", 7]}, "Each role must be a non-empty string, got 7."),
        ({"roles": ["admin, owner"]}, "Role 'admin, owner' holds ','"),
        ({"roles": ["admin "]}, "Role 'admin ' starts or ends with spaces (readers trim them)"),
        ({"claims": {"tier": "a\x01b"}}, "holds control characters (a header cannot carry them)"),
        (
            {"claims": {"tier": "a: b"}},
            "its X-ASRS-User-Claims header as 'type: value, type: value', where this text "
            "would read as something else.",
        ),
    ],
    ids=[
        "claim-name",
        "claim-name-type",
        "system-claim",
        "claim-value",
        "claim-value-empty",
        "claim-list-item",
        "claim-value-type",
        "roles-type",
        "role-type",
        "role-text",
        "role-spaces",
        "claim-control",
        "why",
    ],
)
async def test_a_refused_claim_or_role_is_named_in_the_refusal(
    emulator: Emulator, emulator_url: str, arguments: dict[str, Any], message: str
) -> None:
    # The refusal is the rule (tests/test_client_tokens.py); the message says which of many
    # claims or roles to change, and why.
    async with key_auth(emulator, emulator_url) as signalr:
        with pytest.raises(InvalidInputError, match=re.escape(message)):
            await signalr.client_token("chat", user_id="alice", **arguments)


# -- service-issued tokens: reused only while they are valid ------------------------------------


async def test_a_service_token_without_iat_is_reused_for_its_nbf_to_exp_lifetime_only(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    # A service token that dates itself by nbf alone and lives one minute: reusing it for half
    # of the requested hour would hand out an expired token.
    now = int(emulator.clock.now())
    short = jwt.encode({"aud": AUDIENCE, "nbf": now, "exp": now + 60}, emulator.access_keys[0])
    emulator.inject("signalr.generate_token", body=f'{{"token": "{short}"}}', times=1)
    clock = SteppedClock()
    auth = auth_for(emulator, emulator_url, owner, mode="service", clock=clock)
    async with auth as signalr:
        assert await signalr.client_token("chat", user_id="alice", lifetime=3600) == short
        clock.offset = 15
        assert await signalr.client_token("chat", user_id="alice", lifetime=3600) == short
        clock.offset = 31
        assert await signalr.client_token("chat", user_id="alice", lifetime=3600) != short
    assert service_calls(emulator) == 2


async def test_a_service_token_with_a_backdated_nbf_is_reused_for_half_of_exp_minus_iat(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    # Issuers backdate nbf for clock skew; the token still lives from iat to exp, one minute.
    now = int(emulator.clock.now())
    skewed = jwt.encode(
        {"aud": AUDIENCE, "iat": now, "nbf": now - 300, "exp": now + 60}, emulator.access_keys[0]
    )
    emulator.inject("signalr.generate_token", body=f'{{"token": "{skewed}"}}', times=1)
    clock = SteppedClock()
    auth = auth_for(emulator, emulator_url, owner, mode="service", clock=clock)
    async with auth as signalr:
        assert await signalr.client_token("chat", user_id="alice", lifetime=3600) == skewed
        clock.offset = 31
        assert await signalr.client_token("chat", user_id="alice", lifetime=3600) != skewed
    assert service_calls(emulator) == 2


@pytest.mark.parametrize("exp", [None, "later", True], ids=["none", "text", "boolean"])
async def test_a_service_token_without_a_numeric_exp_is_handed_out_and_reused_as_requested(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    owner: Principal,
    exp: object,
) -> None:
    now = int(emulator.clock.now())
    claims: dict[str, Any] = {"aud": AUDIENCE, "iat": now}
    if exp is not None:
        claims["exp"] = exp
    odd = signed(claims, emulator.access_keys[0])
    emulator.inject("signalr.generate_token", body=f'{{"token": "{odd}"}}', times=1)
    clock = SteppedClock()
    auth = auth_for(emulator, emulator_url, owner, mode="service", clock=clock)
    async with auth as signalr:
        assert await signalr.client_token("chat", user_id="alice", lifetime=600) == odd
        clock.offset = 299
        assert await signalr.client_token("chat", user_id="alice", lifetime=600) == odd
    assert service_calls(emulator) == 1


async def test_a_service_token_born_expired_is_never_reused(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    now = int(emulator.clock.now())
    expired = jwt.encode(
        {"aud": AUDIENCE, "iat": now, "nbf": now, "exp": now - 5}, emulator.access_keys[0]
    )
    emulator.inject("signalr.generate_token", body=f'{{"token": "{expired}"}}', times=1)
    clock = FixedClock()  # the second request comes at the same instant as the first
    auth = auth_for(emulator, emulator_url, owner, mode="service", clock=clock)
    async with auth as signalr:
        assert await signalr.client_token("chat", user_id="alice") == expired
        assert await signalr.client_token("chat", user_id="alice") != expired
        assert auth.health()["service_tokens"]["requests"] == 2


async def test_a_service_token_is_reused_until_its_reuse_limit_and_not_at_it(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    clock = FixedClock()
    auth = auth_for(
        emulator, emulator_url, owner, mode="service", clock=clock, service_token_cache_fraction=0.5
    )
    async with auth as signalr:
        first = await signalr.client_token("chat", user_id="alice", lifetime=3600)
        clock.at += 1799
        assert await signalr.client_token("chat", user_id="alice", lifetime=3600) == first
        clock.at += 1  # half of the hour: the limit itself
        await signalr.client_token("chat", user_id="alice", lifetime=3600)
    assert service_calls(emulator) == 2


async def test_with_a_zero_fraction_nothing_is_kept_even_within_the_same_instant(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    auth = auth_for(
        emulator,
        emulator_url,
        owner,
        mode="service",
        clock=FixedClock(),
        service_token_cache_fraction=0,
    )
    async with auth as signalr:
        await signalr.client_token("chat", user_id="alice")
        await signalr.client_token("chat", user_id="alice")
        stats = auth.health()["service_tokens"]
    assert (stats["requests"], stats["cached"]) == (2, 0)


async def test_every_eviction_is_counted(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], owner: Principal
) -> None:
    auth = auth_for(emulator, emulator_url, owner, mode="service", service_token_cache_size=1)
    async with auth as signalr:
        for user in ("u0", "u1", "u2"):
            await signalr.client_token("chat", user_id=user)
        stats = auth.health()["service_tokens"]
    assert (stats["cached"], stats["evictions"]) == (1, 2)


# -- auto mode: back to local signing -------------------------------------------------------------

BACK_TO_LOCAL = "Got a SignalR access key: client tokens are signed locally again."


@pytest.mark.parametrize("served", [True, False], ids=["service-served", "service-idle"])
async def test_back_to_local_signing_is_said_once_and_only_after_the_service_served(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    owner: Principal,
    caplog: pytest.LogCaptureFixture,
    served: bool,
) -> None:
    caplog.set_level(logging.INFO, "signalr_asgi_auth")
    auth = auth_for(emulator, emulator_url, owner, startup_timeout=10)
    async with auth as signalr:
        if served:
            await signalr.negotiate("chat", user_id="alice")
        emulator.assign(owner, "SignalR App Server")
        await wait_until(lambda: auth.health()["signing"] == "local")
        for _ in range(3):
            reply = await signalr.negotiate("chat", user_id="alice", roles=["admin"])

    said = [record.getMessage() for record in caplog.records].count(BACK_TO_LOCAL)
    assert said == (1 if served else 0)
    assert (await service_negotiate(reply)).status_code == 200
