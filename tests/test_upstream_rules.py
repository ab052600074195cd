"""Upstream verification rules that scripts/mutation found unasserted: each check of a bearer token
on its own (tenant, not-before), with every other claim right, so that removing that one check is
seen; the tokens are real RS256 JWTs whose keys a real OpenID metadata route on 127.0.0.1 serves."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from signalr_asgi_auth._errors import ConfigurationError
from signalr_asgi_auth._upstream import UpstreamVerifier, upstream_endpoint
from signalr_asgi_auth.emulator import Emulator, Principal, serve_in_thread
from tests.faults import asgi_request, closed_port_url
from tests.test_upstream import (
    AUDIENCE,
    Clock,
    Recorder,
    app_client,
    asrs,
    assert_refused,
    b64,
    completion,
    invocation,
    sign,
)

anyio_tests = pytest.mark.anyio

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
KID = "authority-key-1"
ACCESS_KEY = "upstream-rules-access-key"


class Authority:
    """An Entra-shaped authority on 127.0.0.1: OpenID metadata and a JWKS for one RSA key, and
    tokens signed with it carrying whatever claims a test names. Entra signs every tenant's tokens
    with the same keys, so a signature alone never says which tenant a token is for."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.url = ""
        self.jwks_fetches = 0
        self.metadata: object = None
        """What the metadata route answers instead of the real document, when set."""
        self.jwks: object = None
        """What the key set route answers instead of the real one, when set."""

    def app(self) -> Starlette:
        async def metadata(request: Request) -> Response:
            tenant = request.path_params["tenant"]
            if isinstance(self.metadata, bytes):
                return Response(self.metadata, media_type="application/json")
            if self.metadata is not None:
                return JSONResponse(self.metadata)
            return JSONResponse(
                {
                    "issuer": f"{self.url}/{tenant}/v2.0",
                    "jwks_uri": f"{self.url}/{tenant}/discovery/v2.0/keys",
                }
            )

        async def keys(request: Request) -> JSONResponse:
            self.jwks_fetches += 1
            if self.jwks is not None:
                return JSONResponse(self.jwks)
            return JSONResponse({"keys": [self.jwk()]})

        return Starlette(
            routes=[
                Route("/{tenant}/.well-known/openid-configuration", metadata),
                Route("/{tenant}/v2.0/.well-known/openid-configuration", metadata),
                Route("/{tenant}/discovery/v2.0/keys", keys),
            ]
        )

    def jwk(self, **changes: object) -> dict[str, object]:
        """The public key as the JWKS lists it, with ``changes`` (``None`` leaves one out)."""
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        entry = {**jwk, "kid": KID, "use": "sig", "alg": "RS256", **changes}
        return {name: value for name, value in entry.items() if value is not None}

    def token(self, *, kid: str = KID, **changes: Any) -> str:
        """A token for ``AUDIENCE`` from ``TENANT``, valid now for an hour, with ``changes``
        (a value of ``None`` leaves that claim out)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": AUDIENCE,
            "iss": f"{self.url}/{TENANT}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "tid": TENANT,
            "oid": str(uuid.uuid4()),
        }
        claims.update(changes)
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": kid})

    def verifier(self, clock: Clock | None = None) -> UpstreamVerifier:
        return UpstreamVerifier(
            audience=AUDIENCE, tenant_id=TENANT, authority=self.url, clock=clock or Clock()
        )


@pytest.fixture(scope="module")
def authority() -> Iterator[Authority]:
    served = Authority()
    with serve_in_thread(served.app()) as url:
        served.url = url
        yield served


async def post_token(verifier: UpstreamVerifier, token: str) -> tuple[Any, Recorder]:
    recorder = Recorder()
    async with app_client(verifier, recorder) as client:
        response = await client.post(
            "/upstream/add", headers=asrs(Authorization=f"Bearer {token}"), content=invocation()
        )
    return response, recorder


# -- tenant -------------------------------------------------------------------------------------


@anyio_tests
async def test_the_authoritys_own_token_is_accepted(authority: Authority) -> None:
    response, recorder = await post_token(authority.verifier(), authority.token())

    assert completion(response)["result"] == 5
    assert recorder.calls[0].authenticated_by == "entra"


@anyio_tests
@pytest.mark.parametrize(
    ("tid", "shown"),
    [
        pytest.param(OTHER_TENANT, f"'{OTHER_TENANT}'", id="another-tenant"),
        pytest.param(None, "None", id="no-tid"),
        pytest.param(7, "7", id="not-text"),
    ],
)
async def test_a_token_for_another_tenant_is_refused_though_signed_and_issued_right(
    authority: Authority, tid: object, shown: str
) -> None:
    # Same key, same issuer as our tenant's tokens: only the tenant claim is wrong.
    token = authority.token(tid=tid)

    response, recorder = await post_token(authority.verifier(), token)

    assert_refused(response, f"is for tenant {shown}, not {TENANT}", secrets=[token])
    assert recorder.calls == []


@anyio_tests
async def test_the_tenant_claim_is_compared_without_regard_to_case(authority: Authority) -> None:
    response, _ = await post_token(authority.verifier(), authority.token(tid=TENANT.upper()))

    assert completion(response)["result"] == 5


# -- not before ---------------------------------------------------------------------------------


@anyio_tests
async def test_a_token_not_yet_valid_is_refused(authority: Authority) -> None:
    token = authority.token(nbf=int(time.time()) + 600)

    response, recorder = await post_token(authority.verifier(), token)

    assert_refused(response, "is not valid before 20", secrets=[token], token_presented=True)
    assert recorder.calls == []


@anyio_tests
async def test_not_before_is_given_the_leeway(authority: Authority) -> None:
    clock = Clock()
    clock.freeze()
    verifier = authority.verifier(clock)
    starts = int(clock()) + 30

    inside, _ = await post_token(verifier, authority.token(nbf=starts))
    clock.advance(-60)  # now + 60 s of leeway is 30 s short of nbf
    outside, _ = await post_token(verifier, authority.token(nbf=starts))

    assert completion(inside)["result"] == 5
    assert_refused(outside, "is not valid before")


@anyio_tests
async def test_not_before_at_exactly_now_plus_the_leeway_is_valid(authority: Authority) -> None:
    clock = Clock()
    clock.freeze()
    now = int(clock())
    clock.advance(now - clock())  # whole seconds, so that now + 60 s is exactly nbf

    response, _ = await post_token(authority.verifier(clock), authority.token(nbf=now + 60))

    assert completion(response)["result"] == 5


@anyio_tests
async def test_an_entra_only_verifier_asks_for_a_token_only(authority: Authority) -> None:
    recorder = Recorder()
    async with app_client(authority.verifier(), recorder) as client:
        response = await client.post("/upstream/add", headers=asrs(), content=invocation())

    assert response.json()["error"] == (
        "The upstream request is not authenticated: no credentials: expected an "
        "'Authorization: Bearer' Entra token."
    )


@anyio_tests
async def test_an_issuer_refusal_names_the_metadatas_issuer_too(authority: Authority) -> None:
    authority.metadata = {
        "issuer": "https://metadata-issuer/",
        "jwks_uri": f"{authority.url}/{TENANT}/discovery/v2.0/keys",
    }
    try:
        response, _ = await post_token(authority.verifier(), authority.token(iss="https://x/"))
    finally:
        authority.metadata = None

    assert response.json()["error"] == (
        "The upstream request is not authenticated: the bearer token's issuer 'https://x/' is not "
        f"the configured issuer ({authority.url}/{TENANT}/v2.0, https://metadata-issuer/)."
    )


@anyio_tests
@pytest.mark.parametrize("nbf", ["soon", True])
async def test_a_not_before_that_is_not_a_number_is_refused(
    authority: Authority, nbf: object
) -> None:
    response, _ = await post_token(authority.verifier(), authority.token(nbf=nbf))

    assert_refused(response, r": the bearer token's 'nbf' claim is not a number\.$")


@anyio_tests
async def test_an_emulator_token_before_its_time_is_refused(
    emulator: Emulator, emulator_url: str
) -> None:
    # The emulator's managed-identity token, seen by a verifier whose clock is an hour behind.
    principal: Principal = emulator.add_principal("signalr-resource")
    token = emulator.issue_entra_token(principal, audience=AUDIENCE, issuer_base=emulator_url)
    clock = Clock()
    clock.advance(-3600)
    verifier = UpstreamVerifier(
        audience=AUDIENCE, tenant_id=emulator.tenant_id, authority=emulator_url, clock=clock
    )

    response, _ = await post_token(verifier, token)

    assert_refused(response, "is not valid before", secrets=[token])


# -- each refusal, word for word ----------------------------------------------------------------


def _signed(authority: Authority, header: dict[str, Any], payload: bytes) -> str:
    """A JWS signed with the tenant's key over any header and payload bytes, as no JWT library
    would write it."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    signature = authority.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def _garbled_payload(authority: Authority) -> str:
    return _signed(authority, {"alg": "RS256", "kid": KID}, b"not json")


def _kid_not_text(authority: Authority) -> str:
    claims = jwt.decode(authority.token(), options={"verify_signature": False})
    return _signed(authority, {"alg": "RS256", "kid": 7}, json.dumps(claims).encode())


def _foreign_signature(authority: Authority) -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"aud": AUDIENCE, "iss": f"{authority.url}/{TENANT}/v2.0", "exp": now + 60}
    return jwt.encode(claims, other, algorithm="RS256", headers={"kid": KID})


@anyio_tests
@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        pytest.param(
            lambda a: f"Basic {a.token()}", "the Authorization header is not 'Bearer <token>'"
        ),
        pytest.param(lambda a: "Bearer ", "the Authorization header is not 'Bearer <token>'"),
        pytest.param(lambda a: "Bearer not-a-jwt", "the bearer token is not a well-formed JWT"),
        pytest.param(
            lambda a: f"Bearer {a.token(kid='')}",
            "the bearer token has no 'kid' header naming its signing key",
        ),
        pytest.param(
            lambda a: f"Bearer {_kid_not_text(a)}",
            "the bearer token is not a well-formed JWT",  # PyJWT refuses a kid that is not text
        ),
        pytest.param(
            lambda a: f"Bearer {_foreign_signature(a)}",
            "the bearer token's signature does not verify with the tenant's key",
        ),
        pytest.param(
            lambda a: f"Bearer {_garbled_payload(a)}",
            "the bearer token cannot be read (DecodeError)",
        ),
    ],
    ids=["basic", "empty", "not-a-jwt", "empty-kid", "kid-not-text", "foreign-key", "garbled"],
)
async def test_each_token_refusal_says_why_in_full(
    authority: Authority, authorization: Any, reason: str
) -> None:
    recorder = Recorder()
    async with app_client(authority.verifier(), recorder) as client:
        response = await client.post(
            "/upstream/add",
            headers=asrs(Authorization=authorization(authority)),
            content=invocation(),
        )

    assert response.status_code == 401, response.text
    assert response.json()["error"] == f"The upstream request is not authenticated: {reason}."
    assert recorder.calls == []


@anyio_tests
async def test_a_bearer_token_to_a_verifier_of_signatures_only_says_why_in_full(
    authority: Authority,
) -> None:
    response, _ = await post_signed({"Authorization": f"Bearer {authority.token()}"})

    # The signature it carries still admits it; without one it is refused, saying why.
    assert completion(response)["result"] == 5
    recorder = Recorder()
    async with app_client(UpstreamVerifier(access_keys=[ACCESS_KEY]), recorder) as client:
        refused = await client.post(
            "/upstream/add",
            headers=asrs(Authorization=f"Bearer {authority.token()}"),
            content=invocation(),
        )
    assert refused.json()["error"] == (
        "The upstream request is not authenticated: a bearer token was sent, but without an "
        "audience this verifier takes none."
    )


@anyio_tests
async def test_audience_and_issuer_refusals_name_every_accepted_value(authority: Authority) -> None:
    verifier = UpstreamVerifier(
        audience=[AUDIENCE, "api://second"], tenant_id=TENANT, authority=authority.url
    )

    audience, _ = await post_token(verifier, authority.token(aud="api://third"))
    issuer, _ = await post_token(verifier, authority.token(iss="https://elsewhere/"))

    assert audience.json()["error"] == (
        "The upstream request is not authenticated: the bearer token's audience 'api://third' is "
        f"not the configured audience ({AUDIENCE}, api://second)."
    )
    assert issuer.json()["error"] == (
        "The upstream request is not authenticated: the bearer token's issuer "
        "'https://elsewhere/' is not the configured issuer "
        f"({authority.url}/{TENANT}/v2.0)."
    )


@anyio_tests
async def test_a_verifier_given_the_issuer_takes_that_issuer_only(authority: Authority) -> None:
    # The metadata names another issuer; only a verifier configured by tenant trusts the issuer
    # its metadata names, one configured by issuer trusts exactly that issuer.
    issuer = f"{authority.url}/{TENANT}/v2.0"
    verifier = UpstreamVerifier(audience=AUDIENCE, issuer=issuer, clock=Clock())
    authority.metadata = {
        "issuer": "https://metadata-issuer/",
        "jwks_uri": f"{authority.url}/{TENANT}/discovery/v2.0/keys",
    }
    try:
        configured, _ = await post_token(verifier, authority.token())
        named, _ = await post_token(verifier, authority.token(iss="https://metadata-issuer/"))
    finally:
        authority.metadata = None

    assert completion(configured)["result"] == 5
    assert_refused(named, "issuer 'https://metadata-issuer/' is not the configured issuer")


@anyio_tests
async def test_the_scheme_is_case_insensitive_and_spaces_may_follow_it(
    authority: Authority,
) -> None:
    recorder = Recorder()
    async with app_client(authority.verifier(), recorder) as client:
        for authorization in (f"bearer {authority.token()}", f"Bearer   {authority.token()}"):
            response = await client.post(
                "/upstream/add", headers=asrs(Authorization=authorization), content=invocation()
            )
            assert completion(response)["result"] == 5
    assert [call.authenticated_by for call in recorder.calls] == ["entra", "entra"]


@anyio_tests
async def test_an_object_id_that_is_not_text_is_no_principal(authority: Authority) -> None:
    response, recorder = await post_token(authority.verifier(), authority.token(oid=7))

    assert completion(response)["result"] == 5
    assert recorder.calls[0].principal_id is None


@anyio_tests
async def test_the_issuers_clock_does_not_decide_the_issue_time(authority: Authority) -> None:
    # iat ahead of this machine's clock (the issuer's runs fast): nbf and exp decide, on the
    # verifier's clock, so the token is good.
    now = int(time.time())
    token = authority.token(iat=now + 600, nbf=now - 10)

    response, _ = await post_token(authority.verifier(), token)

    assert completion(response)["result"] == 5


def test_localhost_is_a_local_authority() -> None:
    verifier = UpstreamVerifier(audience=AUDIENCE, tenant_id=TENANT, authority="http://LocalHost:9")

    assert f"http://localhost:9/{TENANT}/v2.0" in repr(verifier)


def test_an_authority_that_is_not_a_url_is_named() -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"^Invalid value for authority: it must be an absolute http:// or https:// URL\.$",
    ):
        UpstreamVerifier(audience=AUDIENCE, tenant_id=TENANT, authority="not a url")


@anyio_tests
async def test_a_key_set_url_without_a_host_is_never_fetched(authority: Authority) -> None:
    authority.metadata = {"issuer": "x", "jwks_uri": "https:///keys"}
    try:
        response, _ = await post_token(authority.verifier(), authority.token())
    finally:
        authority.metadata = None

    assert response.status_code == 503, response.text
    assert "The metadata's jwks_uri must be an https:// URL" in response.json()["error"]


# -- expiry -------------------------------------------------------------------------------------


@anyio_tests
@pytest.mark.parametrize("exp", [None, "tomorrow", True], ids=["absent", "text", "boolean"])
async def test_a_token_without_a_numeric_expiry_is_refused(
    authority: Authority, exp: object
) -> None:
    token = authority.token(exp=exp)

    response, recorder = await post_token(authority.verifier(), token)

    assert_refused(response, r": the bearer token has no numeric 'exp' claim\.$", secrets=[token])
    assert recorder.calls == []


@anyio_tests
async def test_expiry_is_given_exactly_the_leeway(authority: Authority) -> None:
    clock = Clock()
    clock.freeze()
    verifier = authority.verifier(clock)
    now = int(clock())
    clock.advance(now - clock())  # whole seconds, so that exp + 60 s is exactly now

    last, _ = await post_token(verifier, authority.token(nbf=now - 3600, exp=now - 60))
    late, _ = await post_token(verifier, authority.token(nbf=now - 3600, exp=now - 61))

    assert completion(last)["result"] == 5
    assert_refused(late, "the bearer token expired at")


@anyio_tests
async def test_a_token_without_nbf_is_valid_from_the_start(authority: Authority) -> None:
    response, _ = await post_token(authority.verifier(), authority.token(nbf=None))

    assert completion(response)["result"] == 5


# -- the body -----------------------------------------------------------------------------------


@anyio_tests
async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read() -> None:
    # The body that comes is short: only the declared length can have refused it.
    verifier = UpstreamVerifier(access_keys=[ACCESS_KEY], max_body_size=1000)
    recorder = Recorder()
    app = Starlette(
        routes=[Route("/upstream/{event}", upstream_endpoint(verifier, recorder), methods=["POST"])]
    )
    headers = [
        (name.encode(), value.encode())
        for name, value in asrs(X_ASRS_Signature=sign(ACCESS_KEY), Content_Length="2000").items()
    ]

    reply = await asgi_request(app, "POST", "/upstream/add", headers=headers, body=b"x" * 10)

    assert reply.status == 413
    assert reply.json()["error"] == (
        "The upstream request's body is larger than 1000 bytes (max_body_size)."
    )
    assert recorder.calls == []


# -- the tenant's keys -------------------------------------------------------------------------


@anyio_tests
async def test_an_unknown_kid_fetches_the_keys_again_once_refetch_interval_has_passed(
    authority: Authority,
) -> None:
    clock = Clock()
    clock.freeze()
    verifier = authority.verifier(clock)
    assert completion((await post_token(verifier, authority.token()))[0])["result"] == 5
    fetched = authority.jwks_fetches

    clock.advance(59.5)
    early, _ = await post_token(verifier, authority.token(kid="rolled-over"))
    assert authority.jwks_fetches == fetched  # within the 60 s: refused from the cache
    clock.advance(0.5)  # exactly refetch_interval since the last fetch
    due, _ = await post_token(verifier, authority.token(kid="rolled-over"))

    assert_refused(early, "kid 'rolled-over'")
    assert_refused(due, "kid 'rolled-over'")
    assert authority.jwks_fetches == fetched + 1


@anyio_tests
@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(["issuer", "jwks_uri"], id="not-an-object"),
        pytest.param({"jwks_uri": "http://127.0.0.1:9/keys"}, id="no-issuer"),
        pytest.param({"issuer": "https://sts.windows.net/x/"}, id="no-jwks-uri"),
        pytest.param({"issuer": "https://sts.windows.net/x/", "jwks_uri": ""}, id="empty-jwks-uri"),
        pytest.param({"issuer": 7, "jwks_uri": "http://127.0.0.1:9/keys"}, id="issuer-not-text"),
    ],
)
async def test_metadata_without_issuer_or_key_set_is_a_503_saying_so(
    authority: Authority, metadata: object
) -> None:
    authority.metadata = metadata
    try:
        response, recorder = await post_token(authority.verifier(), authority.token())
    finally:
        authority.metadata = None

    assert response.status_code == 503, response.text
    assert response.json()["error"] == "The tenant's OpenID metadata has no 'issuer' or 'jwks_uri'."
    assert recorder.calls == []


@anyio_tests
async def test_metadata_that_is_not_json_is_a_503_saying_so(authority: Authority) -> None:
    authority.metadata = b"<html>sign in</html>"
    try:
        response, _ = await post_token(authority.verifier(), authority.token())
    finally:
        authority.metadata = None

    assert response.status_code == 503, response.text
    assert response.json()["error"] == (
        f"The tenant's OpenID metadata at {authority.url}/{TENANT}/.well-known/"
        "openid-configuration is not JSON."
    )


@anyio_tests
async def test_an_unreachable_authority_is_a_503_naming_the_failure() -> None:
    closed = closed_port_url()
    verifier = UpstreamVerifier(audience=AUDIENCE, tenant_id=TENANT, authority=closed)
    token = Authority().token()

    response, _ = await post_token(verifier, token)

    assert response.status_code == 503, response.text
    assert response.json()["error"] == (
        f"Could not fetch the tenant's OpenID metadata from {closed}/{TENANT}/.well-known/"
        "openid-configuration (ConnectError)."
    )


@anyio_tests
async def test_the_apps_own_http_client_fetches_the_keys(authority: Authority) -> None:
    async with httpx2.AsyncClient() as http:
        verifier = UpstreamVerifier(
            audience=AUDIENCE, tenant_id=TENANT, authority=authority.url, http_client=http
        )
        response, _ = await post_token(verifier, authority.token())

    assert completion(response)["result"] == 5


@anyio_tests
async def test_a_listed_private_key_is_skipped(authority: Authority) -> None:
    # A key set that leaks a private key: it is not a verification key, and is not used as one.
    private = RSAAlgorithm.to_jwk(authority.key, as_dict=True)
    listed = {**private, "kid": KID, "use": "sig", "alg": "RS256"}
    response = await post_with_key_set(authority, {"keys": [listed, authority.jwk(kid="other")]})

    assert_refused(response, f"signing key \\(kid '{KID}'\\) is not one of the tenant's keys")


@anyio_tests
async def test_a_listed_key_that_does_not_parse_is_skipped(authority: Authority) -> None:
    response = await post_with_key_set(
        authority, {"keys": [authority.jwk(n="!!not base64!!"), authority.jwk(kid="other")]}
    )

    assert_refused(response, f"signing key \\(kid '{KID}'\\) is not one of the tenant's keys")


@anyio_tests
async def test_a_key_set_url_that_is_not_https_is_never_fetched(authority: Authority) -> None:
    # Keys fetched over plain http from anywhere but this machine could be anyone's.
    authority.metadata = {"issuer": "x", "jwks_uri": "http://keys.example/discovery/keys"}
    try:
        response, _ = await post_token(authority.verifier(), authority.token())
    finally:
        authority.metadata = None

    assert response.status_code == 503, response.text
    assert response.json()["error"] == (
        "The metadata's jwks_uri must be an https:// URL (http:// only on 127.0.0.1, ::1 or "
        "localhost, for a local emulator), got 'http://keys.example/discovery/keys'."
    )


async def post_with_key_set(authority: Authority, jwks: object) -> Any:
    authority.jwks = jwks
    try:
        response, recorder = await post_token(authority.verifier(), authority.token())
    finally:
        authority.jwks = None
    assert recorder.calls == []
    return response


@anyio_tests
@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"use": "enc"}, id="encryption-key"),
        pytest.param({"alg": "RS384"}, id="another-algorithm"),
        pytest.param({"kty": "oct"}, id="not-rsa"),
    ],
)
async def test_a_key_that_is_not_an_rs256_signing_key_does_not_verify_tokens(
    authority: Authority, changes: dict[str, object]
) -> None:
    # The tenant's key is listed, but not as a key for RS256 signatures; another key keeps the
    # key set usable, so the token's own key is what is missing.
    other = authority.jwk(kid="another-key")
    response = await post_with_key_set(
        authority, {"keys": ["not a key", authority.jwk(**changes), other]}
    )

    assert_refused(response, f"signing key \\(kid '{KID}'\\) is not one of the tenant's keys")


@anyio_tests
@pytest.mark.parametrize("kid", [None, "", 7], ids=["absent", "empty", "not-text"])
async def test_a_key_without_kid_is_skipped(authority: Authority, kid: object) -> None:
    response = await post_with_key_set(authority, {"keys": [authority.jwk(kid=kid)]})

    assert response.status_code == 503, response.text
    assert response.json()["error"] == (
        f"The JWKS at {authority.url}/{TENANT}/discovery/v2.0/keys holds no RSA signing key "
        "with a 'kid'."
    )


@anyio_tests
async def test_a_key_set_without_a_keys_list_is_a_503(authority: Authority) -> None:
    response = await post_with_key_set(authority, [authority.jwk()])

    assert response.status_code == 503, response.text
    assert response.json()["error"] == (
        f"The JWKS at {authority.url}/{TENANT}/discovery/v2.0/keys has no 'keys' list."
    )


@anyio_tests
async def test_the_listed_keys_use_and_algorithm_may_be_left_out(authority: Authority) -> None:
    authority.jwks = {"keys": [authority.jwk(use=None, alg=None)]}
    try:
        response, _ = await post_token(authority.verifier(), authority.token())
    finally:
        authority.jwks = None

    assert completion(response)["result"] == 5


# -- the claims header --------------------------------------------------------------------------


async def post_signed(headers: dict[str, str]) -> tuple[Any, Recorder]:
    recorder = Recorder()
    async with app_client(UpstreamVerifier(access_keys=[ACCESS_KEY]), recorder) as client:
        response = await client.post(
            "/upstream/add",
            headers={**asrs(X_ASRS_Signature=sign(ACCESS_KEY)), **headers},
            content=invocation(),
        )
    return response, recorder


@anyio_tests
@pytest.mark.parametrize(
    ("claims", "repeated"),
    [
        pytest.param("asrs.s.aut: Bearer, role: admin, asrs.s.aut: Basic", "asrs.s.aut", id="aut"),
        pytest.param("asrs.s.ut: x, asrs.s.ut: y", "asrs.s.ut", id="ut"),
        pytest.param('{"asrs.s.a": ["one", "two"]}', "asrs.s.a", id="json-list"),
    ],
)
async def test_a_system_claim_given_twice_gets_400(claims: str, repeated: str) -> None:
    # The service writes each of its own claims once; a second one was smuggled in a value.
    response, recorder = await post_signed({"X-ASRS-User-Claims": claims})

    assert response.status_code == 400, response.text
    assert f"X-ASRS-User-Claims names {repeated} more than once" in response.json()["error"]
    assert recorder.calls == []


@anyio_tests
async def test_the_right_digest_under_another_algorithms_name_is_refused() -> None:
    digest = sign(ACCESS_KEY).partition("=")[2]

    response, recorder = await post_signed({"X-ASRS-Signature": f"md5={digest}"})

    assert response.status_code == 401, response.text
    assert recorder.calls == []


@anyio_tests
async def test_an_app_claim_given_twice_is_a_list() -> None:
    response, recorder = await post_signed(
        {"X-ASRS-User-Claims": "role: admin, asrs.s.uid: alice, role: ops"}
    )

    assert completion(response)["result"] == 5
    assert recorder.calls[0].claims["role"] == ("admin", "ops")


@anyio_tests
@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        pytest.param("role: admin: ops", {"role": ("admin: ops",)}, id="colon-in-a-value"),
        pytest.param(
            "a: 1, b: 2, c: 3,4",
            {"a": ("1",), "b": ("2",), "c": ("3,4",)},
            id="comma-in-the-third-value",
        ),
        pytest.param("tier: gold,silver", {"tier": ("gold,silver",)}, id="comma-in-the-only-value"),
    ],
)
async def test_claim_values_with_separators_reach_the_handler_whole(
    claims: str, expected: dict[str, tuple[str, ...]]
) -> None:
    response, recorder = await post_signed({"X-ASRS-User-Claims": claims})

    assert completion(response)["result"] == 5
    assert dict(recorder.calls[0].claims) == expected


@anyio_tests
@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        pytest.param("admin", "X-ASRS-User-Claims is not a list of 'type: value' pairs", id="list"),
        pytest.param(
            '{"role": ',
            "X-ASRS-User-Claims starts like JSON but is not valid JSON",
            id="broken-json",
        ),
        pytest.param(
            '{"role": ["admin", 7]}',
            "X-ASRS-User-Claims gives 'role' a value that is not text",
            id="json-number",
        ),
    ],
)
async def test_a_claims_header_that_cannot_be_read_gets_400_saying_why(
    claims: str, problem: str
) -> None:
    response, recorder = await post_signed({"X-ASRS-User-Claims": claims})

    assert response.status_code == 400, response.text
    assert response.json()["error"] == f"Malformed upstream request: {problem}."
    assert recorder.calls == []
