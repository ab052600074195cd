"""What benchmarks (g) and (h) share: the hub app in either service mode on an emulator of its own,
and the bare client in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from signalr_asgi_auth.emulator import ManagedIdentityAuth, UpstreamSettings, UpstreamTemplate

from ._common import LOADGEN_CPU, ROOT, ServerProcess, running_server
from ._emulated import app_environment, new_emulator, served

__all__ = ["AUDIENCE", "client_command", "hub_app", "run_client"]

AUDIENCE = "api://signalr-asgi-auth-bench"
_MODULE = "benchmarks._hub_server"


@contextmanager
def hub_app(mode: str) -> Iterator[ServerProcess]:
    """``benchmarks._hub_server`` in ``mode`` on a fresh emulator in the same mode; in Serverless
    mode the emulator's upstream calls the app with managed-identity tokens, as the examples'."""
    emulator = new_emulator(service_mode=mode)
    with ExitStack() as stack:
        url = stack.enter_context(served(emulator))
        env = app_environment(emulator, url)
        if mode == "serverless":
            env |= {
                "UPSTREAM_AUDIENCE": AUDIENCE,
                "UPSTREAM_TENANT_ID": emulator.tenant_id,
                "UPSTREAM_AUTHORITY": url,
                "UPSTREAM_OBJECT_ID": emulator.system_identity.object_id,
            }
        app = stack.enter_context(running_server([mode], env=env, module=_MODULE))
        if mode == "serverless":
            template = UpstreamTemplate(
                f"{app.url}/upstream/{{event}}",
                hub_pattern="chat",
                auth=ManagedIdentityAuth(AUDIENCE),
            )
            emulator.upstream = UpstreamSettings([template])
        yield app


def client_command(what: str, plan: dict[str, Any]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks._hub_client",
        what,
        json.dumps(plan),
        "--cpu",
        str(LOADGEN_CPU),
    ]


def run_client(what: str, plan: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    """Run ``benchmarks._hub_client`` to the end; its JSON report."""
    done = subprocess.run(
        client_command(what, plan),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        msg = f"The benchmark client failed ({done.returncode}):\n{done.stderr[-2000:]}"
        raise RuntimeError(msg)
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report
