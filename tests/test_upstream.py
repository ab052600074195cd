"""Upstream requests from the service to the app: Entra bearer tokens checked against the
emulator's real OpenID metadata and JWKS routes, X-ASRS-Signature HMACs, header and body parsing,
and the answers the endpoint gives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import anyio.lowlevel
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from signalr_asgi_auth._client_tokens import build_claims
from signalr_asgi_auth._errors import ConfigurationError, InvalidInputError, SignalRAuthError
from signalr_asgi_auth._secrets import Secret
from signalr_asgi_auth._upstream import (
    HubMethodError,
    UpstreamVerifier,
    upstream_endpoint,
    upstream_error_response,
    upstream_response,
)
from signalr_asgi_auth._upstream_request import UpstreamRequest, read_head
from signalr_asgi_auth.emulator import Emulator, Principal
from signalr_asgi_auth.emulator._upstream_calls import claims_header

AUDIENCE = "api://contoso-chat-upstream"
CONNECTION = "QnH9uZ3x0pLk2vYw8sTtEA"
OTHER_OBJECT_ID = "11111111-2222-3333-4444-555555555555"

anyio_tests = pytest.mark.anyio


# -- building requests --------------------------------------------------------------------------


class Clock:
    """Wall time plus an offset the test moves forward; :meth:`freeze` stops the wall time for a
    test whose bounds (a hold-back of 1 s) a loaded machine could otherwise outrun."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.frozen: float | None = None

    def __call__(self) -> float:
        return (self.frozen if self.frozen is not None else time.time()) + self.offset

    def freeze(self) -> None:
        self.frozen = time.time()

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def sign(key: str, connection_id: str = CONNECTION) -> str:
    """``sha256=<HEX>`` as the service writes it (upper-case hex)."""
    digest = hmac.new(key.encode(), connection_id.encode(), hashlib.sha256).hexdigest()
    return f"sha256={digest.upper()}"


def asrs(
    *,
    category: str = "messages",
    event: str = "add",
    connection_id: str | None = CONNECTION,
    **extra: str,
) -> dict[str, str]:
    headers = {
        "X-ASRS-Hub": "chat",
        "X-ASRS-Category": category,
        "X-ASRS-Event": event,
        "X-ASRS-User-Id": "alice",
        "Content-Type": "application/json",
    }
    if connection_id is not None:
        headers["X-ASRS-Connection-Id"] = connection_id
    headers.update({name.replace("_", "-"): value for name, value in extra.items()})
    return headers


def invocation(
    target: str = "add", arguments: list[Any] | None = None, invocation_id: str | None = "7"
) -> bytes:
    message: dict[str, Any] = {"type": 1, "target": target, "arguments": arguments or [2, 3]}
    if invocation_id is not None:
        message["invocationId"] = invocation_id
    return json.dumps(message).encode() + b"\x1e"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def tenant_kid(emulator: Emulator) -> str:
    kid: str = emulator.jwks["keys"][0]["kid"]
    return kid


@pytest.fixture(scope="module")
def foreign_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def service_identity(emulator: Emulator) -> Principal:
    """The SignalR resource's managed identity, which gets the upstream tokens."""
    return emulator.add_principal("signalr-resource")


@pytest.fixture
def token(emulator: Emulator, emulator_url: str, service_identity: Principal) -> str:
    return emulator.issue_entra_token(service_identity, audience=AUDIENCE, issuer_base=emulator_url)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(emulator: Emulator, emulator_url: str, clock: Clock) -> UpstreamVerifier:
    return UpstreamVerifier(
        audience=AUDIENCE,
        tenant_id=emulator.tenant_id,
        authority=emulator_url,
        access_keys=emulator.access_keys,
        clock=clock,
    )


class Recorder:
    """The app's upstream handler: keeps every call; ``add`` sums, ``fail`` fails, ``raw`` answers
    with its own response."""

    def __init__(self) -> None:
        self.calls: list[UpstreamRequest] = []

    async def __call__(self, call: UpstreamRequest) -> object:
        self.calls.append(call)
        await anyio.lowlevel.checkpoint()
        if call.event == "add":
            return sum(call.arguments)
        if call.event == "fail":
            message = "the room is full"
            raise HubMethodError(message)
        if call.event == "raw":
            return PlainTextResponse("raw", status_code=202)
        return None


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@asynccontextmanager
async def app_client(
    verifier: UpstreamVerifier, recorder: Recorder
) -> AsyncIterator[httpx2.AsyncClient]:
    endpoint = upstream_endpoint(verifier, recorder)
    app = Starlette(routes=[Route("/upstream/{event}", endpoint, methods=["GET", "POST"])])
    transport = httpx2.ASGITransport(app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://app") as client:
        yield client


Post = Callable[..., Any]


@pytest.fixture
async def post(verifier: UpstreamVerifier, recorder: Recorder) -> AsyncIterator[Post]:
    async with app_client(verifier, recorder) as client:

        async def send(
            headers: dict[str, str] | list[tuple[str, str]], body: bytes = b""
        ) -> httpx2.Response:
            return await client.post("/upstream/event", headers=headers, content=body)

        yield send


@pytest.fixture
async def signed_post(emulator: Emulator, recorder: Recorder) -> AsyncIterator[Post]:
    """Like ``post``, for a verifier of signatures only: no server, no tenant keys needed."""
    async with app_client(UpstreamVerifier(access_keys=emulator.access_keys), recorder) as client:

        async def send(
            headers: dict[str, str] | list[tuple[str, str]], body: bytes = b""
        ) -> httpx2.Response:
            return await client.post("/upstream/event", headers=headers, content=body)

        yield send


def completion(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.text.endswith("\x1e")
    message: dict[str, Any] = json.loads(response.text.removesuffix("\x1e"))
    return message


# -- accepted -----------------------------------------------------------------------------------


@anyio_tests
async def test_a_valid_entra_token_is_accepted(
    post: Post, recorder: Recorder, token: str, service_identity: Principal, emulator: Emulator
) -> None:
    response = await post(asrs(Authorization=f"Bearer {token}"), invocation(arguments=[2, 3]))

    assert completion(response) == {"type": 3, "invocationId": "7", "result": 5}
    [call] = recorder.calls
    assert call.authenticated_by == "entra"
    assert call.principal_id == service_identity.object_id
    assert (call.hub, call.category, call.event) == ("chat", "messages", "add")
    assert (call.connection_id, call.user_id) == (CONNECTION, "alice")
    assert call.arguments == (2, 3)
    assert call.invocation_id == "7"
    assert emulator.log.count("identity.openid") == emulator.log.count("identity.jwks") == 1


@anyio_tests
@pytest.mark.parametrize("which", [0, 1], ids=["primary-key", "secondary-key"])
async def test_a_signature_with_either_access_key_is_accepted(
    post: Post, recorder: Recorder, emulator: Emulator, which: int
) -> None:
    response = await post(asrs(X_ASRS_Signature=sign(emulator.access_keys[which])), invocation())

    assert completion(response)["result"] == 5
    assert [call.authenticated_by for call in recorder.calls] == ["signature"]
    assert recorder.calls[0].principal_id is None
    # no Entra token, so no reason to fetch the tenant's keys
    assert emulator.log.count("identity.openid") == 0


@anyio_tests
@pytest.mark.parametrize(
    "arrange",
    [
        pytest.param(lambda good, bad: f"{bad},{good}", id="valid-last"),
        pytest.param(lambda good, bad: f"{good}, {bad}", id="valid-first"),
        pytest.param(lambda good, bad: f"sha1=abc, {bad}, {good.lower()}", id="lower-case-hex"),
    ],
)
async def test_a_signature_header_with_several_values(
    signed_post: Post, recorder: Recorder, emulator: Emulator, arrange: Callable[[str, str], str]
) -> None:
    # the service signs with each of its keys; one of them is ours
    header = arrange(sign(emulator.access_keys[1]), sign("a key this app does not have"))

    response = await signed_post(asrs(X_ASRS_Signature=header), invocation())

    assert completion(response)["result"] == 5
    assert recorder.calls[0].authenticated_by == "signature"


@anyio_tests
async def test_signature_values_in_repeated_headers(
    signed_post: Post, recorder: Recorder, emulator: Emulator
) -> None:
    headers = [
        *asrs().items(),
        ("X-ASRS-Signature", sign("other")),
        ("X-ASRS-Signature", sign(emulator.access_keys[0])),
    ]

    response = await signed_post(headers, invocation())

    assert completion(response)["result"] == 5


@anyio_tests
async def test_a_verifier_configured_with_the_issuer(
    emulator: Emulator, emulator_url: str, recorder: Recorder, token: str
) -> None:
    verifier = UpstreamVerifier(
        audience=[AUDIENCE, "00000000-0000-0000-0000-00000000c11d"],
        issuer=f"{emulator_url}/{emulator.tenant_id}/",
    )
    async with app_client(verifier, recorder) as client:
        response = await client.post(
            "/upstream/add", headers=asrs(Authorization=f"Bearer {token}"), content=invocation()
        )

    assert completion(response)["result"] == 5
    assert emulator.log.entries("identity.openid")[0].path == (
        f"/{emulator.tenant_id}/.well-known/openid-configuration"
    )


@anyio_tests
async def test_allowed_object_ids_admit_the_service_identity(
    emulator: Emulator,
    emulator_url: str,
    recorder: Recorder,
    token: str,
    service_identity: Principal,
) -> None:
    verifier = UpstreamVerifier(
        audience=AUDIENCE,
        tenant_id=emulator.tenant_id,
        authority=emulator_url,
        allowed_object_ids=[service_identity.object_id.upper()],
    )
    async with app_client(verifier, recorder) as client:
        response = await client.post(
            "/upstream/add", headers=asrs(Authorization=f"Bearer {token}"), content=invocation()
        )

    assert completion(response)["result"] == 5


# -- rejected -----------------------------------------------------------------------------------


def _none_token(emulator: Emulator, token: str, key: rsa.RSAPrivateKey) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": tenant_kid(emulator)}
    return f"{segment(header)}.{segment(claims_of(token))}."


def _hs256_with_public_key(emulator: Emulator, token: str, key: rsa.RSAPrivateKey) -> str:
    public = jwt.PyJWK(emulator.jwks["keys"][0]).key
    pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "typ": "JWT", "kid": tenant_kid(emulator)}
    signing_input = f"{segment(header)}.{segment(claims_of(token))}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def _foreign_key_same_kid(emulator: Emulator, token: str, key: rsa.RSAPrivateKey) -> str:
    headers = {"kid": tenant_kid(emulator)}
    return jwt.encode(claims_of(token), key, algorithm="RS256", headers=headers)


def _tampered(emulator: Emulator, token: str, key: rsa.RSAPrivateKey) -> str:
    header, _, signature = token.split(".")
    claims = {**claims_of(token), "aud": AUDIENCE, "oid": OTHER_OBJECT_ID}
    return f"{header}.{segment(claims)}.{signature}"


TokenForger = Callable[[Emulator, str, rsa.RSAPrivateKey], str]


@anyio_tests
@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        pytest.param(_none_token, "algorithm is 'none'; only RS256", id="alg-none"),
        pytest.param(
            _hs256_with_public_key, "algorithm is 'HS256'; only RS256", id="hs256-public-key"
        ),
        pytest.param(_foreign_key_same_kid, "signature does not verify", id="foreign-key"),
        pytest.param(_tampered, "signature does not verify", id="tampered-claims"),
        pytest.param(lambda *_: "not.a-jwt", "not a well-formed JWT", id="not-a-jwt"),
    ],
)
async def test_forged_tokens_are_refused(
    post: Post,
    recorder: Recorder,
    emulator: Emulator,
    token: str,
    foreign_key: rsa.RSAPrivateKey,
    forge: TokenForger,
    reason: str,
) -> None:
    forged = forge(emulator, token, foreign_key)

    response = await post(asrs(Authorization=f"Bearer {forged}"), invocation())

    assert_refused(response, reason, secrets=[forged], token_presented=True)
    assert recorder.calls == []


@anyio_tests
@pytest.mark.parametrize(
    ("issue", "reason"),
    [
        pytest.param({"lifetime": -3600}, "expired at 20", id="expired"),
        pytest.param(
            {"audience": "api://another-app"},
            r"audience 'api://another-app' is not the configured audience \(api://contoso",
            id="wrong-audience",
        ),
        pytest.param(
            {"issuer_base": "https://sts.windows.net"},
            r"issuer 'https://sts.windows.net/[0-9a-f-]+/' is not the configured issuer",
            id="wrong-issuer",
        ),
    ],
)
async def test_tokens_with_wrong_claims_are_refused(
    post: Post,
    recorder: Recorder,
    emulator: Emulator,
    emulator_url: str,
    service_identity: Principal,
    issue: dict[str, Any],
    reason: str,
) -> None:
    wrong = emulator.issue_entra_token(
        service_identity, **{"audience": AUDIENCE, "issuer_base": emulator_url, **issue}
    )

    response = await post(asrs(Authorization=f"Bearer {wrong}"), invocation())

    assert_refused(response, reason, secrets=[wrong], token_presented=True)
    assert recorder.calls == []


@anyio_tests
@pytest.mark.parametrize("algorithm", ["RS384", "RS512", "PS256"])
async def test_tokens_signed_by_the_tenants_key_with_another_algorithm_are_refused(
    post: Post,
    recorder: Recorder,
    emulator: Emulator,
    emulator_url: str,
    service_identity: Principal,
    algorithm: Literal["RS384", "RS512", "PS256"],
) -> None:
    # Signed by the tenant's real key, valid in every claim: only the algorithm is wrong, and a
    # verifier that took any RSA algorithm the key supports would admit it.
    other = emulator.issue_entra_token(
        service_identity, audience=AUDIENCE, issuer_base=emulator_url, algorithm=algorithm
    )
    assert jwt.get_unverified_header(other)["kid"] == tenant_kid(emulator)

    response = await post(asrs(Authorization=f"Bearer {other}"), invocation())

    assert_refused(
        response, f"algorithm is '{algorithm}'; only RS256", secrets=[other], token_presented=True
    )
    assert recorder.calls == []


@anyio_tests
async def test_a_token_for_several_audiences_one_of_them_ours(
    post: Post, emulator: Emulator, emulator_url: str, service_identity: Principal
) -> None:
    audiences: Any = [{"not": "text"}, "api://another-app", AUDIENCE]
    token = emulator.issue_entra_token(
        service_identity, audience=audiences, issuer_base=emulator_url
    )

    response = await post(asrs(Authorization=f"Bearer {token}"), invocation())

    assert completion(response)["result"] == 5


@anyio_tests
async def test_a_token_slightly_past_expiry_is_within_the_leeway(
    post: Post, emulator: Emulator, emulator_url: str, service_identity: Principal
) -> None:
    token = emulator.issue_entra_token(
        service_identity, audience=AUDIENCE, issuer_base=emulator_url, lifetime=-30
    )

    response = await post(asrs(Authorization=f"Bearer {token}"), invocation())

    assert completion(response)["result"] == 5


@anyio_tests
async def test_a_token_for_another_identity_is_refused_with_allowed_object_ids(
    emulator: Emulator, emulator_url: str, recorder: Recorder, token: str
) -> None:
    verifier = UpstreamVerifier(
        audience=AUDIENCE,
        tenant_id=emulator.tenant_id,
        authority=emulator_url,
        allowed_object_ids=[OTHER_OBJECT_ID],
    )
    async with app_client(verifier, recorder) as client:
        response = await client.post(
            "/upstream/add", headers=asrs(Authorization=f"Bearer {token}"), content=invocation()
        )

    assert_refused(response, "object id '.*' is not in allowed_object_ids", secrets=[token])


@anyio_tests
@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        pytest.param(
            {"X_ASRS_Signature": "sha256=" + "0" * 64},
            "X-ASRS-Signature holds no HMAC-SHA256 of X-ASRS-Connection-Id",
            id="forged-signature",
        ),
        pytest.param(
            {},
            "no credentials: expected an 'Authorization: Bearer' Entra token or an X-ASRS-Signature header",
            id="no-credentials",
        ),
        pytest.param(
            {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
            "the Authorization header is not 'Bearer <token>'",
            id="basic-scheme",
        ),
    ],
)
async def test_requests_without_valid_credentials_are_refused(
    post: Post, recorder: Recorder, extra: dict[str, str], reason: str
) -> None:
    response = await post(asrs(**extra), invocation())

    assert_refused(response, reason, token_presented="Authorization" in extra)
    assert recorder.calls == []


@anyio_tests
async def test_a_signature_for_another_connection_is_refused(
    signed_post: Post, recorder: Recorder, emulator: Emulator
) -> None:
    key = emulator.access_keys[0]

    response = await signed_post(
        asrs(X_ASRS_Signature=sign(key, "another-connection")), invocation()
    )

    assert_refused(response, "X-ASRS-Signature holds no HMAC-SHA256", secrets=[key])
    assert recorder.calls == []


@anyio_tests
async def test_each_refusal_is_named_when_both_credentials_fail(
    post: Post, emulator: Emulator, emulator_url: str, service_identity: Principal
) -> None:
    expired = emulator.issue_entra_token(
        service_identity, audience=AUDIENCE, issuer_base=emulator_url, lifetime=-3600
    )
    headers = asrs(Authorization=f"Bearer {expired}", X_ASRS_Signature=sign("not-our-key"))

    response = await post(headers, invocation())

    assert_refused(response, "expired at .*; X-ASRS-Signature holds no HMAC", secrets=[expired])


@anyio_tests
async def test_a_valid_signature_makes_up_for_a_refused_token(
    post: Post, recorder: Recorder, emulator: Emulator
) -> None:
    headers = asrs(Authorization="Bearer not.a-jwt", X_ASRS_Signature=sign(emulator.access_keys[0]))

    response = await post(headers, invocation())

    assert completion(response)["result"] == 5
    assert recorder.calls[0].authenticated_by == "signature"


@anyio_tests
async def test_a_verifier_takes_only_the_credentials_it_is_configured_for(
    emulator: Emulator, emulator_url: str, recorder: Recorder, token: str
) -> None:
    entra_only = UpstreamVerifier(
        audience=AUDIENCE, tenant_id=emulator.tenant_id, authority=emulator_url
    )
    signature_only = UpstreamVerifier(access_keys=[Secret(emulator.access_keys[0])])
    signed = asrs(X_ASRS_Signature=sign(emulator.access_keys[0]))
    bearer = asrs(Authorization=f"Bearer {token}")

    async with app_client(entra_only, recorder) as client:
        refused_signature = await client.post("/upstream/add", headers=signed, content=invocation())
    async with app_client(signature_only, recorder) as client:
        refused_token = await client.post("/upstream/add", headers=bearer, content=invocation())
        nothing = await client.post("/upstream/add", headers=asrs(), content=invocation())

    assert_refused(
        refused_signature, "X-ASRS-Signature cannot be checked: this verifier has no access_keys"
    )
    assert_refused(refused_token, "without an audience this verifier takes none", secrets=[token])
    assert_refused(nothing, r"no credentials: expected an X-ASRS-Signature header\.$")


@anyio_tests
async def test_refused_requests_are_warned_once_then_at_debug(
    post: Post,
    emulator: Emulator,
    token: str,
    foreign_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "signalr_asgi_auth")
    # Each refusal says something else (another kid, another forged signature): an unauthenticated
    # caller chooses the message, so it must not choose how often we warn either.
    forged = [
        asrs(Authorization=f"Bearer {_unknown_kid_token(token, foreign_key, f'kid-{n}')}")
        for n in range(20)
    ]
    forged += [asrs(X_ASRS_Signature=sign(f"guess-{n}")) for n in range(20)]
    forged += [asrs()] * 10

    statuses = [(await post(headers, invocation())).status_code for headers in forged]

    assert statuses == [401] * 50
    refusals = [r for r in caplog.records if "Refused an upstream request" in r.getMessage()]
    assert [r.levelno for r in refusals] == [logging.WARNING] + [logging.DEBUG] * 49
    assert token not in caplog.text


def assert_refused(
    response: httpx2.Response,
    reason: str,
    *,
    secrets: Sequence[str] = (),
    token_presented: bool | None = None,
) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    if token_presented is not None:
        assert ('error="invalid_token"' in challenge) is token_presented
    body = response.json()
    assert body["code"] == "unauthorized"
    assert body["error"].startswith("The upstream request is not authenticated: ")
    assert re.search(reason, body["error"]), body["error"]
    for secret in secrets:
        assert secret not in response.text


# -- the tenant's keys: unknown kid, refetch interval, concurrency, outages ----------------------


def _unknown_kid_token(token: str, key: rsa.RSAPrivateKey, kid: str = "rolled-over-key") -> str:
    return jwt.encode(claims_of(token), key, algorithm="RS256", headers={"kid": kid})


@anyio_tests
async def test_an_unknown_kid_refetches_the_keys_once_per_interval(
    post: Post, emulator: Emulator, clock: Clock, token: str, foreign_key: rsa.RSAPrivateKey
) -> None:
    unknown = _unknown_kid_token(token, foreign_key)
    assert completion(await post(asrs(Authorization=f"Bearer {token}"), invocation()))
    assert emulator.log.count("identity.jwks") == 1
    clock.advance(61)  # the cache is now older than refetch_interval (60 s)

    first = await post(asrs(Authorization=f"Bearer {unknown}"), invocation())
    assert_refused(
        first,
        "signing key \\(kid 'rolled-over-key'\\) is not one of the tenant's keys at http://127.0.0.1:\\d+/.*/discovery/keys",
        secrets=[unknown],
    )
    assert emulator.log.count("identity.jwks") == 2

    clock.advance(30)  # within the interval: refused from the cache, no new fetch
    for _ in range(3):
        again = await post(asrs(Authorization=f"Bearer {unknown}"), invocation())
        assert_refused(again, "is not one of the tenant's keys", secrets=[unknown])
    assert emulator.log.count("identity.jwks") == 2

    clock.advance(31)
    await post(asrs(Authorization=f"Bearer {unknown}"), invocation())
    assert emulator.log.count("identity.jwks") == 3
    # only the key set is fetched again; the metadata (and its jwks_uri) stays cached
    assert emulator.log.count("identity.openid") == 1


@anyio_tests
async def test_a_key_published_after_the_cache_was_filled_is_found_by_the_refetch(
    post: Post, emulator: Emulator, clock: Clock, token: str, foreign_key: rsa.RSAPrivateKey
) -> None:
    # The first key set the verifier sees lacks the key that signs the token (a rollover).
    public = jwt.algorithms.RSAAlgorithm.to_jwk(foreign_key.public_key(), as_dict=True)
    emulator.inject("identity.jwks", body=json.dumps({"keys": [{**public, "kid": "old"}]}), times=1)

    before = await post(asrs(Authorization=f"Bearer {token}"), invocation())
    assert_refused(before, "is not one of the tenant's keys", secrets=[token])
    clock.advance(61)
    after = await post(asrs(Authorization=f"Bearer {token}"), invocation())

    assert completion(after)["result"] == 5
    assert emulator.log.count("identity.jwks") == 2


@anyio_tests
async def test_twenty_concurrent_requests_on_a_cold_cache_fetch_the_metadata_once(
    post: Post, recorder: Recorder, emulator: Emulator, token: str
) -> None:
    # A slow metadata answer keeps the first fetch in flight while the others arrive.
    emulator.inject("identity.openid", delay=0.3)
    statuses: list[int] = []

    async def one(number: int) -> None:
        body = invocation(arguments=[number, 1], invocation_id=str(number))
        response = await post(asrs(Authorization=f"Bearer {token}"), body)
        statuses.append(response.status_code)

    async with anyio.create_task_group() as tasks:
        for number in range(20):
            tasks.start_soon(one, number)

    assert statuses == [200] * 20
    assert sorted(call.arguments[0] for call in recorder.calls) == list(range(20))
    assert emulator.log.count("identity.openid") == 1
    assert emulator.log.count("identity.jwks") == 1


@anyio_tests
async def test_concurrent_requests_with_a_new_kid_share_one_refetch(
    post: Post, emulator: Emulator, clock: Clock, token: str, foreign_key: rsa.RSAPrivateKey
) -> None:
    public = jwt.algorithms.RSAAlgorithm.to_jwk(foreign_key.public_key(), as_dict=True)
    emulator.inject("identity.jwks", body=json.dumps({"keys": [{**public, "kid": "old"}]}), times=1)
    assert_refused(await post(asrs(Authorization=f"Bearer {token}"), invocation()), "kid")
    clock.advance(61)
    # The refetch is slow: every request arrives while it is in flight, and waits for it.
    emulator.inject("identity.jwks", delay=0.3)
    statuses: list[int] = []

    async def one() -> None:
        response = await post(asrs(Authorization=f"Bearer {token}"), invocation())
        statuses.append(response.status_code)

    async with anyio.create_task_group() as tasks:
        for _ in range(20):
            tasks.start_soon(one)

    assert statuses == [200] * 20
    assert emulator.log.count("identity.jwks") == 2


@anyio_tests
async def test_unreachable_metadata_is_a_503_unless_a_signature_vouches(
    post: Post, recorder: Recorder, emulator: Emulator, token: str
) -> None:
    emulator.inject("identity.openid", status=500)

    unavailable = await post(asrs(Authorization=f"Bearer {token}"), invocation())
    signed = asrs(Authorization=f"Bearer {token}", X_ASRS_Signature=sign(emulator.access_keys[0]))
    vouched = await post(signed, invocation())

    assert unavailable.status_code == 503
    assert unavailable.headers["retry-after"] == "5"
    assert unavailable.json()["code"] == "service_error"
    assert re.search(
        r"OpenID metadata from http://127.0.0.1:\d+/.*/.well-known/openid-configuration got 500",
        unavailable.json()["error"],
    )
    assert token not in unavailable.text
    assert completion(vouched)["result"] == 5
    assert [call.authenticated_by for call in recorder.calls] == ["signature"]


@anyio_tests
async def test_failing_metadata_with_nothing_cached_is_fetched_once_per_hold_back(
    post: Post, recorder: Recorder, emulator: Emulator, clock: Clock, token: str
) -> None:
    # Only the test's advances move time: 51 requests on a loaded machine can take over the 1 s
    # hold-back of real time, and a second fetch would then be right, not a bug.
    clock.freeze()
    emulator.inject("identity.openid", status=500)
    bearer = asrs(Authorization=f"Bearer {token}")

    first = [(await post(bearer, invocation())).status_code for _ in range(25)]
    concurrent: list[int] = []

    async def one() -> None:
        concurrent.append((await post(bearer, invocation())).status_code)

    async with anyio.create_task_group() as tasks:
        for _ in range(25):
            tasks.start_soon(one)
    held = await post(bearer, invocation())

    assert first + concurrent == [503] * 50
    assert emulator.log.count("identity.openid") == 1  # one fetch, not one per request
    assert "got 500" in held.json()["error"]
    assert 1 <= int(held.headers["retry-after"]) <= 5

    clock.advance(1.5)  # the first hold-back is over: one request asks again, and fails again
    assert (await post(bearer, invocation())).status_code == 503
    assert (await post(bearer, invocation())).status_code == 503
    assert emulator.log.count("identity.openid") == 2

    emulator.clear_faults()
    clock.advance(1.5)  # the hold-back doubled: not over yet
    assert (await post(bearer, invocation())).status_code == 503
    assert emulator.log.count("identity.openid") == 2
    clock.advance(1)
    assert completion(await post(bearer, invocation()))["result"] == 5
    assert emulator.log.count("identity.openid") == 3
    assert recorder.calls != []


@anyio_tests
async def test_day_old_keys_are_refreshed_and_kept_when_the_refresh_fails(
    post: Post,
    emulator: Emulator,
    emulator_url: str,
    clock: Clock,
    service_identity: Principal,
) -> None:
    token = emulator.issue_entra_token(
        service_identity, audience=AUDIENCE, issuer_base=emulator_url, lifetime=3 * 86400
    )
    bearer = asrs(Authorization=f"Bearer {token}")
    assert completion(await post(bearer, invocation()))

    clock.advance(86400 + 1)
    emulator.inject("identity.openid", status=503, times=1)
    kept = await post(bearer, invocation())
    clock.advance(61)
    refreshed = await post(bearer, invocation())

    assert completion(kept)["result"] == completion(refreshed)["result"] == 5
    assert emulator.log.count("identity.openid") == 3
    assert emulator.log.count("identity.jwks") == 2


# -- malformed requests -------------------------------------------------------------------------


@anyio_tests
@pytest.mark.parametrize(
    ("change", "body", "reason"),
    [
        pytest.param(
            {"X_ASRS_User_Claims": '{"role": '},
            invocation(),
            "X-ASRS-User-Claims starts like JSON but is not valid JSON",
            id="bad-claims-json",
        ),
        pytest.param(
            {"X_ASRS_User_Claims": '{"role": 7}'},
            invocation(),
            "X-ASRS-User-Claims gives 'role' a value that is not text",
            id="claims-json-not-text",
        ),
        pytest.param(
            {"X_ASRS_User_Claims": '{"a": ' + "[" * 100_000},
            invocation(),
            "X-ASRS-User-Claims starts like JSON but is not valid JSON",
            id="claims-json-too-deep",
        ),
        pytest.param(
            {"X_ASRS_User_Claims": "no pairs here"},
            invocation(),
            "X-ASRS-User-Claims is not a list of 'type: value' pairs",
            id="claims-not-pairs",
        ),
        pytest.param(
            {"X_ASRS_Category": "events"},
            invocation(),
            "the category 'events' is neither connections nor messages",
            id="unknown-category",
        ),
        pytest.param(
            {"X_ASRS_Category": "connections", "X_ASRS_Event": "connecting"},
            b"",
            "the connections event 'connecting' is neither connected nor disconnected",
            id="unknown-connection-event",
        ),
        pytest.param(
            {"X_ASRS_Hub": " "}, invocation(), "X-ASRS-Hub is missing or empty", id="blank-hub"
        ),
        pytest.param({}, b"add(2, 3)", "the body is not JSON", id="body-not-json"),
        pytest.param({}, b"[1, 2]", "the body is not a JSON object", id="body-not-object"),
        pytest.param({}, b"\xff\xfe", "the body is not JSON", id="body-not-utf8"),
        pytest.param(
            {},
            b'{"type": 1, "target": "add", "arguments": {"a": 1}}',
            "arguments are not a JSON array",
            id="arguments-not-array",
        ),
        pytest.param(
            {},
            b'{"type": 1, "target": "add", "invocationId": 7, "arguments": []}',
            "invocationId is not a string",
            id="invocation-id-not-string",
        ),
        pytest.param(
            {},
            invocation(target="delete"),
            "the body's target 'delete' is not the event 'add'",
            id="target-not-event",
        ),
        pytest.param(
            {},
            b'{"type": 6}',
            "the body is not an invocation message \\(type 6\\)",
            id="not-an-invocation",
        ),
    ],
)
async def test_malformed_requests_get_400(
    signed_post: Post,
    recorder: Recorder,
    emulator: Emulator,
    change: dict[str, str],
    body: bytes,
    reason: str,
) -> None:
    headers = asrs(X_ASRS_Signature=sign(emulator.access_keys[0]), **change)

    assert_malformed(await signed_post(headers, body), recorder, reason)


def assert_malformed(response: httpx2.Response, recorder: Recorder, reason: str) -> None:
    """A 400 whose error matches ``reason``, the handler never called."""
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    assert re.search(f"^Malformed upstream request: .*{reason}", response.json()["error"])
    assert recorder.calls == []


@anyio_tests
async def test_a_missing_connection_id_gets_400(post: Post, recorder: Recorder, token: str) -> None:
    response = await post(asrs(connection_id=None, Authorization=f"Bearer {token}"), invocation())

    assert response.status_code == 400
    assert "the header X-ASRS-Connection-Id is missing or empty" in response.json()["error"]
    assert recorder.calls == []


@anyio_tests
async def test_a_repeated_connection_id_gets_400(signed_post: Post, emulator: Emulator) -> None:
    headers = [*asrs(X_ASRS_Signature=sign(emulator.access_keys[0])).items()]
    headers.append(("X-ASRS-Connection-Id", "another-connection"))

    response = await signed_post(headers, invocation())

    assert response.status_code == 400
    assert "X-ASRS-Connection-Id is given more than once" in response.json()["error"]


@anyio_tests
async def test_malformed_headers_are_refused_before_credentials_are_checked(
    post: Post, emulator: Emulator
) -> None:
    response = await post(asrs(X_ASRS_Category="events"), invocation())

    assert response.status_code == 400
    assert emulator.log.count("identity.openid") == 0


@anyio_tests
async def test_a_body_over_the_default_limit_gets_413(
    signed_post: Post, recorder: Recorder, emulator: Emulator
) -> None:
    # One captured signature could otherwise carry any body: it covers only the connection id.
    padding = b" " * (1024 * 1024)
    response = await signed_post(
        asrs(X_ASRS_Signature=sign(emulator.access_keys[0])), invocation() + padding
    )

    assert response.status_code == 413, response.text
    assert response.json()["code"] == "payload_too_large"
    assert "1048576 bytes" in response.json()["error"]
    assert recorder.calls == []


@anyio_tests
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_large_body_is_read_only_up_to_the_limit(
    emulator: Emulator, recorder: Recorder, declared: bool
) -> None:
    verifier = UpstreamVerifier(access_keys=emulator.access_keys, max_body_size=1000)
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for number in range(1000):  # 100 kB in all
            sent.append(number)
            yield b" " * 100

    headers = asrs(X_ASRS_Signature=sign(emulator.access_keys[0]))
    if declared:
        headers["Content-Length"] = str(100 * 1000)
    async with app_client(verifier, recorder) as client:
        response = await client.post("/upstream/add", headers=headers, content=chunks())

    assert response.status_code == 413, response.text
    assert "1000 bytes" in response.json()["error"]
    assert len(sent) <= 12  # the reading stopped at the limit (a declared length: before it)
    assert recorder.calls == []


@anyio_tests
async def test_a_body_at_the_limit_is_read(emulator: Emulator, recorder: Recorder) -> None:
    body = invocation()
    verifier = UpstreamVerifier(access_keys=emulator.access_keys, max_body_size=len(body))
    headers = asrs(X_ASRS_Signature=sign(emulator.access_keys[0]))
    async with app_client(verifier, recorder) as client:
        response = await client.post("/upstream/add", headers=headers, content=body)

    assert completion(response)["result"] == 5


@anyio_tests
async def test_a_body_that_trickles_in_is_cut_off(emulator: Emulator, recorder: Recorder) -> None:
    verifier = UpstreamVerifier(access_keys=emulator.access_keys, body_timeout=0.3)

    async def trickle() -> AsyncIterator[bytes]:
        yield invocation()[:5]
        await anyio.sleep(30)
        yield invocation()[5:]  # pragma: no cover

    headers = asrs(X_ASRS_Signature=sign(emulator.access_keys[0]))
    started = anyio.current_time()
    async with app_client(verifier, recorder) as client:
        response = await client.post("/upstream/add", headers=headers, content=trickle())

    assert response.status_code == 408, response.text
    assert response.json()["code"] == "request_timeout"
    assert response.json()["error"] == (
        "The upstream request's body did not arrive within 0.3 s (body_timeout)."
    )
    assert anyio.current_time() - started < 5
    assert recorder.calls == []


@anyio_tests
async def test_the_body_is_read_only_after_the_credentials_pass(post: Post) -> None:
    response = await post(asrs(), b"not json at all")

    assert response.status_code == 401


# -- what the handler sees and what the service gets back ----------------------------------------


@anyio_tests
async def test_claims_query_and_user_are_read(
    signed_post: Post, recorder: Recorder, emulator: Emulator
) -> None:
    name_id = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"
    claims = f"{name_id}: alice, name: Doe, Jane, role: admin, role: ops, exp: 1700000000"
    query = "?hub=chat&id=abc123&access_token=eyJ.secret.token&tag=a&tag=b&empty="
    headers = asrs(
        X_ASRS_Signature=sign(emulator.access_keys[0]),
        X_ASRS_User_Claims=claims,
        X_ASRS_Client_Query=query,
    )

    await signed_post(headers, invocation())

    [call] = recorder.calls
    assert dict(call.claims) == {
        name_id: ("alice",),
        "name": ("Doe, Jane",),
        "role": ("admin", "ops"),
        "exp": ("1700000000",),
    }
    assert call.claim("name") == "Doe, Jane"
    assert call.claim("missing") is None
    assert dict(call.query) == {
        "hub": ("chat",),
        "id": ("abc123",),
        "tag": ("a", "b"),
        "empty": ("",),
    }
    assert "secret" not in repr(call)


_HEADER_TEXT = st.text(
    alphabet=st.sampled_from([",", ":", " ", "\t", "a", "b", "é", "用", "\x85", "="]), max_size=8
)


@settings(max_examples=300, deadline=None)
@given(
    claims=st.dictionaries(
        _HEADER_TEXT, _HEADER_TEXT | st.lists(_HEADER_TEXT, min_size=1, max_size=3)
    ),
    roles=st.lists(_HEADER_TEXT, max_size=3),
    user_id=st.none() | _HEADER_TEXT,
)
def test_claims_the_library_signs_reach_the_upstream_handler_as_they_were(
    claims: dict[str, Any], roles: list[str], user_id: str | None
) -> None:
    try:
        payload = build_claims(user_id=user_id, claims=claims, roles=roles)
    except InvalidInputError:
        return  # refused at negotiate, with a 400 that says why
    # What the service writes (the emulator writes it as Azure does), read as the verifier reads it.
    raw = [
        (b"x-asrs-connection-id", CONNECTION.encode()),
        (b"x-asrs-hub", b"chat"),
        (b"x-asrs-category", b"messages"),
        (b"x-asrs-event", b"add"),
        (b"x-asrs-user-claims", claims_header(payload).encode()),
    ]
    if user_id is not None:
        raw.append((b"x-asrs-user-id", user_id.encode()))
    head = read_head(Headers(raw=raw))

    expected = {
        name: tuple(value if isinstance(value, list) else [value])
        for name, value in payload.items()
    }
    assert dict(head.claims) == expected


@anyio_tests
@pytest.mark.parametrize(
    ("claims", "user", "reason"),
    [
        pytest.param(
            "asrs.s.uid: alice, asrs.s.uid: root",
            "alice",
            "names asrs.s.uid more than once",
            id="a-second-user-id",
        ),
        pytest.param(
            "tier: gold, asrs.s.uid: root",
            "alice",
            "asrs.s.uid 'root', which is not the user 'alice'",
            id="another-user-id",
        ),
    ],
)
async def test_claims_that_contradict_the_service_get_400(
    signed_post: Post, recorder: Recorder, emulator: Emulator, claims: str, user: str, reason: str
) -> None:
    headers = asrs(
        X_ASRS_Signature=sign(emulator.access_keys[0]),
        X_ASRS_User_Claims=claims,
        X_ASRS_User_Id=user,
    )

    response = await signed_post(headers, invocation())

    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]
    assert recorder.calls == []


@anyio_tests
async def test_claims_as_a_json_object_and_a_utf8_user_id(
    signed_post: Post, recorder: Recorder, emulator: Emulator
) -> None:
    headers: list[tuple[str, str | bytes]] = [
        *asrs(X_ASRS_Signature=sign(emulator.access_keys[0])).items(),
        ("X-ASRS-User-Claims", '{"role": ["admin", "ops"], "tier": "gold"}'),
    ]
    headers = [(k, v) for k, v in headers if k != "X-ASRS-User-Id"]
    headers.append(("X-ASRS-User-Id", "Zoë".encode()))

    await signed_post(headers, invocation())

    [call] = recorder.calls
    assert dict(call.claims) == {"role": ("admin", "ops"), "tier": ("gold",)}
    assert call.user_id == "Zoë"


@anyio_tests
async def test_a_send_without_invocation_id_gets_204(
    signed_post: Post, recorder: Recorder, emulator: Emulator
) -> None:
    headers = asrs(event="notify", X_ASRS_Signature=sign(emulator.access_keys[0]))

    response = await signed_post(
        headers, invocation("notify", arguments=[1, 2], invocation_id=None)
    )

    assert response.status_code == 204
    assert response.content == b""
    assert recorder.calls[0].invocation_id is None
    assert recorder.calls[0].arguments == (1, 2)


@anyio_tests
@pytest.mark.parametrize(
    ("event", "body", "error"),
    [
        pytest.param("connected", b"", None, id="connected-empty-body"),
        pytest.param("connected", b'{"type":10}', None, id="connected"),
        pytest.param("Disconnected", b'{"type":11}', None, id="disconnected-cleanly"),
        pytest.param(
            "disconnected",
            b'{"Type":11,"Error":"Connection closed with an error."}',
            "Connection closed with an error.",
            id="disconnected-pascal-case",
        ),
    ],
)
async def test_connection_events(
    signed_post: Post,
    recorder: Recorder,
    emulator: Emulator,
    event: str,
    body: bytes,
    error: str | None,
) -> None:
    headers = asrs(
        category="connections", event=event, X_ASRS_Signature=sign(emulator.access_keys[0])
    )

    response = await signed_post(headers, body)

    assert response.status_code == 204
    [call] = recorder.calls
    assert (call.category, call.event, call.error) == ("connections", event.lower(), error)
    assert call.arguments == ()


@anyio_tests
async def test_a_hub_method_error_fails_the_invocation(
    signed_post: Post, emulator: Emulator
) -> None:
    headers = asrs(event="fail", X_ASRS_Signature=sign(emulator.access_keys[0]))

    response = await signed_post(headers, invocation(target="fail", invocation_id="42"))

    assert completion(response) == {"type": 3, "invocationId": "42", "error": "the room is full"}


@anyio_tests
async def test_a_response_from_the_handler_passes_through(
    signed_post: Post, emulator: Emulator
) -> None:
    headers = asrs(event="raw", X_ASRS_Signature=sign(emulator.access_keys[0]))

    response = await signed_post(headers, invocation(target="raw"))

    assert (response.status_code, response.text) == (202, "raw")


@anyio_tests
async def test_only_post_is_answered(verifier: UpstreamVerifier, recorder: Recorder) -> None:
    async with app_client(verifier, recorder) as client:
        response = await client.get("/upstream/add", headers=asrs())

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("invocation_id", "result", "status", "body"),
    [
        ("1", {"ok": True}, 200, '{"type":3,"invocationId":"1","result":{"ok":true}}\x1e'),
        ("2", None, 200, '{"type":3,"invocationId":"2","result":null}\x1e'),
        (None, None, 204, ""),
        (None, ["a", 1], 200, '["a",1]'),
    ],
)
def test_upstream_response(
    invocation_id: str | None, result: object, status: int, body: str
) -> None:
    call = UpstreamRequest(
        hub="chat",
        category="messages",
        event="add",
        connection_id=CONNECTION,
        invocation_id=invocation_id,
        authenticated_by="signature",
    )

    response = upstream_response(call, result)

    assert (response.status_code, bytes(response.body).decode()) == (status, body)


@anyio_tests
async def test_the_fastapi_form_from_the_docstring(
    verifier: UpstreamVerifier, token: str, emulator: Emulator
) -> None:
    app = FastAPI()

    @app.post("/upstream/{event}")
    async def upstream(request: Request) -> Response:
        try:
            call = await verifier.verify(request)
        except SignalRAuthError as exc:
            return upstream_error_response(exc)
        return upstream_response(call, sum(call.arguments))

    transport = httpx2.ASGITransport(app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://app") as client:
        accepted = await client.post(
            "/upstream/add", headers=asrs(Authorization=f"Bearer {token}"), content=invocation()
        )
        refused = await client.post("/upstream/add", headers=asrs(), content=invocation())

    assert completion(accepted)["result"] == 5
    assert refused.status_code == 401


# -- configuration ------------------------------------------------------------------------------

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({}, "needs a way to check requests", id="nothing"),
        pytest.param({"tenant_id": TENANT}, "audience is required", id="tenant-without-audience"),
        pytest.param({"audience": AUDIENCE}, "Give tenant_id .* or issuer", id="audience-alone"),
        pytest.param(
            {"audience": AUDIENCE, "tenant_id": TENANT, "issuer": "https://sts.windows.net/x/"},
            "Give tenant_id",
            id="tenant-and-issuer",
        ),
        pytest.param(
            {"audience": AUDIENCE, "issuer": "https://x/", "authority": "https://y"},
            "authority only with tenant_id",
            id="issuer-and-authority",
        ),
        pytest.param(
            {"audience": AUDIENCE, "tenant_id": "common"},
            "one tenant's id, not 'common'",
            id="multi-tenant",
        ),
        pytest.param(
            {"audience": AUDIENCE, "tenant_id": "contoso.onmicrosoft.com"},
            "tenant_id takes directory GUIDs",
            id="tenant-domain",
        ),
        pytest.param(
            {"audience": AUDIENCE, "tenant_id": TENANT, "authority": "http://login.example.com"},
            "authority must be an https:// URL",
            id="plain-http-authority",
        ),
        pytest.param(
            {"audience": AUDIENCE, "issuer": "http://sts.example.com/t/"},
            "issuer must be an https:// URL",
            id="plain-http-issuer",
        ),
        pytest.param({"audience": [""], "tenant_id": TENANT}, "audience must be", id="empty-aud"),
        pytest.param({"access_keys": ["k", ""]}, "access_keys must hold", id="empty-key"),
        pytest.param({"access_keys": 7}, "access_keys must be a list", id="keys-not-list"),
        pytest.param(
            {"audience": AUDIENCE, "tenant_id": TENANT, "allowed_object_ids": "abc"},
            "allowed_object_ids must be a list",
            id="object-ids-string",
        ),
        pytest.param(
            {"access_keys": "k", "refetch_interval": 0},
            None,
            id="refetch-interval-unused-without-entra",
        ),
        pytest.param(
            {"audience": AUDIENCE, "tenant_id": TENANT, "refetch_interval": 0},
            "refetch_interval must be more than zero",
            id="refetch-interval-zero",
        ),
    ],
)
def test_configuration_errors(options: dict[str, Any], message: str | None) -> None:
    if message is None:
        UpstreamVerifier(**options)
        return
    with pytest.raises(ConfigurationError, match=message):
        UpstreamVerifier(**options)


def test_public_cloud_defaults_and_a_secret_free_repr() -> None:
    verifier = UpstreamVerifier(
        audience=AUDIENCE, tenant_id=TENANT.upper(), access_keys="s3cr3t-access-key"
    )

    text = repr(verifier)

    assert "s3cr3t" not in text
    assert "access_keys=1" in text
    assert f"https://login.microsoftonline.com/{TENANT}/v2.0" in text
    assert f"https://sts.windows.net/{TENANT}/" in text


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
def test_a_client_written_invocation_id_is_logged_on_one_line(
    protocol: Literal["json", "messagepack"], caplog: pytest.LogCaptureFixture
) -> None:
    forged = "7\n2026-01-01 INFO signalr_asgi_auth: accepted\x1b[2J" * 5
    call = UpstreamRequest(
        hub="chat",
        category="messages",
        event="echo",
        connection_id="c1",
        invocation_id=forged,
        authenticated_by="signature",
        protocol=protocol,
    )
    with caplog.at_level(logging.WARNING, logger="signalr_asgi_auth"):
        upstream_response(call, object())
    [record] = caplog.records
    assert record.getMessage().isprintable()
    assert "result for 7\\n2026-01-01 INFO" in record.getMessage()
    assert len(record.getMessage()) < 150


@pytest.mark.parametrize("result", [float("inf"), float("nan"), object()])
def test_a_result_json_cannot_hold_becomes_a_completion_error(result: object) -> None:
    from signalr_asgi_auth import UpstreamRequest, upstream_response

    call = UpstreamRequest(
        hub="chat",
        category="messages",
        event="echo",
        connection_id="c1",
        invocation_id="7",
        authenticated_by="signature",
    )
    response = upstream_response(call, result)
    assert response.status_code == 200
    body = bytes(response.body).decode()
    assert body.endswith("\x1e")
    message = json.loads(body[:-1])
    assert message == {
        "type": 3,
        "invocationId": "7",
        "error": "The server's result could not be written as JSON.",
    }
