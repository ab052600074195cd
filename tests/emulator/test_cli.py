"""``python -m signalr_asgi_auth emulator``: the banner, the request lines, the refusals."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from signalr_asgi_auth.__main__ import main
from signalr_asgi_auth.emulator import Emulator
from signalr_asgi_auth.emulator._cli import banner

from .helpers import TIMEOUT

STARTUP_TIMEOUT = 20.0


class Lines:
    """A subprocess's stdout, read line by line in a thread so that waits can be bounded."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert process.stdout is not None
        stdout = process.stdout

        def pump() -> None:
            for line in stdout:
                self._queue.put(line)

        threading.Thread(target=pump, daemon=True).start()

    def until(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.seen:
                match = re.search(pattern, line)
                if match:
                    self.seen.remove(line)
                    return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"No line matched {pattern!r}; output so far: {self.seen!r}")
            try:
                self.seen.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                continue


@contextmanager
def emulator_command(*arguments: str) -> Iterator[tuple[subprocess.Popen[str], Lines]]:
    """``python -m signalr_asgi_auth emulator --port 0 ARGUMENTS`` and its stdout, line by line;
    killed if still running at the end, and nothing logged at ERROR on stderr."""
    command = [sys.executable, "-m", "signalr_asgi_auth", "emulator", "--port", "0", *arguments]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        yield process, Lines(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        errors = process.stderr.read()
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()
    assert "ERROR" not in errors


def fetch_access_key(
    identity_url: str, resource_url: str, header: str
) -> tuple[str, httpx2.Response]:
    """What an app given the printed environment does: a managed-identity token from the identity
    endpoint at ``identity_url``, then with it the access key of the resource at ``resource_url``.
    The token, and the access key's response."""
    token = httpx2.get(
        f"{identity_url}/msi/token",
        params={"api-version": "2019-08-01", "resource": "https://signalr.azure.com"},
        headers={"X-IDENTITY-HEADER": header},
        timeout=TIMEOUT,
    ).json()["access_token"]
    return token, httpx2.get(
        f"{resource_url}/api/v1/auth/accessKey",
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )


def test_the_command_prints_the_environment_and_one_line_per_request() -> None:
    with emulator_command() as (process, lines):
        url = lines.until(r"listening on (http://127\.0\.0\.1:\d+)", STARTUP_TIMEOUT)[1]
        lines.until(rf"^  Endpoint={re.escape(url)};AuthType=azure\.msi;Version=1\.0;$")
        lines.until(rf"^export IDENTITY_ENDPOINT={re.escape(url)}/msi/token$")
        header = lines.until(r"^export IDENTITY_HEADER=(\S+)$")[1]
        lines.until(
            rf"^export AZURE_SIGNALR_CONNECTION_STRING='Endpoint={re.escape(url)};AuthType=azure\.msi;Version=1\.0;'$"
        )
        lines.until(r"system-assigned: SignalR App Server, SignalR REST API Owner")
        lines.until(r"^Requests")

        token, key = fetch_access_key(url, url, header)
        assert key.status_code == 200
        httpx2.post(f"{url}/client/negotiate?hub=chat&access_token=secret", timeout=TIMEOUT)

        lines.until(r"identity\.app_service +GET +/msi/token\?.*-> 200")
        lines.until(
            r"signalr\.access_key +GET +/api/v1/auth/accessKey -> 200  principal=system-assigned"
        )
        negotiate = lines.until(r"client\.negotiate +POST +/client/negotiate\?(\S+) -> 401")
        assert negotiate[1] == "hub=chat&access_token=[redacted]"
        everything = "".join(lines.seen)
        assert header not in everything
        assert token not in everything

        process.send_signal(signal.SIGINT)
        assert process.wait(TIMEOUT) == 0
        lines.until(r"^Emulator stopped\.$")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.org"])
def test_a_non_loopback_host_is_refused(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--host", host]) == 2
    assert f"Refusing to listen on {host}" in capsys.readouterr().err


def test_a_bad_config_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "emulator.json"
    config.write_text('{"principals": [{"name": "x", "roles": ["SignalR Janitor"]}]}')
    assert main(["emulator", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "principals[0].roles[0]" in err
    assert "Unknown role 'SignalR Janitor'" in err


def test_a_missing_config_file_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulator", "--config", str(tmp_path / "missing.json")]) == 2
    assert "Cannot read the emulator configuration" in capsys.readouterr().err


def test_a_port_in_use_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["emulator", "--port", str(port)]) == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_the_service_mode_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["emulator", "--service-mode", "classic"])
    assert "invalid choice: 'classic'" in capsys.readouterr().err
    assert "Service mode: Default (app servers connect at /server/)" in banner(
        Emulator(service_mode="default"), "http://127.0.0.1:8888"
    )
    assert "Service mode: Serverless" in banner(Emulator(), "http://127.0.0.1:8888")


def test_several_resources_share_the_identity_endpoint_and_print_a_variable_each() -> None:
    with emulator_command("--resources", "east,backup:secondary") as (process, lines):
        lines.until(r"several resources of one tenant", STARTUP_TIMEOUT)
        east = lines.until(r"^  east \(primary\) on (http://127\.0\.0\.1:\d+): .*/SignalR/east$")[1]
        backup = lines.until(r"^  backup \(secondary\) on (http://127\.0\.0\.1:\d+): .*/backup$")[1]
        lines.until(rf"^export IDENTITY_ENDPOINT={re.escape(east)}/msi/token$")
        header = lines.until(r"^export IDENTITY_HEADER=(\S+)$")[1]
        lines.until(
            rf"^export Azure__SignalR__ConnectionString__backup__secondary='Endpoint="
            rf"{re.escape(backup)};AuthType=azure\.msi;Version=1\.0;'$"
        )
        lines.until(r"system-assigned: .*SignalR App Server at backup")
        lines.until(r"^Requests")

        _, key = fetch_access_key(east, backup, header)
        assert key.status_code == 200
        lines.until(r"signalr\.access_key +GET .* -> 200  principal=system-assigned")
        process.send_signal(signal.SIGINT)
        assert process.wait(TIMEOUT) == 0


def test_bad_resource_names_are_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--port", "0", "--resources", "east,east"]) == 2
    assert "given twice" in capsys.readouterr().err
