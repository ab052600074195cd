"""``signalr-asgi-auth doctor`` run as a subprocess, as an operator would, against the emulator:
real azure-identity managed identity (App Service flavour) on the emulator's identity endpoint,
each missing role, each fault, both service modes; nothing secret in its output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from signalr_asgi_auth.__main__ import main
from signalr_asgi_auth.emulator import Emulator, serve_in_thread

from .faults import closed_port_url, trickling_peer

_ENTRA_ONLY = ("entra_token", "access_key", "service_token")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    checks: dict[str, dict[str, Any]]


@pytest.fixture
def served() -> Iterator[tuple[Emulator, str]]:
    emulator = Emulator(service_mode="default")
    with serve_in_thread(emulator.app) as url:
        yield emulator, url


def doctor(
    emulator: Emulator,
    url: str,
    *,
    connection_string: str | None = None,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    as_json: bool = True,
) -> Run:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AZURE_", "IDENTITY_", "MSI_", "IMDS_"))
    }
    environment.update(emulator.app_service_env(url) if env is None else env)
    environment["AZURE_SIGNALR_CONNECTION_STRING"] = (
        emulator.connection_string(url) if connection_string is None else connection_string
    )
    command = [sys.executable, "-m", "signalr_asgi_auth", "doctor", "--timeout", "2", *args]
    if as_json:
        command.append("--json")
    done = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=60, check=False
    )
    checks = {c["id"]: c for c in json.loads(done.stdout)["checks"]} if as_json else {}
    run = Run(done.returncode, done.stdout, done.stderr, checks)
    assert_nothing_secret(run, emulator)
    return run


def assert_nothing_secret(run: Run, emulator: Emulator) -> None:
    text = run.stdout + run.stderr
    assert "eyJ" not in text  # no JWT: neither the Entra token nor a client or server token
    assert "Traceback" not in text
    secrets = [*emulator.access_keys, emulator.identity_header]
    secrets += [key.access_key for key in emulator.issued_keys]
    for secret in secrets:
        assert secret not in text


def statuses(run: Run) -> dict[str, str]:
    return {name: check["status"] for name, check in run.checks.items()}


def test_service_owner_in_default_mode_passes_every_check(served: tuple[Emulator, str]) -> None:
    emulator, url = served
    emulator.assign(emulator.system_identity, "SignalR Service Owner")
    run = doctor(emulator, url, as_json=False)
    assert run.code == 0, run.stdout
    lines = run.stdout.splitlines()
    assert [line[0] for line in lines[:8]] == ["✓"] * 8
    assert "All required checks passed." in run.stdout
    assert emulator.system_identity.object_id in run.stdout
    assert emulator.system_identity.client_id in run.stdout
    assert emulator.tenant_id in run.stdout
    assert "Default" in lines[7]
    # a progress line per check, on stderr only
    assert run.stderr.count("… checking") == 8
    assert "checking" not in run.stdout
    # the server connection was opened and closed, and the emulator saw it
    assert emulator.log.count("server.connect") == 1
    deadline = time.monotonic() + 5
    while emulator.server_connections and time.monotonic() < deadline:
        time.sleep(0.02)  # the emulator's session ends just after the socket closes
    assert emulator.server_connections == []


def test_json_output_is_clean_and_says_ok(served: tuple[Emulator, str]) -> None:
    emulator, url = served
    emulator.assign(emulator.system_identity, "SignalR Service Owner")
    run = doctor(emulator, url)
    assert run.code == 0
    assert json.loads(run.stdout)["ok"] is True
    assert set(statuses(run).values()) == {"pass"}
    assert list(run.checks) == [
        "connection_string",
        "entra_token",
        "service_health",
        "access_key",
        "service_token",
        "rest_api",
        "server_connection",
        "service_mode",
    ]


def test_app_server_only_passes_with_the_optional_checks_failed(
    served: tuple[Emulator, str],
) -> None:
    emulator, url = served
    emulator.assign(emulator.system_identity, "SignalR App Server")
    run = doctor(emulator, url)
    assert run.code == 0
    assert statuses(run) == {
        "connection_string": "pass",
        "entra_token": "pass",
        "service_health": "pass",
        "access_key": "pass",
        "service_token": "fail",
        "rest_api": "fail",
        "server_connection": "pass",
        "service_mode": "pass",
    }
    assert run.checks["service_token"]["required"] is False
    assert "SignalR REST API Owner" in run.checks["rest_api"]["fix"]
    assert emulator.system_identity.object_id in run.checks["rest_api"]["fix"]
    strict = doctor(emulator, url, args=("--strict",))
    assert strict.code == 1


def test_rest_api_owner_only_fails_the_key_and_the_server_connection(
    served: tuple[Emulator, str],
) -> None:
    emulator, url = served
    emulator.assign(emulator.system_identity, "SignalR REST API Owner")
    run = doctor(emulator, url)
    assert run.code == 1
    got = statuses(run)
    assert got["access_key"] == got["server_connection"] == "fail"
    assert got["service_token"] == got["rest_api"] == "pass"
    assert got["service_mode"] == "skip"
    fix = run.checks["access_key"]["fix"]
    assert 'az role assignment create --role "SignalR App Server"' in fix
    assert emulator.system_identity.object_id in fix
    assert "SignalR App Server" in run.checks["server_connection"]["fix"]


def test_no_role_fails_every_role_check(served: tuple[Emulator, str]) -> None:
    emulator, url = served
    run = doctor(emulator, url)
    assert run.code == 1
    got = statuses(run)
    assert got["entra_token"] == got["service_health"] == "pass"
    for name in ("access_key", "service_token", "rest_api", "server_connection"):
        assert got[name] == "fail", name
    assert "403" in run.checks["access_key"]["detail"]


def test_serverless_mode_is_told_from_the_server_connection_refusal() -> None:
    emulator = Emulator(service_mode="serverless")
    emulator.assign(emulator.system_identity, "SignalR Service Owner")
    with serve_in_thread(emulator.app) as url:
        run = doctor(emulator, url)
    assert run.code == 0
    assert run.checks["server_connection"]["status"] == "skip"
    assert "--service-mode Default" in run.checks["server_connection"]["fix"]
    mode = run.checks["service_mode"]
    assert mode["status"] == "pass"
    assert mode["detail"].startswith("Serverless")


def test_the_identity_endpoint_down_fails_the_entra_check(served: tuple[Emulator, str]) -> None:
    emulator, url = served
    env = emulator.app_service_env(url)
    env["IDENTITY_ENDPOINT"] = closed_port_url("/msi/token")
    run = doctor(emulator, url, env=env)
    assert run.code == 1
    assert run.checks["entra_token"]["status"] == "fail"
    assert "az webapp identity assign" in run.checks["entra_token"]["fix"]
    # what needs the token is skipped, not failed again; the health check still runs
    assert run.checks["access_key"]["status"] == "skip"
    assert run.checks["service_health"]["status"] == "pass"


def test_the_identity_endpoint_answering_500_fails_the_entra_check(
    served: tuple[Emulator, str],
) -> None:
    emulator, url = served
    emulator.assign(emulator.system_identity, "SignalR Service Owner")
    emulator.inject("identity.app_service", status=500)
    run = doctor(emulator, url)
    assert run.code == 1
    assert run.checks["entra_token"]["status"] == "fail"
    assert "ManagedIdentityCredential" in run.checks["entra_token"]["detail"]


def test_health_503_fails_the_health_check(served: tuple[Emulator, str]) -> None:
    emulator, url = served
    emulator.assign(emulator.system_identity, "SignalR Service Owner")
    emulator.inject("signalr.health", status=503)
    run = doctor(emulator, url)
    assert run.code == 1
    assert run.checks["service_health"]["status"] == "fail"
    assert "503" in run.checks["service_health"]["detail"]
    assert run.checks["access_key"]["status"] == "pass"


@pytest.mark.parametrize("fault", [{"status": 500}, {"delay": 4.0}], ids=["500", "timeout"])
def test_a_failing_key_fetch_fails_the_key_check(
    served: tuple[Emulator, str], fault: dict[str, Any]
) -> None:
    emulator, url = served
    emulator.assign(emulator.system_identity, "SignalR Service Owner")
    emulator.inject("signalr.access_key", **fault)
    run = doctor(emulator, url)
    assert run.code == 1
    key = run.checks["access_key"]
    assert key["status"] == "fail"
    assert ("500" in key["detail"]) if "status" in fault else ("within 2 s" in key["detail"])
    assert run.checks["server_connection"]["status"] == "pass"


def test_a_refused_server_connection_fails_and_the_mode_cannot_be_told(
    served: tuple[Emulator, str],
) -> None:
    emulator, url = served
    emulator.assign(emulator.system_identity, "SignalR Service Owner")
    emulator.inject("server.connect", status=503)
    run = doctor(emulator, url)
    assert run.code == 1
    assert run.checks["server_connection"]["status"] == "fail"
    assert run.checks["service_mode"]["status"] == "skip"
    assert "Cannot be told" in run.checks["service_mode"]["detail"]


def test_an_access_key_connection_string_skips_entra_and_uses_the_key(
    served: tuple[Emulator, str],
) -> None:
    emulator, url = served
    run = doctor(emulator, url, connection_string=emulator.connection_string(url, auth_type=None))
    assert run.code == 0
    got = statuses(run)
    assert [got[name] for name in _ENTRA_ONLY] == ["skip"] * 3
    assert got["rest_api"] == got["server_connection"] == "pass"
    assert "AccessKey=(hidden)" in run.checks["connection_string"]["detail"]


def test_a_wrong_access_key_fails_the_rest_call(served: tuple[Emulator, str]) -> None:
    emulator, url = served
    wrong = f"Endpoint={url};AccessKey={'A' * 43}=;Version=1.0;"
    run = doctor(emulator, url, connection_string=wrong)
    assert run.code == 1
    assert run.checks["rest_api"]["status"] == "fail"
    assert run.checks["rest_api"]["required"] is True
    assert "A" * 43 not in run.stdout + run.stderr


def test_no_connection_string_says_how_to_set_it(served: tuple[Emulator, str]) -> None:
    emulator, url = served
    run = doctor(emulator, url, connection_string="")
    assert run.code == 1
    first = run.checks["connection_string"]
    assert first["status"] == "fail"
    assert "az webapp config appsettings set" in first["fix"]
    assert {check["status"] for name, check in run.checks.items() if name != first["id"]} == {
        "skip"
    }


def test_a_broken_connection_string_is_named_but_not_echoed(served: tuple[Emulator, str]) -> None:
    emulator, url = served
    secret = "S3cretValueThatMustNotShow"
    run = doctor(emulator, url, connection_string=f"Endpoint={url};AccessKey={secret}Version=1.0")
    assert run.code == 1
    assert run.checks["connection_string"]["status"] == "fail"
    assert secret not in run.stdout + run.stderr


def test_each_endpoint_of_the_environment_is_checked() -> None:
    east, west = Emulator(service_mode="default"), Emulator(service_mode="default")
    with serve_in_thread(east.app) as east_url, serve_in_thread(west.app) as west_url:
        wrong = f"Endpoint={west_url};AccessKey={'B' * 43}=;Version=1.0;"
        env = {
            "Azure__SignalR__ConnectionString__east": east.connection_string(
                east_url, auth_type=None
            ),
            "Azure__SignalR__ConnectionString__west__secondary": wrong,
        }
        run = doctor(east, east_url, connection_string="", env=env, as_json=False)
        as_json = doctor(east, east_url, connection_string="", env=env)
    assert run.code == as_json.code == 1
    east_part, _, west_part = run.stdout.partition("Endpoint west__secondary:")
    assert east_part.startswith("Endpoint east:")
    assert "✗" not in east_part
    assert "✗ REST API call" in west_part
    assert "B" * 43 not in run.stdout + run.stderr
    rows = json.loads(as_json.stdout)["checks"]
    assert {row["endpoint"] for row in rows} == {"east", "west__secondary"}
    assert len(rows) == 18
    assert [row["detail"] for row in rows if row["id"] == "endpoint_name"] == [
        "'east', a primary",
        "'west', a secondary",
    ]


def test_endpoint_names_are_checked_and_nothing_from_outside_is_printed_raw() -> None:
    emulator = Emulator(service_mode="default")
    forged = "x\x1b[2K\r✓ Service mode: Default\n✓ All required checks passed.\x1b[8m"
    with serve_in_thread(emulator.app) as url:
        good = emulator.connection_string(url, auth_type=None)
        env = {
            f"Azure__SignalR__ConnectionString__{forged}": good,
            "Azure__SignalR__ConnectionString__east__secondary": good,
            "Azure__SignalR__ConnectionString__EAST": good,
        }
        run = doctor(emulator, url, connection_string="", env=env, as_json=False)
        as_json = doctor(emulator, url, connection_string="", env=env)
    assert run.code == as_json.code == 1
    printed = run.stdout + run.stderr
    assert "\x1b" not in printed
    assert "\r" not in printed
    lines = run.stdout.splitlines()
    assert [line for line in lines if line.startswith("Endpoint ")] == [
        "Endpoint EAST:",
        "Endpoint east__secondary:",
        f"Endpoint {forged!r}:".replace("'", ""),
    ]
    assert sum(line.startswith("✓ All") for line in lines) == 0
    assert as_json.stdout.isascii()
    names = [row for row in json.loads(as_json.stdout)["checks"] if row["id"] == "endpoint_name"]
    assert [row["status"] for row in names] == ["pass", "fail", "fail"]
    assert names[0]["detail"] == "'EAST', a primary"
    assert "ConnectionString__EAST names the same endpoint" in names[1]["detail"]
    assert "differ by case only" in names[1]["detail"]
    assert "must hold 1 to 64 letters" in names[2]["detail"]


def test_values_of_the_connection_string_are_printed_escaped(served: tuple[Emulator, str]) -> None:
    emulator, url = served
    forged = "abc\x1b[2K\r✓ Microsoft Entra token: ok\n✓ Service mode: Default"
    string = f"Endpoint={url};AuthType=azure.msi;ClientId={forged};Version=1.0;"
    run = doctor(emulator, url, connection_string=string, as_json=False)
    assert run.code == 1
    assert "\x1b" not in run.stdout
    assert "ClientId=abc\\x1b[2K\\r✓ Microsoft Entra token: ok\\n✓ Service mode" in run.stdout
    assert not any(line.startswith("✓ Service mode: Default") for line in run.stdout.splitlines())


@pytest.mark.parametrize("timeout", ["nan", "inf", "-inf", "0", "-1", "1e309", "ten"])
def test_a_timeout_that_is_no_positive_finite_number_is_refused(
    timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "doctor",
                "--connection-string",
                "Endpoint=https://x;AccessKey=k;",
                "--timeout",
                timeout,
            ]
        )
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "argument --timeout:" in error
    assert "Traceback" not in error


def test_a_peer_that_trickles_bytes_fails_each_check_after_the_timeout() -> None:
    key = "A" * 43 + "="
    with trickling_peer() as peer:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "signalr_asgi_auth", "doctor", "--timeout", "1"),
                *("--connection-string", f"Endpoint={peer};AccessKey={key};Version=1.0;"),
            ],
            capture_output=True,
            text=True,
            timeout=60,  # far beyond the checks' 1 s each: only a check without a deadline hangs
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert f"✗ Service health (HEAD /api/health): SignalR Service at {peer} did not answer " in (
        done.stdout
    )
    assert "✗ Server connection (Default mode): " in done.stdout
    assert "within 1 s" in done.stdout
