"""The emulator's upstream: client invocations and connection events POSTed to an app that checks
them with the library's own UpstreamVerifier and upstream_endpoint, served on 127.0.0.1; what the
client gets back; routing by templates and patterns; the settings' checks."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from signalr_asgi_auth import emulator as emulator_package
from signalr_asgi_auth._upstream import HubMethodError, UpstreamVerifier, upstream_endpoint
from signalr_asgi_auth._upstream_request import UpstreamRequest
from signalr_asgi_auth.emulator import (
    UPSTREAM_ROUTE,
    Emulator,
    EmulatorConfigError,
    ManagedIdentityAuth,
    UpstreamSettings,
    UpstreamTemplate,
    load_config,
    parse_config,
    serve_in_thread,
)
from signalr_asgi_auth.emulator._cli import banner

from ..support import auth_for, principal_with_role
from .helpers import TIMEOUT, wait_until
from .hub_client import HubSocket, hub_socket, negotiate

AUDIENCE = "api://chat-upstream"
SLOW = 1.5
"""Seconds the slow route takes: longer than the short timeouts below, short enough for shutdown."""

anyio_tests = pytest.mark.anyio


# -- the app behind the upstream URL ------------------------------------------------------------


class Recorder:
    """The app's upstream handler (it runs in the app server's thread): keeps every call; ``add``
    sums, ``fail`` fails, anything else answers nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[UpstreamRequest] = []

    async def __call__(self, call: UpstreamRequest) -> object:
        with self._lock:
            self._calls.append(call)
        if call.event == "add":
            return sum(call.arguments)
        if call.event == "fail":
            message = "the room is full"
            raise HubMethodError(message)
        return None

    @property
    def calls(self) -> list[UpstreamRequest]:
        with self._lock:
            return list(self._calls)

    def events(self) -> list[str]:
        return [call.event for call in self.calls]


async def broken(request: Request) -> Response:
    return PlainTextResponse("boom", status_code=500)


async def not_hub_protocol(request: Request) -> Response:
    return PlainTextResponse("all good")


async def slow(request: Request) -> Response:
    await anyio.sleep(SLOW)
    return Response(status_code=204)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def signatures(emulator: Emulator) -> UpstreamVerifier:
    """Accepts X-ASRS-Signature made with the resource's keys, and nothing else."""
    return UpstreamVerifier(access_keys=emulator.access_keys)


@pytest.fixture
def bearer_only(emulator: Emulator, emulator_url: str) -> UpstreamVerifier:
    """Accepts the emulator tenant's Entra tokens for AUDIENCE, and no signature."""
    return UpstreamVerifier(audience=AUDIENCE, tenant_id=emulator.tenant_id, authority=emulator_url)


def serve_app(verifier: UpstreamVerifier, recorder: Recorder) -> Any:
    endpoint = upstream_endpoint(verifier, recorder)
    app = Starlette(
        routes=[
            Route("/upstream/{hub}/{category}/{event}", endpoint, methods=["POST"]),
            Route("/other/{event}", endpoint, methods=["POST"]),
            Route("/broken/{event}", broken, methods=["POST"]),
            Route("/slow/{event}", slow, methods=["POST"]),
            Route("/text/{event}", not_hub_protocol, methods=["POST"]),
        ]
    )
    return serve_in_thread(app)


@pytest.fixture
def app_url(signatures: UpstreamVerifier, recorder: Recorder) -> Iterator[str]:
    """The app, checking signatures."""
    with serve_app(signatures, recorder) as url:
        yield url


def everything_to(app_url: str, **options: Any) -> UpstreamSettings:
    return UpstreamSettings([f"{app_url}/upstream/{{hub}}/{{category}}/{{event}}"], **options)


# -- the client ----------------------------------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
        yield http


@pytest.fixture
async def token(emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]) -> str:
    """A client token the library mints: user alice, a custom claim and a role."""
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    async with auth as signalr:
        return await signalr.client_token(
            "chat", user_id="alice", claims={"team": "blue"}, roles=["admin"]
        )


@asynccontextmanager
async def connected(
    client: httpx2.AsyncClient, url: str, token: str, *, token_in_query: bool = False
) -> AsyncIterator[HubSocket]:
    """A client past its handshake, through the service's negotiate unless the token rides in
    the query (as Python clients connect)."""
    connection_token = None
    if not token_in_query:
        connection_token = (await negotiate(client, url, token)).json()["connectionToken"]
    async with hub_socket(
        client, url, token, connection_token=connection_token, token_in_query=token_in_query
    ) as ws:
        assert await ws.handshake() == {}
        yield ws


async def invoke(ws: HubSocket, target: str, *arguments: Any, invocation_id: str = "1") -> Any:
    """The completion the client gets for ``invoke(target, *arguments)``."""
    message = {"type": 1, "invocationId": invocation_id, "target": target}
    await ws.send({**message, "arguments": list(arguments)})
    return await ws.receive()


def upstream_calls(emulator: Emulator) -> list[tuple[str, int]]:
    return [(entry.path, entry.status) for entry in emulator.log.entries(UPSTREAM_ROUTE)]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- connection events ---------------------------------------------------------------------------


@anyio_tests
async def test_connected_reaches_the_app_with_the_headers_and_a_valid_signature(
    emulator: Emulator,
    emulator_url: str,
    app_url: str,
    recorder: Recorder,
    token: str,
    client: httpx2.AsyncClient,
) -> None:
    emulator.upstream = everything_to(app_url)
    async with connected(client, emulator_url, token):
        # The emulator logs the call once it has the app's answer: after the app has the call.
        await wait_until(lambda: len(upstream_calls(emulator)) == 1, "the connected event")
        [connection] = emulator.connections

    [call] = recorder.calls[:1]
    assert (call.hub, call.category, call.event) == ("chat", "connections", "connected")
    assert call.connection_id == connection.connection_id
    assert call.user_id == "alice"
    assert call.claim("team") == "blue"
    assert call.claims["role"] == ("admin",)
    assert call.claim("asrs.s.uid") == "alice"
    assert call.authenticated_by == "signature"
    assert call.query == {"hub": ("chat",)}  # neither the connection token nor the client token

    entry = emulator.log.entries(UPSTREAM_ROUTE)[0]
    assert (entry.method, entry.path, entry.status) == (
        "POST",
        f"{app_url}/upstream/chat/connections/connected",
        204,
    )
    assert entry.headers["X-ASRS-Client-Query"] == "?hub=chat"
    expected = [
        "sha256=" + hmac.new(key.encode(), call.connection_id.encode(), hashlib.sha256).hexdigest()
        for key in emulator.access_keys
    ]
    assert entry.headers["X-ASRS-Signature"].lower().split(",") == expected
    assert "Authorization" not in entry.headers
    assert entry.principal_oid is None


@anyio_tests
async def test_a_managed_identity_bearer_token_is_verified_by_the_app(
    emulator: Emulator,
    emulator_url: str,
    bearer_only: UpstreamVerifier,
    recorder: Recorder,
    token: str,
    client: httpx2.AsyncClient,
) -> None:
    with serve_app(bearer_only, recorder) as app_url:
        template = f"{app_url}/upstream/{{hub}}/{{category}}/{{event}}"
        auth = ManagedIdentityAuth(AUDIENCE)
        emulator.upstream = UpstreamSettings([UpstreamTemplate(template, auth=auth)])
        async with connected(client, emulator_url, token, token_in_query=True) as ws:
            assert await invoke(ws, "add", 2, 3) == {"type": 3, "invocationId": "1", "result": 5}

    connected_call, add_call = recorder.calls[:2]
    for call in (connected_call, add_call):
        assert call.authenticated_by == "entra"
        assert call.principal_id == emulator.system_identity.object_id
    entry = emulator.log.entries(UPSTREAM_ROUTE)[0]
    assert entry.headers["Authorization"] == "[redacted]"
    assert entry.headers["X-ASRS-Client-Query"] == "?hub=chat"  # no access_token
    assert entry.principal_oid == emulator.system_identity.object_id
    assert token not in repr(list(emulator.log))


@anyio_tests
async def test_a_bearer_token_for_another_audience_is_refused_and_the_session_lives_on(
    emulator: Emulator,
    emulator_url: str,
    bearer_only: UpstreamVerifier,
    recorder: Recorder,
    token: str,
    client: httpx2.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serve_app(bearer_only, recorder) as app_url:
        template = f"{app_url}/upstream/{{hub}}/{{category}}/{{event}}"
        auth = ManagedIdentityAuth("api://someone-else")
        emulator.upstream = UpstreamSettings([UpstreamTemplate(template, auth=auth)])
        async with connected(client, emulator_url, token) as ws:
            completion = await invoke(ws, "add", 2, 3)
            assert completion == {
                "type": 3,
                "invocationId": "1",
                "error": "Invocation failed, status code 401",
            }
            assert emulator.connections  # still connected

    assert recorder.calls == []
    statuses = [status for _, status in upstream_calls(emulator)]
    assert statuses[:2] == [401, 401]  # connected, then add
    assert "did not take the connected event" in caplog.text


@anyio_tests
async def test_disconnected_comes_after_the_client_closes(
    emulator: Emulator,
    emulator_url: str,
    app_url: str,
    recorder: Recorder,
    token: str,
    client: httpx2.AsyncClient,
) -> None:
    emulator.upstream = everything_to(app_url)
    async with connected(client, emulator_url, token) as ws:
        await wait_until(lambda: recorder.events() == ["connected"], "the connected event")
        await ws.send({"type": 7})
        await wait_until(lambda: len(upstream_calls(emulator)) == 2, "the disconnected event")
        assert not emulator.connections

    connected_call, disconnected_call = recorder.calls
    assert disconnected_call.event == "disconnected"
    assert disconnected_call.connection_id == connected_call.connection_id
    assert disconnected_call.error is None
    assert upstream_calls(emulator)[-1] == (
        f"{app_url}/upstream/chat/connections/disconnected",
        204,
    )


@anyio_tests
async def test_a_socket_closed_abnormally_gives_disconnected_an_error(
    emulator: Emulator,
    emulator_url: str,
    app_url: str,
    recorder: Recorder,
    token: str,
    client: httpx2.AsyncClient,
) -> None:
    emulator.upstream = everything_to(app_url)
    async with connected(client, emulator_url, token) as ws:
        await wait_until(lambda: recorder.events() == ["connected"], "the connected event")
        await ws.session.close(code=4000)
        await wait_until(lambda: len(recorder.calls) == 2, "the disconnected event")
    assert recorder.calls[1].error == "The WebSocket closed with status code 4000."


# -- invocations ---------------------------------------------------------------------------------


@anyio_tests
async def test_invoke_send_and_hub_method_errors(
    emulator: Emulator,
    emulator_url: str,
    app_url: str,
    recorder: Recorder,
    token: str,
    client: httpx2.AsyncClient,
) -> None:
    emulator.upstream = everything_to(app_url)
    async with connected(client, emulator_url, token) as ws:
        assert await invoke(ws, "add", 2, 3) == {"type": 3, "invocationId": "1", "result": 5}
        assert await invoke(ws, "fail", invocation_id="2") == {
            "type": 3,
            "invocationId": "2",
            "error": "the room is full",
        }
        # send(): no invocationId, so no completion; the next message is the next invoke's.
        await ws.send({"type": 1, "target": "broadcast", "arguments": ["hi"]})
        await ws.send({"type": 1, "target": "fail", "arguments": []})
        assert await invoke(ws, "add", 1, 1, invocation_id="3") == {
            "type": 3,
            "invocationId": "3",
            "result": 2,
        }

    events = recorder.events()
    assert events[:6] == ["connected", "add", "fail", "broadcast", "fail", "add"]
    broadcast = recorder.calls[3]
    assert (broadcast.category, broadcast.arguments, broadcast.invocation_id) == (
        "messages",
        ("hi",),
        None,
    )
    assert recorder.calls[1].invocation_id == "1"
    assert upstream_calls(emulator)[1:4] == [
        (f"{app_url}/upstream/chat/messages/add", 200),
        (f"{app_url}/upstream/chat/messages/fail", 200),
        (f"{app_url}/upstream/chat/messages/broadcast", 204),
    ]


@anyio_tests
async def test_an_empty_answer_completes_without_a_result(
    emulator: Emulator,
    emulator_url: str,
    app_url: str,
    recorder: Recorder,
    token: str,
    client: httpx2.AsyncClient,
) -> None:
    emulator.upstream = everything_to(app_url)
    async with connected(client, emulator_url, token) as ws:
        # The app answers a completion with result null: relayed as it is.
        assert await invoke(ws, "ping") == {"type": 3, "invocationId": "1", "result": None}
        emulator.upstream = UpstreamSettings([f"{app_url}/slow/{{event}}"], timeout=SLOW * 3)
        assert await invoke(ws, "ping", invocation_id="2") == {"type": 3, "invocationId": "2"}


@anyio_tests
async def test_failing_slow_and_unreachable_upstreams_fail_the_invocation_not_the_session(
    emulator: Emulator,
    emulator_url: str,
    app_url: str,
    recorder: Recorder,
    token: str,
    client: httpx2.AsyncClient,
) -> None:
    gone = f"http://127.0.0.1:{closed_port()}/gone"
    emulator.upstream = UpstreamSettings(
        [
            UpstreamTemplate(f"{app_url}/broken/{{event}}", event_pattern="boom"),
            UpstreamTemplate(f"{app_url}/slow/{{event}}", event_pattern="nap"),
            UpstreamTemplate(gone, event_pattern="away"),
            UpstreamTemplate(f"{app_url}/text/{{event}}", event_pattern="chatter"),
            UpstreamTemplate(f"{app_url}/other/{{event}}", category_pattern="messages"),
        ],
        timeout=1.0,  # short of SLOW, with room for the quick answers on a busy machine
    )
    async with connected(client, emulator_url, token) as ws:
        boom = await invoke(ws, "boom")
        assert boom["error"] == "Invocation failed, status code 500"
        nap = await invoke(ws, "nap", invocation_id="2")
        assert nap["error"] == "Invocation failed, the upstream did not answer within 1 s."
        away = await invoke(ws, "away", invocation_id="3")
        assert (
            away["error"] == "Invocation failed, the upstream could not be reached (ConnectError)."
        )
        chatter = await invoke(ws, "chatter", invocation_id="5")
        assert chatter["error"] == (
            "Invocation failed, the upstream's answer is not a JSON hub protocol message."
        )
        await ws.send({"type": 1, "target": "boom", "arguments": []})  # send(): no completion
        assert await invoke(ws, "add", 2, 3, invocation_id="4") == {
            "type": 3,
            "invocationId": "4",
            "result": 5,
        }
        assert len(emulator.connections) == 1

    assert upstream_calls(emulator) == [
        (f"{app_url}/broken/boom", 500),
        (f"{app_url}/slow/nap", 0),
        (gone, 0),
        (f"{app_url}/text/chatter", 200),
        (f"{app_url}/broken/boom", 500),
        (f"{app_url}/other/add", 200),
    ]


@anyio_tests
async def test_a_failing_connected_event_does_not_end_the_session(
    emulator: Emulator,
    emulator_url: str,
    app_url: str,
    recorder: Recorder,
    token: str,
    client: httpx2.AsyncClient,
) -> None:
    emulator.upstream = UpstreamSettings(
        [
            UpstreamTemplate(f"{app_url}/broken/{{event}}", category_pattern="connections"),
            f"{app_url}/other/{{event}}",
        ]
    )
    async with connected(client, emulator_url, token) as ws:
        assert (await invoke(ws, "add", 2, 3))["result"] == 5
        await ws.send({"type": 7})
        await wait_until(lambda: len(upstream_calls(emulator)) == 3, "the disconnected event")
    assert upstream_calls(emulator) == [
        (f"{app_url}/broken/connected", 500),
        (f"{app_url}/other/add", 200),
        (f"{app_url}/broken/disconnected", 500),
    ]


# -- routing ------------------------------------------------------------------------------------


@anyio_tests
async def test_templates_and_patterns_pick_the_url_first_match_first(
    emulator: Emulator,
    emulator_url: str,
    app_url: str,
    recorder: Recorder,
    token: str,
    client: httpx2.AsyncClient,
) -> None:
    emulator.upstream = UpstreamSettings(
        [
            UpstreamTemplate(f"{app_url}/broken/{{event}}", hub_pattern="lobby, hall"),
            UpstreamTemplate(
                f"{app_url}/other/{{event}}", category_pattern="messages", event_pattern="add,Echo"
            ),
            UpstreamTemplate(
                f"{app_url}/upstream/{{hub}}/{{category}}/{{event}}", hub_pattern="CHAT"
            ),
        ]
    )
    async with connected(client, emulator_url, token) as ws:
        assert (await invoke(ws, "add", 1, 2))["result"] == 3
        assert "error" not in await invoke(ws, "echo", invocation_id="2")
        assert "error" not in await invoke(ws, "mul", invocation_id="3")

    assert [path for path, _ in upstream_calls(emulator)][:4] == [
        f"{app_url}/upstream/chat/connections/connected",
        f"{app_url}/other/add",
        f"{app_url}/other/echo",
        f"{app_url}/upstream/chat/messages/mul",
    ]


@anyio_tests
async def test_without_a_matching_template_nothing_is_sent(
    emulator: Emulator,
    emulator_url: str,
    app_url: str,
    recorder: Recorder,
    token: str,
    client: httpx2.AsyncClient,
) -> None:
    emulator.upstream = UpstreamSettings(
        [UpstreamTemplate(f"{app_url}/other/{{event}}", event_pattern="add")]
    )
    async with connected(client, emulator_url, token) as ws:
        completion = await invoke(ws, "mul", 2, 3)
        assert completion["invocationId"] == "1"
        assert "no upstream" in completion["error"]
        assert "'mul'" in completion["error"]
        await ws.send({"type": 1, "target": "mul", "arguments": []})
        assert (await invoke(ws, "add", 2, 3, invocation_id="2"))["result"] == 5
        await ws.send({"type": 7})
        await wait_until(lambda: not emulator.connections, "the connection to end")
    assert upstream_calls(emulator) == [(f"{app_url}/other/add", 200)]


# -- settings ------------------------------------------------------------------------------------


def test_template_urls_fill_in_and_encode_the_placeholders() -> None:
    template = UpstreamTemplate("http://127.0.0.1:9/{hub}/api/{category}/{event}")
    assert template.url_for("chat", "messages", "a b/c") == (
        "http://127.0.0.1:9/chat/api/messages/a%20b%2Fc"
    )
    assert template.matches("ANY", "connections", "connected")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: UpstreamSettings(["http://example.com/up"]), "not on this machine"),
        (lambda: UpstreamTemplate("http://127.0.0.1/{hubs}"), r"unknown placeholder\(s\) \{hubs\}"),
        (lambda: UpstreamTemplate("ftp://127.0.0.1/x"), "absolute http:// or https:// URL"),
        (lambda: UpstreamTemplate("/upstream"), "absolute http:// or https:// URL"),
        (lambda: UpstreamTemplate("http://127.0.0.1/x", event_pattern="a,,b"), "empty name"),
        (lambda: UpstreamTemplate("http://127.0.0.1/x", hub_pattern=" "), "hub_pattern must be"),
        (lambda: ManagedIdentityAuth(""), "needs the resource"),
        (lambda: UpstreamSettings(timeout=0), "positive number of seconds"),
    ],
)
def test_settings_refuse_what_cannot_work(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_remote_upstreams_need_allow_remote() -> None:
    settings = UpstreamSettings(["https://app.example.com/{event}"], allow_remote=True)
    assert settings.match("chat", "messages", "add") == UpstreamTemplate(
        "https://app.example.com/{event}"
    )


def test_the_configuration_file_sets_the_upstream() -> None:
    config = parse_config(
        {
            "upstream": {
                "templates": [
                    {
                        "url_template": "http://127.0.0.1:8000/upstream/{event}",
                        "hub_pattern": "chat",
                        "event_pattern": "connected,disconnected",
                        "auth": {"type": "managed_identity", "resource": AUDIENCE},
                    },
                    {"url_template": "http://localhost:8000/{event}", "auth": {"type": "None"}},
                    {
                        "url_template": "http://[::1]:8000/x",
                        "auth": {"type": "ManagedIdentity", "resource": "a"},
                    },
                ],
                "timeout": 3,
            }
        }
    )
    expected = UpstreamSettings(
        [
            UpstreamTemplate(
                "http://127.0.0.1:8000/upstream/{event}",
                hub_pattern="chat",
                event_pattern="connected,disconnected",
                auth=ManagedIdentityAuth(AUDIENCE),
            ),
            "http://localhost:8000/{event}",
            UpstreamTemplate("http://[::1]:8000/x", auth=ManagedIdentityAuth("a")),
        ],
        timeout=3,
    )
    assert config.upstream == expected
    assert config.build().upstream == expected
    assert parse_config({}).build().upstream == UpstreamSettings()


@pytest.mark.parametrize(
    ("upstream", "message"),
    [
        ({"templates": [{"url_template": "http://10.0.0.1/x"}]}, "not on this machine"),
        ({"templates": [{}]}, r"upstream.templates\[0\] needs a url_template"),
        (
            {"templates": [{"url_template": "http://127.0.0.1/", "auth": {"type": "key"}}]},
            "managed_identity",
        ),
        (
            {
                "templates": [
                    {"url_template": "http://127.0.0.1/", "auth": {"type": "managed_identity"}}
                ]
            },
            "resource",
        ),
        ({"templates": [{"url": "http://127.0.0.1/"}]}, "unknown key"),
        ({"timeout": -1}, "upstream.timeout must be a positive number"),
        ({"allow_remote": "yes"}, "true or false"),
        ({"templates": {}}, "must be a list"),
    ],
)
def test_the_configuration_file_says_what_is_wrong_with_the_upstream(
    upstream: object, message: str
) -> None:
    with pytest.raises(EmulatorConfigError, match=message):
        parse_config({"upstream": upstream}, source="emulator.json")


def test_the_banner_lists_the_upstream() -> None:
    emulator = Emulator()
    assert "none: invocations clients await fail with 'no upstream'" in banner(emulator, "http://x")
    template = "http://127.0.0.1:8000/upstream/{event}"
    emulator.upstream = UpstreamSettings(
        [UpstreamTemplate(template, hub_pattern="chat", auth=ManagedIdentityAuth(AUDIENCE))]
    )
    line = f"  {template}  (hub=chat category=* event=*, bearer for {AUDIENCE})"
    assert line in banner(emulator, "http://127.0.0.1:8888").splitlines()


def test_the_example_file_forwards_the_chat_hub_with_a_bearer_token() -> None:
    example = Path(emulator_package.__file__).parent / "emulator.example.json"
    [template] = load_config(example).upstream.templates
    assert template.auth == ManagedIdentityAuth("api://chat-upstream")
    assert template.matches("chat", "messages", "send")
    assert not template.matches("lobby", "messages", "send")
