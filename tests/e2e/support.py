"""What the end-to-end tests share: the example apps served on 127.0.0.1, and the clients' tools."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest
from starlette.types import ASGIApp

from examples import fastapi_app, starlette_app
from signalr_asgi_auth import SignalRAuth, UpstreamVerifier
from signalr_asgi_auth.emulator import serve_in_thread

from . import chromium

ROOT = Path(__file__).resolve().parents[2]
NODE_CLIENT = Path(__file__).parent / "js" / "hub_client.cjs"
SIGNALR_JS = ROOT / "node_modules" / "@microsoft" / "signalr"

EXAMPLES: dict[str, Callable[[SignalRAuth, UpstreamVerifier | None], ASGIApp]] = {
    "starlette": starlette_app.create_app,
    "fastapi": fastapi_app.create_app,
}
REDACTED = "[redacted]"


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


class NodeHub:
    """One real ``@microsoft/signalr`` client in Node (``js/hub_client.cjs``), driven by commands:
    the test says what to do, and waits for the events the client prints."""

    def __init__(self, app: str, user: str, *, protocol: str = "json") -> None:
        self.user = user
        self.protocol = protocol
        spec = json.dumps({"app": app, "user": user, "protocol": protocol})
        self._process = subprocess.Popen(
            [node_or_skip(), str(NODE_CLIENT), spec],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self._events: list[dict[str, Any]] = []
        self._stderr: list[str] = []
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        for stream, into in ((self._process.stdout, None), (self._process.stderr, self._stderr)):
            threading.Thread(target=self._read, args=(stream, into), daemon=True).start()

    def _read(self, stream: IO[str] | None, into: list[str] | None) -> None:
        assert stream is not None
        for line in stream:
            with self._changed:
                if into is not None:
                    into.append(line.rstrip())
                elif line.startswith("{"):
                    self._events.append(json.loads(line))
                self._changed.notify_all()

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._changed:
            return list(self._events)

    def describe(self) -> str:
        lines = "\n".join(json.dumps(event) for event in self.events)
        return f"Node client {self.user!r} ({self.protocol}) events:\n{lines}\nstderr:\n" + (
            "\n".join(self._stderr)
        )

    def send(self, command: str, **fields: Any) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"do": command, **fields}) + "\n")
        self._process.stdin.flush()

    def wait_for(self, event: str, *, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """The first event named ``event`` with these fields; fails with everything seen."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for seen in self._events:
                    if seen["event"] == event and all(seen.get(k) == v for k, v in fields.items()):
                        return seen
                left = deadline - time.monotonic()
                if left <= 0 or self._process.poll() is not None:
                    break
                self._changed.wait(min(left, 0.2))
        msg = f"no {event} {fields} within {timeout} s\n{self.describe()}"
        raise AssertionError(msg)

    def messages(self, target: str) -> list[list[Any]]:
        """The arguments of every ``target`` the app sent this client, oldest first."""
        return [e["args"] for e in self.events if e["event"] == "message" and e["target"] == target]

    def start(self) -> dict[str, Any]:
        """Connect; the ``started`` or ``error`` event."""
        self.send("start")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            for event in self.events:
                if event["event"] in ("started", "error"):
                    return event
            time.sleep(0.02)
        msg = f"the client neither started nor failed\n{self.describe()}"
        raise AssertionError(msg)

    def invoke(self, method: str, *args: Any, timeout: float = 10.0) -> dict[str, Any]:
        """``connection.invoke(method, ...args)``: the ``result`` or ``failed`` event."""
        call = next(self._ids)
        self.send("invoke", id=call, method=method, args=list(args))
        return self._finished(call, timeout)

    def stream(
        self, method: str, *args: Any, timeout: float = 10.0
    ) -> tuple[list[Any], dict[str, Any]]:
        """``connection.stream(method, ...args)``: the items, and the ``completed`` or ``failed``
        event."""
        call = next(self._ids)
        self.send("stream", id=call, method=method, args=list(args))
        end = self._finished(call, timeout)
        return [e["value"] for e in self.events if e["event"] == "item" and e["id"] == call], end

    def _finished(self, call: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("id") == call and event["event"] in ("result", "completed", "failed"):
                    return event
            time.sleep(0.02)
        msg = f"call {call} did not finish within {timeout} s\n{self.describe()}"
        raise AssertionError(msg)

    def close(self) -> None:
        """Stop the connection and end the process (killed if it does not end in time)."""
        if self._process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self.send("stop")
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def node_hub(
    app: str, user: str, *, protocol: str = "json", start: bool = True
) -> Iterator[NodeHub]:
    """A started Node client (``start=False``: not yet); closed on exit."""
    client = NodeHub(app, user, protocol=protocol)
    try:
        if start:
            started = client.start()
            assert started["event"] == "started", client.describe()
        yield client
    finally:
        client.close()
