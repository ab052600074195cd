"""What the README tells a newcomer, run as written: the FastAPI quick start with the real
``@microsoft/signalr`` client connecting with ``withUrl(".../chat")``, the ``lifespan=`` example
without the middleware, the App Service startup command with two workers, and the warning for a
middleware on a mounted sub-app. Code and commands are parsed out of README.md, so they cannot drift."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from signalr_asgi_auth import SignalRAuth, SignalRAuthMiddleware, negotiate_endpoint
from signalr_asgi_auth.emulator import Emulator, serve_in_thread

from .e2e.support import node_or_skip
from .support import FAST, verify_client_token

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def block_after(marker: str, language: str) -> str:
    """The first fenced ``language`` block after ``marker`` in the README."""
    rest = readme().split(marker, 1)[1]
    found = re.search(rf"```{language}\n(.*?)```", rest, re.DOTALL)
    assert found is not None, f"no {language} block after {marker!r}"
    return found.group(1)


def run_snippet(code: str) -> Any:
    namespace: dict[str, Any] = {"__name__": "readme_snippet"}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace["app"]


def test_the_first_screen_keeps_the_two_commands_and_says_how_to_install() -> None:
    first_screen = readme().split("\n---\n", 1)[0]
    assert "scripts/demo" in first_screen
    assert "scripts/test" in first_screen
    assert "pip install 'signalr-asgi-auth[fastapi]'" in first_screen
    for moved in ("## Options\n\nEvery option is", "## Performance\n\n`scripts/bench` measures"):
        assert moved not in readme() or "docs/" in readme().split(moved, 1)[1][:400]
    for page in ("options", "performance", "emulator", "troubleshooting"):
        assert f"(docs/{page}.md)" in readme()
        assert (ROOT / "docs" / f"{page}.md").is_file()


def on_app_service(emulator: Emulator, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the README's snippets run: App Service (its managed identity holds SignalR App
    Server) with the connection string in ``AZURE_SIGNALR_CONNECTION_STRING``."""
    emulator.assign(emulator.system_identity, "SignalR App Server")
    for name, value in emulator.app_service_env(url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AZURE_SIGNALR_CONNECTION_STRING", emulator.connection_string(url))


# -- the FastAPI quick start and the browser line under it --------------------------------------


def test_the_fastapi_quick_start_serves_the_real_client_that_uses_with_url_chat(
    emulator: Emulator, emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = node_or_skip()
    assert 'withUrl("/chat")' in readme()
    on_app_service(emulator, emulator_url, monkeypatch)
    app = run_snippet(block_after("**FastAPI**", "python"))
    script = """
const signalR = require("@microsoft/signalr");
const connection = new signalR.HubConnectionBuilder()
  .withUrl(process.argv[1] + "/chat")
  .configureLogging(signalR.LogLevel.Warning)
  .build();
connection.start().then(
  async () => { console.log(JSON.stringify({ started: connection.connectionId })); await connection.stop(); },
  (error) => { console.log(JSON.stringify({ error: String(error) })); process.exitCode = 1; },
);
"""
    with serve_in_thread(app, lifespan=True) as app_url:
        done = subprocess.run(  # the real client, as the browser line says
            [node, "-e", script, app_url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "started" in result, result
    assert emulator.log.count("client.websocket") == 1


def test_the_fastapi_quick_start_answers_400_not_422_for_a_bad_user(
    emulator: Emulator, emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_app_service(emulator, emulator_url, monkeypatch)
    app = run_snippet(block_after("**FastAPI**", "python"))
    with TestClient(app) as client:
        anonymous = client.post("/chat/negotiate")
        named = client.post("/chat/negotiate", params={"user": "ada"})
        bad = client.post("/chat/negotiate", params={"user": "x" * 5000})
    assert anonymous.status_code == named.status_code == 200
    audience = "http://127.0.0.1/client/?hub=chat"
    assert "nameid" not in verify_client_token(
        anonymous.json()["accessToken"], emulator, audience=audience
    )
    claims = verify_client_token(named.json()["accessToken"], emulator, audience=audience)
    assert claims["nameid"] == "ada"
    assert bad.status_code == 400


# -- FastAPI's lifespan= state without the middleware ------------------------------------------


def test_the_lifespan_example_works_without_the_middleware(
    emulator: Emulator, emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_app_service(emulator, emulator_url, monkeypatch)
    code = block_after("<!-- lifespan-example -->", "python")
    assert "SignalRAuthMiddleware" not in code
    app = run_snippet(code)
    with TestClient(app) as client:
        answer = client.post("/chat/negotiate", params={"user": "ada"})
        assert emulator.log.count("signalr.access_key") == 1  # fetched at startup
    assert answer.status_code == 200
    token = answer.json()["accessToken"]
    claims = verify_client_token(token, emulator, audience="http://127.0.0.1/client/?hub=chat")
    assert claims["nameid"] == "ada"


# -- a middleware on a mounted sub-app ---------------------------------------------------------


def test_a_middleware_on_a_mounted_sub_app_blames_the_mount_not_the_lifespan(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.assign(emulator.system_identity, "SignalR App Server")
    auth = SignalRAuth.from_connection_string(emulator.connection_string(emulator_url), **FAST)
    inner = Starlette(
        routes=[Route("/chat/negotiate", negotiate_endpoint("chat"), methods=["POST"])],
        middleware=[Middleware(SignalRAuthMiddleware, auth=auth)],
    )
    outer = Starlette(routes=[Mount("/signalr", app=inner)])
    with (
        caplog.at_level(logging.WARNING, "signalr_asgi_auth"),
        serve_in_thread(outer, lifespan=True) as app_url,  # lifespan on: the outer app gets it
    ):
        answer = httpx2.post(f"{app_url}/signalr/chat/negotiate", timeout=10)
    assert answer.status_code == 200
    messages = [r.getMessage() for r in caplog.records]
    assert any("mounted at '/signalr'" in m and "never get the lifespan" in m for m in messages)
    assert not any("before any lifespan startup" in m for m in messages)


# -- the App Service startup command, two workers ----------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def startup_command() -> list[str]:
    """The README's startup command, bound to loopback and a free port instead of App Service's
    0.0.0.0:8000 (tests listen on loopback only)."""
    lines = block_after("<!-- startup-command -->", "bash").strip().splitlines()
    assert len(lines) == 1
    words = shlex.split(lines[0])
    assert words[:3] == ["python", "-m", "uvicorn"]
    assert words[words.index("--workers") + 1] == "2"
    words[words.index("--host") + 1] = "127.0.0.1"
    words[words.index("--port") + 1] = str(_free_port())
    words[0] = sys.executable
    return words


def test_the_startup_command_runs_two_workers_that_each_negotiate_and_connect(
    tmp_path: Path,
) -> None:
    emulator = Emulator(service_mode="default")
    emulator.assign(emulator.system_identity, "SignalR App Server")
    # the module the command names: the examples' chat app (Default mode, hubs=[chat])
    command = startup_command()
    module, _, attribute = next(word for word in command if ":" in word).partition(":")
    (tmp_path / f"{module}.py").write_text(
        f"from examples.fastapi_app import create_app\n\n{attribute} = create_app()\n"
    )
    port = command[command.index("--port") + 1]
    with serve_in_thread(emulator.app) as emulator_url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_"))},
            **emulator.app_service_env(emulator_url),
            "AZURE_SIGNALR_CONNECTION_STRING": emulator.connection_string(emulator_url),
            "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        }
        server = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            kids, server_ids = _negotiate_until_both_workers(f"http://127.0.0.1:{port}", emulator)
        finally:
            server.terminate()
            try:
                _, errors = server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                _, errors = server.communicate()
    assert len(kids) == 2, (kids, errors[-2000:])  # each worker signs with its own key
    assert len(server_ids) == 2, (server_ids, errors[-2000:])  # each has its own connections
    assert "Traceback" not in errors


def _negotiate_until_both_workers(app: str, emulator: Emulator) -> tuple[set[str], set[str]]:
    kids: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            # a new connection each time: the kernel hands accepts to either worker
            answer = httpx2.post(f"{app}/chat/negotiate", params={"user": "ada"}, timeout=5)
        except httpx2.HTTPError:
            time.sleep(0.1)  # still starting
            continue
        if answer.status_code == 200:
            kids.add(jwt.get_unverified_header(answer.json()["accessToken"])["kid"])
        servers = {c.server_id for c in emulator.server_connections if c.hub == "chat"}
        if len(kids) == 2 and len(servers) == 2:
            return kids, servers
        time.sleep(0.05)
    return kids, {c.server_id for c in emulator.server_connections if c.hub == "chat"}


def test_the_tests_the_reliability_section_names_exist() -> None:
    """Each item of issue 18 is said to hold by a named test: the name must not drift from the
    test (``::name`` alone is in the file named before it)."""
    section = readme().split("\n## Reliability\n", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(tests/[\w/]+\.py)?::(\w+)`", section)
    missing, path = [], ""
    for file, name in named:
        path = file or path
        if not re.search(rf"^(async )?def {name}\(", (ROOT / path).read_text(), re.MULTILINE):
            missing.append(f"{path}::{name}")
    assert len(named) >= 17
    assert missing == []
