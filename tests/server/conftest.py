"""Fixtures of the server connections' tests: the fake service and an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx2
import pytest

from .fake_service import FakeService


@pytest.fixture
async def fake() -> AsyncIterator[FakeService]:
    """The fake ``/server/`` endpoint, served in this test's event loop on 127.0.0.1."""
    service = FakeService()
    async with anyio.create_task_group() as tasks:
        await tasks.start(service.serve)
        yield service
        tasks.cancel_scope.cancel()


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client
