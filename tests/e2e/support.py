"""What the end-to-end tests share: the example apps served on 127.0.0.1, and the clients' tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from starlette.types import ASGIApp

from examples import fastapi_app, starlette_app
from signalr_asgi_auth import SignalRAuth, UpstreamVerifier
from signalr_asgi_auth.emulator import serve_in_thread

from . import chromium

ROOT = Path(__file__).resolve().parents[2]
NODE_CLIENT = Path(__file__).parent / "js" / "chat_client.cjs"
SIGNALR_JS = ROOT / "node_modules" / "@microsoft" / "signalr"

EXAMPLES: dict[str, Callable[[SignalRAuth, UpstreamVerifier | None], ASGIApp]] = {
    "starlette": starlette_app.create_app,
    "fastapi": fastapi_app.create_app,
}
REDACTED = "[redacted]"
KINDS = {"all", "user", "group"}
"""Each client receives one broadcast, one message to its user and one to its group."""


@contextmanager
def serve_app(app: ASGIApp) -> Iterator[str]:
    """Serve an example app with uvicorn in a thread on a free port, lifespan on as in production
    (startup waits for the first key); yield ``http://127.0.0.1:<port>``."""
    with serve_in_thread(app, lifespan=True) as url:
        yield url


def unique_user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- the clients --------------------------------------------------------------------------------------


def in_ci() -> bool:
    """Whether this run is CI's (``CI=true``, as CI services set it): there the real clients are the
    judges, so a missing one fails the test instead of skipping it."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing_client(reason: str) -> NoReturn:
    """Skip with ``reason`` on a developer's machine; fail with it in CI."""
    if in_ci():
        pytest.fail(f"{reason} CI=true: the end-to-end tests must run, not skip.", pytrace=False)
    pytest.skip(reason)


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        missing_client("Node.js is not on PATH; the Node client tests need it.")
    if not (SIGNALR_JS / "package.json").is_file():
        missing_client("@microsoft/signalr is not installed: run `npm ci` in the repository root.")
    return node


def chromium_or_skip() -> str:
    executable = chromium.find_chromium()
    if executable is None:
        missing_client(
            "Chromium is not installed (`apt-get install chromium`; .ci/run installs it); "
            "the browser tests need it."
        )
    if not (SIGNALR_JS / "dist" / "browser" / "signalr.min.js").is_file():
        missing_client(
            "The page's @microsoft/signalr bundle is not installed: run `npm ci` in the repository root."
        )
    return executable


def signalr_js_version() -> str:
    """The installed ``@microsoft/signalr`` (package.json pins it)."""
    version: str = json.loads((SIGNALR_JS / "package.json").read_text())["version"]
    return version


def signalr_user_agent() -> str:
    """How the installed client names itself: ``Microsoft SignalR/10.0 (10.0.11; ...``."""
    version = signalr_js_version()
    return f"Microsoft SignalR/{version.split('.')[0]}.0 ({version}; "


@dataclass(frozen=True)
class NodeRun:
    """What ``js/chat_client.cjs`` did: its exit code, the JSON events it printed, its log."""

    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def events_of(self, name: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event"] == name]

    def first(self, name: str) -> dict[str, Any]:
        found = self.events_of(name)
        assert found, self.describe()
        return found[0]

    def describe(self) -> str:
        lines = "\n".join(json.dumps(event) for event in self.events)
        return f"node exited {self.returncode}\nevents:\n{lines}\nstderr:\n{self.stderr}"


def run_node_chat(app: str, user: str, group: str, *, via_hub: bool = False) -> NodeRun:
    """Run ``js/chat_client.cjs`` against ``app`` (at most 30 s; the script gives up after 15);
    ``via_hub``: invoke the hub's send (the upstream path) instead of POSTing to the app."""
    node = node_or_skip()
    spec = json.dumps(
        {"app": app, "user": user, "group": group, "viaHub": via_hub, "timeoutMs": 15000}
    )
    done = subprocess.run(
        [node, str(NODE_CLIENT), spec],
        capture_output=True,
        text=True,
        timeout=30,  # kills the process
        cwd=ROOT,
        check=False,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return NodeRun(done.returncode, events, done.stderr)
