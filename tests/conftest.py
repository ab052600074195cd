"""Fixtures for the whole suite: the anyio backends, and the emulator served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from signalr_asgi_auth.emulator import Emulator, resource_id_named, serve_in_thread

# Every variable that makes azure-identity pick another managed-identity flavour, or another
# credential, than the one a fixture sets up (azure-identity's detection order).
_IDENTITY_VARIABLES = (
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_AUTHORITY_HOST",
    "AZURE_CLIENT_SECRET",
)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def emulator() -> Emulator:
    """A fresh emulator: no user-assigned identities, no role assignments, empty log."""
    return Emulator()


@pytest.fixture
def emulator_url(emulator: Emulator) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` where ``emulator`` is served for this test."""
    with serve_in_thread(emulator.app) as url:
        yield url


def _set_only(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], unset: tuple[str, ...]
) -> dict[str, str]:
    # Kept for the whole test, not only around construction: the sync credential (MSAL) reads
    # the variables again on every token request.
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def app_service_env(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, emulator_url: str
) -> dict[str, str]:
    """The environment that sends azure-identity's App Service managed identity to the emulator."""
    return _set_only(monkeypatch, emulator.app_service_env(emulator_url), _IDENTITY_VARIABLES)


@pytest.fixture
def imds_env(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, emulator_url: str
) -> dict[str, str]:
    """The environment that sends azure-identity's IMDS managed identity to the emulator."""
    unset = (*_IDENTITY_VARIABLES, "IDENTITY_ENDPOINT", "IDENTITY_HEADER")
    return _set_only(monkeypatch, emulator.imds_env(emulator_url), unset)


@pytest.fixture
def east() -> Emulator:
    """A resource named east; ``west`` is another resource of its tenant (several endpoints)."""
    return Emulator(resource_id=resource_id_named("east"))


@pytest.fixture
def west(east: Emulator) -> Emulator:
    return Emulator(resource_id=resource_id_named("west"), authority=east.authority)


@pytest.fixture
def tenant_urls(
    east: Emulator, west: Emulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    """east and west served, with azure-identity's App Service managed identity sent to the
    tenant's identity endpoint (east's)."""
    with serve_in_thread(east.app) as east_url, serve_in_thread(west.app) as west_url:
        _set_only(monkeypatch, east.app_service_env(east_url), _IDENTITY_VARIABLES)
        yield east_url, west_url
