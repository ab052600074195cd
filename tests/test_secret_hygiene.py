"""Secret hygiene: run the scenarios with every logger at DEBUG and look for every secret in
everything the library shows.

Secrets: every Entra token and temporary access key the emulator issued (read from its response
bodies as they leave it), the resource's access keys, the identity header, a client secret, the
client tokens we minted, and the tokens presented to the upstream endpoint. Places: log records
(message, arguments, traceback), exceptions (message, chain, traceback), reprs of our objects,
``health()``, and our HTTP answers. A negotiate answer carries its client token by design, and
nothing else.

Strict on what is ours (the ``signalr_asgi_auth`` loggers, our exceptions, reprs and bodies). For
the third-party loggers (azure-identity, azure-core, MSAL, httpx2/httpcore2, uvicorn) the test
asserts what holds today and says so: azure-core's HTTP logging policy redacts the identity header
and the bearer token, and nothing else there prints a token or a key.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import pytest
from azure.identity import ManagedIdentityCredential
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signalr_asgi_auth import (
    ConfigurationError,
    NotReadyError,
    SignalRAuth,
    SignalRAuthError,
    SignalRAuthMiddleware,
    negotiate_endpoint,
)
from signalr_asgi_auth._connection_string import parse_connection_string
from signalr_asgi_auth._credentials import credential_from_settings
from signalr_asgi_auth._upstream import UpstreamVerifier, upstream_endpoint
from signalr_asgi_auth._upstream_request import UpstreamRequest
from signalr_asgi_auth.emulator import Emulator, serve_in_thread

from .faults import running_app
from .support import principal_with_role, wait_for_status

pytestmark = pytest.mark.anyio

LOGGERS = [
    "",
    "signalr_asgi_auth",
    "azure",
    "azure.identity",
    "azure.core",
    "msal",
    "httpx2",
    "httpcore2",
    "urllib3",
    "uvicorn",
    "uvicorn.error",
]
CLIENT_SECRET = "qT8Q~Zx9cLientS3cret.wXyZ_42-mnopQRS"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0fe6b397-164e-480d-a198-f559fba2bf31"
UPSTREAM_AUDIENCE = "api://contoso-upstream"
SHORT: dict[str, Any] = {
    "key_refresh_interval": 0.15,
    "key_lifetime": 0.7,
    "key_expiry_margin": 0.1,
    "retry_initial_delay": 0.05,
    "retry_max_delay": 0.2,
}


class RecordingApp:
    """The emulator's app, keeping every response body: the way to learn every secret it issued."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def keep(message: Message) -> None:
            if message["type"] == "http.response.body":
                self.bodies.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, keep)

    def serving_started(self, url: str) -> None:
        self.app.serving_started(url)

    def serving_stopped(self, url: str) -> None:
        self.app.serving_stopped(url)

    def issued(self) -> set[str]:
        """Every token and key in the emulator's answers."""
        found: set[str] = set()
        for body in self.bodies:
            try:
                document = json.loads(body)
            except ValueError:
                continue
            found |= set(_values(document, {"access_token", "AccessKey", "token"}))
        return found


def _values(document: object, names: set[str]) -> Iterator[str]:
    if isinstance(document, dict):
        for name, value in document.items():
            if name in names and isinstance(value, str):
                yield value
            yield from _values(value, names)
    elif isinstance(document, list):
        for item in document:
            yield from _values(item, names)


@pytest.fixture
def recorder(emulator: Emulator) -> RecordingApp:
    return RecordingApp(emulator.app)


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(token_lifetime=3)  # every key refresh fetches an Entra token too


@pytest.fixture
def emulator_url(emulator: Emulator, recorder: RecordingApp) -> Iterator[str]:
    with serve_in_thread(recorder) as url:
        yield url


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@dataclass
class Evidence:
    """Everything the library showed, split into ours and theirs."""

    ours: list[str] = field(default_factory=list)
    theirs: list[str] = field(default_factory=list)
    negotiated: list[str] = field(default_factory=list)  # 200 answers: a client token, by design

    def show(self, *objects: object) -> None:
        """The repr and str of our objects; for exceptions, the whole formatted chain too."""
        for item in objects:
            self.ours += [repr(item), str(item)]
            if isinstance(item, BaseException):
                self.ours.append("".join(traceback.format_exception(item)))

    def answer(self, reply: httpx2.Response) -> None:
        negotiated = reply.status_code == 200 and reply.url.path.endswith("/negotiate")
        (self.negotiated if negotiated else self.ours).append(reply.text)
        self.ours.append(repr(dict(reply.headers)))

    def logs(self, records: Iterable[logging.LogRecord]) -> None:
        for record in records:
            text = record.getMessage()
            if record.exc_info:
                text += "".join(traceback.format_exception(*record.exc_info))
            if record.stack_info:
                text += record.stack_info
            ours = record.name.startswith("signalr_asgi_auth")
            (self.ours if ours else self.theirs).append(f"{record.name}: {text}")

    def leaks(self, secrets: Iterable[str], where: list[str]) -> list[str]:
        found = []
        for secret in secrets:
            for part in _fragments(secret):
                for text in where:
                    if part in text:
                        start = text.index(part)
                        found.append(f"...{text[max(0, start - 80) : start]}<SECRET>")
        return found


def _fragments(secret: str) -> set[str]:
    """What would show that ``secret`` was printed, even cut short: the whole of it, and its ends
    (for a JWT, its signature and the signature's ends; the header and claims are not secret)."""
    if secret.count(".") == 2:
        signature = secret.rsplit(".", 1)[1]
        return {secret, signature, signature[:32], signature[-32:]}
    if len(secret) >= 20:
        return {secret, secret[:16], secret[-16:]}
    return {secret}


def _negotiate_app(auth: SignalRAuth) -> Starlette:
    async def health(request: Request) -> Response:
        return JSONResponse(auth.health())

    return Starlette(
        routes=[
            Route(
                "/chat/negotiate",
                negotiate_endpoint(
                    "chat",
                    user_id=lambda request: request.query_params.get("user"),
                    # no claim without a blob: an empty value is refused (X-ASRS-User-Claims)
                    claims=lambda request: (
                        {"blob": blob} if (blob := request.query_params.get("blob")) else None
                    ),
                ),
            ),
            Route("/health", health),
        ],
        middleware=[Middleware(SignalRAuthMiddleware, auth=auth)],
    )


async def _until(condition: Callable[[], bool], within: float = 5.0) -> None:
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - polling a snapshot on purpose
            await anyio.sleep(0.02)


async def test_entra_mode_through_refresh_faults_expiry_and_recovery(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    recorder: RecordingApp,
    debug_logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    principal = principal_with_role(emulator)
    credential = ManagedIdentityCredential(client_id=principal.client_id, retry_total=0)
    auth = SignalRAuth(endpoint=emulator_url, credential=credential, **SHORT)
    seen = Evidence()

    def failures() -> int:
        count: int = auth.health()["access_key"]["consecutive_failures"]
        return count

    def look(client_reply: httpx2.Response | None = None) -> None:
        """Everything of ours there is to see right now."""
        assert auth._runtime is not None
        runtime = auth._runtime.endpoints.home
        assert runtime.keys is not None
        assert runtime.entra is not None
        seen.show(auth, auth.options, auth.context, runtime.issuer, runtime.entra, runtime.keys)
        seen.show(runtime.adapter, runtime.service)
        seen.show(runtime.entra._token, runtime.keys._key, auth.health())
        if runtime.keys.attempts.last_error is not None:
            seen.show(runtime.keys.attempts.last_error)
        if runtime.entra.attempts.last_error is not None:
            seen.show(runtime.entra.attempts.last_error)
        try:
            runtime.keys.current()
        except NotReadyError as exc:
            seen.show(exc)
        if client_reply is not None:
            seen.answer(client_reply)

    try:
        async with running_app(_negotiate_app(auth)) as client:
            # Startup and negotiation: good and bad answers.
            for query in ("user=alice", "user=", "user=bob&blob=" + "x" * 5000):
                look(await client.post(f"/chat/negotiate?{query}"))
            look(await client.get("/health"))
            await anyio.sleep(0.4)  # refreshes
            look()
            # 401, 403, 500 from the service, and a 401 from the identity endpoint (the wrong
            # X-IDENTITY-HEADER: one more secret that must not show).
            for start_fault in (
                lambda: emulator.inject("signalr.access_key", status=401),
                lambda: emulator.unassign(emulator.assignments[-1]),
                lambda: monkeypatch.setenv("IDENTITY_HEADER", "Wr0ngIdentityHeaderValue-123456"),
                lambda: emulator.inject("signalr.access_key", status=500),
            ):
                start_fault()
                await _until(lambda: failures() > 0)
                look(await client.post("/chat/negotiate?user=alice"))
                emulator.clear_faults()
                monkeypatch.setenv("IDENTITY_HEADER", emulator.identity_header)
                if not emulator.assignments:
                    emulator.assign(principal, "SignalR App Server")
                await _until(lambda: failures() == 0)
            # Expiry: 503 with the cause, then recovery.
            emulator.inject("signalr.access_key", status=500)
            await wait_for_status(auth, "unavailable")
            look(await client.post("/chat/negotiate?user=alice"))
            look(await client.get("/health"))
            emulator.clear_faults()
            await wait_for_status(auth, "ok")
            look(await client.post("/chat/negotiate?user=alice"))
    finally:
        await anyio.to_thread.run_sync(credential.close)
    seen.show(auth, auth.health())
    seen.logs(debug_logs.records)

    client_tokens = [json.loads(body)["accessToken"] for body in seen.negotiated]
    issued = recorder.issued()
    assert len([t for t in issued if t.count(".") == 2]) >= 5  # Entra tokens, from the emulator
    assert len(emulator.issued_keys) >= 5
    secrets = {
        *issued,
        *(key.access_key for key in emulator.issued_keys),
        *emulator.access_keys,
        emulator.identity_header,
        "Wr0ngIdentityHeaderValue-123456",
    }
    assert seen.leaks(secrets | set(client_tokens), seen.ours) == []
    assert seen.leaks(secrets, seen.negotiated) == []
    # Third parties at DEBUG: azure-core logs each request's headers with the secret ones redacted.
    assert seen.leaks(secrets | set(client_tokens), seen.theirs) == []
    assert any("X-IDENTITY-HEADER': 'REDACTED'" in text for text in seen.theirs)
    # The scenario did what it says.
    assert sum("503" in text or "expired" in text for text in seen.ours) > 0
    assert any("403 Forbidden" in text for text in seen.ours)
    assert any("401 Unauthorized" in text for text in seen.ours)
    assert any("X-IDENTITY-HEADER" in text for text in seen.ours)  # the identity 401's detail


async def test_access_key_mode(
    emulator: Emulator, emulator_url: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    seen = Evidence()
    key = emulator.access_keys[0]
    text = emulator.connection_string(emulator_url, auth_type=None)
    auth = SignalRAuth.from_connection_string(text)
    seen.show(auth, parse_connection_string(text), auth.options)
    async with running_app(_negotiate_app(auth)) as client:
        for query in ("user=alice", "user=", "blob=" + "x" * 5000):
            seen.answer(await client.post(f"/chat/negotiate?{query}"))
        seen.answer(await client.get("/health"))
        assert auth._runtime is not None
        runtime = auth._runtime.endpoints.home
        keys = runtime.issuer._keys
        assert keys is not None
        seen.show(auth.context, runtime, runtime.issuer, keys, keys.current())
    # Connection strings that go wrong around the key.
    for broken in (
        f"Endpoint={emulator_url};AccessKey={key}Version=1.0;",  # a ';' missing
        f"Endpoint={emulator_url};AccessKey={key};AccessKey={key};",
        f"Endpoint={emulator_url};AccessKey={key};Port=x{key}",
        f"Endpoint={emulator_url}{key};AccessKey={key};",
        f"Endpoint={emulator_url};AccessKey={key};Version={key};",
        f"Endpoint={emulator_url};AuthType={key};AccessKey={key};",
    ):
        with pytest.raises(ConfigurationError) as caught:
            SignalRAuth.from_connection_string(broken)
        seen.show(caught.value)
    seen.logs(debug_logs.records)
    client_tokens = [json.loads(body)["accessToken"] for body in seen.negotiated]
    assert len(client_tokens) == 1
    assert seen.leaks({key, *client_tokens}, seen.ours) == []
    assert seen.leaks({key}, seen.negotiated) == []


def test_an_app_registration_with_a_client_secret(
    debug_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The configuration path only: starting it would reach out to login.microsoftonline.com."""
    seen = Evidence()
    good = (
        f"Endpoint=https://contoso.service.signalr.net;AuthType=azure.app;ClientId={CLIENT_ID};"
        f"TenantId={TENANT};ClientSecret={CLIENT_SECRET};Version=1.0;"
    )
    settings = parse_connection_string(good)
    auth = SignalRAuth.from_connection_string(good)
    credential = credential_from_settings(settings)
    seen.show(settings, auth, auth.health(), type(credential).__name__)
    monkeypatch.setenv(
        "AZURE_AUTHORITY_HOST", "http://not-tls.example"
    )  # refused by azure-identity
    for broken in (
        good,  # fine as a string; the credential refuses the authority host
        good.replace(";Version=1.0;", f";ClientCert=/tmp/{CLIENT_SECRET}.pem;"),
        good.replace(f";ClientSecret={CLIENT_SECRET}", f";ClientSecret={CLIENT_SECRET}TenantId=x"),
        good.replace("AuthType=azure.app", "AuthType=azure.msi"),
        good.replace(f"TenantId={TENANT};", ""),
        good.replace("AuthType=azure.app", f"AuthType={CLIENT_SECRET}"),
        good.replace(";ClientSecret=", ";ClientSecret=;ClientSecret="),
    ):
        try:
            credential_from_settings(parse_connection_string(broken))
        except SignalRAuthError as exc:
            seen.show(exc)
        else:
            pytest.fail(f"accepted: {broken}")
    seen.logs(debug_logs.records)
    assert len(seen.ours) >= 14
    assert seen.leaks({CLIENT_SECRET}, seen.ours) == []
    assert seen.leaks({CLIENT_SECRET}, seen.theirs) == []


async def test_upstream_rejections(
    emulator: Emulator, emulator_url: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    seen = Evidence()
    identity = emulator.add_principal("signalr-resource")
    verifier = UpstreamVerifier(
        audience=UPSTREAM_AUDIENCE,
        tenant_id=emulator.tenant_id,
        authority=emulator_url,
        access_keys=emulator.access_keys,
        allowed_object_ids=[emulator.principals[0].object_id],
    )
    seen.show(verifier)

    async def handler(call: UpstreamRequest) -> object:
        return None

    app: ASGIApp = Starlette(
        routes=[Route("/upstream/{event}", upstream_endpoint(verifier, handler), methods=["POST"])]
    )
    presented = [
        emulator.issue_entra_token(identity, audience=UPSTREAM_AUDIENCE, issuer_base=emulator_url),
        emulator.issue_entra_token(identity, audience="https://other", issuer_base=emulator_url),
        emulator.issue_entra_token(identity, audience=UPSTREAM_AUDIENCE, lifetime=-3600),
        emulator.issue_entra_token(identity, audience=UPSTREAM_AUDIENCE),  # another issuer
    ]
    headers = {
        "X-ASRS-Connection-Id": "QnH9uZ3x0pLk2vYw8sTtEA",
        "X-ASRS-Hub": "chat",
        "X-ASRS-Category": "messages",
        "X-ASRS-Event": "add",
    }
    transport = httpx2.ASGITransport(app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://app") as client:
        for token in presented:
            for extra in (
                {"Authorization": f"Bearer {token}"},
                {"Authorization": f"Bearer {token}", "X-ASRS-Signature": "sha256=00"},
                {"Authorization": f"Basic {token}"},
                {"Authorization": f"Bearer {token}", "X-ASRS-Event": ""},
            ):
                reply = await client.post("/upstream/add", headers={**headers, **extra})
                assert reply.status_code in (400, 401)
                seen.answer(reply)
    seen.logs(debug_logs.records)
    assert sum("not authenticated" in text for text in seen.ours) >= 12
    assert seen.leaks({*presented, *emulator.access_keys}, seen.ours) == []
