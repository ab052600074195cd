"""Fault injection: status, delay, malformed bodies, extra headers, how many times, removal."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from azure.core.exceptions import DecodeError
from azure.identity import ManagedIdentityCredential

from signalr_asgi_auth.emulator import Emulator

from .helpers import SIGNALR_SCOPE, TIMEOUT


def health(url: str) -> httpx2.Response:
    return httpx2.get(f"{url}/api/health", timeout=TIMEOUT)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    "path", ["/api/health", "/api/health?api-version=2022-06-01", "/api/v1/health"]
)
def test_health_answers_200_without_credentials(
    emulator: Emulator, emulator_url: str, method: str, path: str
) -> None:
    # What the SDKs probe: HEAD /api/health?api-version=... (REST), /api/v1/health (v1), no token.
    response = httpx2.request(method, emulator_url + path, timeout=TIMEOUT)

    assert response.status_code == 200
    assert response.content == b""
    assert [entry.status for entry in emulator.log.entries("signalr.health")] == [200]


def test_status_fault_applies_the_given_number_of_times(
    emulator: Emulator, emulator_url: str
) -> None:
    fault = emulator.inject("signalr.health", status=503, times=2)

    statuses = [health(emulator_url).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    assert [entry.status for entry in emulator.log.entries("signalr.health")] == statuses
    assert fault.applied == 2
    assert emulator.faults == []


def test_status_alone_answers_a_small_json_error(emulator: Emulator, emulator_url: str) -> None:
    emulator.inject("signalr.health", status=500, times=1)

    response = health(emulator_url)

    assert response.json()["code"] == "InjectedFault"
    assert "signalr.health" in response.json()["message"]


def test_fault_without_times_lasts_until_removed(emulator: Emulator, emulator_url: str) -> None:
    fault = emulator.inject("signalr.health", status=500)
    other = emulator.inject("identity.jwks", status=404)
    assert [health(emulator_url).status_code for _ in range(3)] == [500, 500, 500]

    emulator.remove_fault(fault)
    assert health(emulator_url).status_code == 200
    assert emulator.faults == [other]
    emulator.clear_faults()
    assert emulator.faults == []


def test_extra_headers_decorate_the_real_answer(emulator: Emulator, emulator_url: str) -> None:
    emulator.inject("signalr.health", headers={"Retry-After": "7"}, times=1)

    response = health(emulator_url)

    assert response.status_code == 200
    assert response.headers["Retry-After"] == "7"
    assert "Retry-After" not in health(emulator_url).headers


@pytest.mark.anyio
async def test_delay_holds_the_answer_back(emulator: Emulator, emulator_url: str) -> None:
    emulator.inject("signalr.health", delay=0.3, times=1)
    emulator.inject("signalr.health", delay=3.0, times=1)

    async with httpx2.AsyncClient(timeout=TIMEOUT) as client:
        started = anyio.current_time()
        delayed = await client.get(f"{emulator_url}/api/health")
        elapsed = anyio.current_time() - started
        with pytest.raises(httpx2.ReadTimeout):
            await client.get(f"{emulator_url}/api/health", timeout=0.15)

    assert delayed.status_code == 200
    # At least its own delay, and well short of the other one (a busy machine adds time).
    assert 0.3 <= elapsed < 2.5


def test_malformed_body_reaches_the_real_credential(
    emulator: Emulator, app_service_env: dict[str, str]
) -> None:
    emulator.inject("identity.app_service", body='{"access_token": ', times=1)
    credential = ManagedIdentityCredential(retry_total=0)

    with pytest.raises(DecodeError):
        credential.get_token(SIGNALR_SCOPE)
    token = credential.get_token(SIGNALR_SCOPE)

    assert token.token.count(".") == 2
    assert [entry.status for entry in emulator.log] == [200, 200]


def test_status_and_body_together(emulator: Emulator, emulator_url: str) -> None:
    emulator.inject(
        "signalr.access_key", status=429, body="slow down", headers={"Content-Type": "text/plain"}
    )

    response = httpx2.get(f"{emulator_url}/api/v1/auth/accessKey", timeout=TIMEOUT)

    assert (response.status_code, response.text) == (429, "slow down")
    assert response.headers["Content-Type"].startswith("text/plain")


def test_real_credential_retries_past_one_server_error(
    emulator: Emulator, app_service_env: dict[str, str]
) -> None:
    emulator.inject("identity.app_service", status=500, times=1)

    token = ManagedIdentityCredential().get_token(SIGNALR_SCOPE)

    assert token.token
    assert [entry.status for entry in emulator.log] == [500, 200]


@pytest.mark.parametrize(
    ("route", "status", "delay", "times", "message"),
    [
        ("identity.nope", 500, 0, None, "Unknown route 'identity.nope'"),
        ("signalr.health", 42, 0, None, "HTTP status code"),
        ("signalr.health", None, -1, None, "zero or more seconds"),
        ("signalr.health", 500, 0, 0, "at least once"),
        ("signalr.health", None, 0, None, "changes nothing"),
    ],
)
def test_bad_faults_are_refused(
    emulator: Emulator,
    route: str,
    status: int | None,
    delay: float,
    times: int | None,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        emulator.inject(route, status=status, delay=delay, times=times)
    assert emulator.faults == []
