"""A hung identity endpoint: the credentials this library builds give up an HTTP attempt after
``credential_timeout``, not after azure-core's 300 s, so their worker threads do not pile up.

Real azure-identity (App Service managed identity, sync, in a worker thread) against the emulator,
whose identity endpoint is made to answer only after a minute. The adapter stops waiting after
``credential_timeout`` in any case; what is checked here is that the credential's own call ends
too: azure-identity logs its failure (a read timeout) while the emulator still holds the answer
back. azure-core tries four times, 0.5 s each, waiting about 5 s in all between them (seen: the
failure 6.8 s after the start); without the per-attempt timeout each try would wait 300 s.
"""

from __future__ import annotations

import logging
import time

import anyio
import pytest

from signalr_asgi_auth import NotReadyError
from signalr_asgi_auth.emulator import Emulator

from .support import auth_for, principal_with_role

pytestmark = pytest.mark.anyio

HUNG = 60.0
TIMEOUT = 0.5


def credential_failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name.startswith("azure.identity") and record.levelno >= logging.WARNING
    ]


async def test_a_hung_identity_call_ends_soon_after_the_credential_timeout(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    principal = principal_with_role(emulator)
    emulator.inject("identity.app_service", delay=HUNG)
    auth = auth_for(
        emulator,
        emulator_url,
        principal,
        credential_timeout=TIMEOUT,
        startup_timeout=0.1,
        retry_initial_delay=600,  # one attempt by the keeper during the test
        retry_max_delay=600,
    )
    started = time.time()
    async with auth as signalr:
        with anyio.fail_after(20):
            while not credential_failures(caplog):  # noqa: ASYNC110 - polling the log
                await anyio.sleep(0.05)
        with pytest.raises(NotReadyError) as caught:
            await signalr.negotiate("chat")

    ended = credential_failures(caplog)[0].created
    assert ended - started < 4 * TIMEOUT + 12  # not 4 x 300 s, nor the minute the emulator waits
    # The emulator logs a request once it has answered: none yet, so the call ended on its own.
    assert emulator.log.entries("identity.app_service") == []
    assert f"within {TIMEOUT:g} s" in str(caught.value)
