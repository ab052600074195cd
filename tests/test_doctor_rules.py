"""``doctor``'s verdicts and its secret hygiene where scripts/mutation found them unasserted, run in
this process (``run_doctor``, what the command calls) against the emulator on 127.0.0.1, so that
mutmut sees which checks each test reaches."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from signalr_asgi_auth._doctor import run_doctor
from signalr_asgi_auth.emulator import Emulator, serve_in_thread

CLIENT_SECRET = "qT8Q~dOcToRsEcReT.42-mnopQRSxyz"
# azure-identity refuses this tenant id before any request: the Entra check fails on this machine
# without reaching out to a real authority.
UNUSABLE_TENANT = "not/a-tenant"


@pytest.fixture
def served() -> Iterator[tuple[Emulator, str]]:
    emulator = Emulator(service_mode="default")
    with serve_in_thread(emulator.app) as url:
        yield emulator, url


def doctor(connection_string: str, *, as_json: bool) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_doctor([("", connection_string)], timeout=2, as_json=as_json, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def checks(text: str) -> dict[str, dict[str, Any]]:
    return {check["id"]: check for check in json.loads(text)["checks"]}


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "checklist"])
def test_an_app_registrations_client_secret_is_never_printed(
    served: tuple[Emulator, str], as_json: bool
) -> None:
    _, url = served
    text = (
        f"Endpoint={url};AuthType=azure.app;ClientId=c0ffee;TenantId={UNUSABLE_TENANT};"
        f"ClientSecret={CLIENT_SECRET};Version=1.0;"
    )

    code, out, err = doctor(text, as_json=as_json)

    assert code == 1
    assert CLIENT_SECRET not in out + err
    detail = (
        f"Endpoint={url}; AuthType=azure.app; ClientId=c0ffee; TenantId={UNUSABLE_TENANT}; "
        "ClientSecret=(hidden)"
    )
    if as_json:
        found = checks(out)
        assert found["connection_string"]["status"] == "pass"
        assert found["connection_string"]["detail"] == detail
        assert found["entra_token"]["status"] == "fail"
    else:
        assert f"✓ Connection string: {detail}\n" in out


def test_an_access_key_is_never_printed(served: tuple[Emulator, str]) -> None:
    emulator, url = served
    text = emulator.connection_string(url, auth_type=None)

    code, out, err = doctor(text, as_json=True)

    found = checks(out)
    assert code == 0, out
    assert found["connection_string"]["detail"] == f"Endpoint={url}; AccessKey=(hidden)"
    assert "prefer AuthType=azure.msi" in found["connection_string"]["fix"]
    for key in emulator.access_keys:
        assert key not in out + err
