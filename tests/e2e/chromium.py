"""Headless Chromium driven over the DevTools protocol, with no driver and no browser download.

Chromium is started with ``--remote-debugging-port=0``; the port it picked is read from
``DevToolsActivePort`` in its fresh profile, and one WebSocket (flattened sessions) carries the
commands. Only what the tests need: open a page, evaluate JavaScript, wait for a condition, answer
a dialog, and collect what the page wrote to its console.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

__all__ = ["Browser", "Page", "find_chromium", "launch"]

# Headless, as root, in a container with a closed network (see the machine notes on Chromium).
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-port=0",
)
_START_TIMEOUT = 60.0  # a cold first start (fonts, page cache) once took over 20 s here
_CALL_TIMEOUT = 10.0


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable on PATH, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class DevToolsError(RuntimeError):
    """A DevTools command failed, or JavaScript threw."""


class Browser:
    """One Chromium process and its DevTools connection."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer; events that arrive meanwhile are kept."""
        call_id = next(self._ids)
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        self._socket.send(json.dumps(message))
        deadline = time.monotonic() + _CALL_TIMEOUT
        while True:
            reply = json.loads(self._socket.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if reply.get("id") != call_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                msg = f"{method}: {reply['error']}"
                raise DevToolsError(msg)
            result: dict[str, Any] = reply["result"]
            return result

    def wait_for_event(self, method: str, session: str, *, timeout: float) -> dict[str, Any]:
        """The first event ``method`` of ``session`` not yet taken (waiting for it if need be)."""
        deadline = time.monotonic() + timeout
        while True:
            for number, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self.events.pop(number)
            left = deadline - time.monotonic()
            if left <= 0:
                msg = f"No {method} within {timeout} s."
                raise TimeoutError(msg)
            try:
                self.events.append(json.loads(self._socket.recv(timeout=left)))
            except TimeoutError:
                continue

    def open(self, url: str) -> Page:
        """A new tab on ``url``, with its console collected and its dialogs reported."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = Page(self, session)
        self.call("Runtime.enable", session)
        self.call("Page.enable", session)
        self.call("Page.navigate", session, url=url)
        return page


class Page:
    """A tab: evaluate JavaScript in it, and wait for conditions."""

    def __init__(self, browser: Browser, session: str) -> None:
        self._browser = browser
        self._session = session

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` (promises awaited); a thrown error raises."""
        result = self._browser.call(
            "Runtime.evaluate",
            self._session,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            msg = f"{expression!r} threw: {text}"
            raise DevToolsError(msg)
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = 10.0) -> Any:
        """Evaluate ``expression`` until it is truthy; its value. Fails with the page's console."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except DevToolsError:
                value = None  # e.g. the page is still loading
            if value:
                return value
            if time.monotonic() > deadline:
                console = "\n".join(self.console()) or "(nothing)"
                msg = f"Still false after {timeout} s: {expression}\nThe page's console:\n{console}"
                raise TimeoutError(msg)
            time.sleep(0.05)

    def answer_dialog(self, *, accept: bool, timeout: float = 10.0) -> str:
        """Wait for the page's next ``alert``/``confirm`` dialog, answer it as a user would
        (OK or Cancel), and return its message. (The page's JavaScript waits meanwhile.)"""
        opened = self._browser.wait_for_event(
            "Page.javascriptDialogOpening", self._session, timeout=timeout
        )
        self._browser.call("Page.handleJavaScriptDialog", self._session, accept=accept)
        message: str = opened["params"]["message"]
        return message

    def console(self) -> list[str]:
        """What the page logged (console calls and uncaught exceptions), oldest first."""
        lines = []
        for event in self._browser.events:
            if event.get("sessionId") != self._session:
                continue
            params = event.get("params", {})
            if event.get("method") == "Runtime.consoleAPICalled":
                args = " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params["args"]
                )
                lines.append(f"{params['type']}: {args}")
            elif event.get("method") == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                lines.append(f"exception: {details.get('exception', {}).get('description')}")
        return lines


def _devtools_url(profile: Path, process: subprocess.Popen[bytes]) -> str:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        if port_file.is_file():
            lines = port_file.read_text().splitlines()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        if process.poll() is not None:
            msg = f"Chromium exited with status {process.returncode} before DevTools was up."
            raise RuntimeError(msg)
        if time.monotonic() > deadline:
            msg = f"Chromium's DevTools did not come up within {_START_TIMEOUT} s."
            raise TimeoutError(msg)
        time.sleep(0.05)


@contextmanager
def launch(executable: str) -> Iterator[Browser]:
    """Start headless Chromium on a fresh profile; kill it and delete the profile on exit."""
    profile = Path(tempfile.mkdtemp(prefix="e2e-chromium-"))
    process = subprocess.Popen(
        [executable, *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = _devtools_url(profile, process)
        with connect(url, proxy=None, max_size=None, open_timeout=_START_TIMEOUT) as socket:
            yield Browser(socket)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        shutil.rmtree(profile, ignore_errors=True)
