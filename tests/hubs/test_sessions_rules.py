"""Hub dispatcher rules that scripts/mutation (and issue 24's planted bugs) found unasserted: a
client result that a client owes is failed as soon as that client leaves, so its caller does not
wait out its whole timeout."""

from __future__ import annotations

from typing import Any

import pytest

from signalr_asgi_auth.hubs import Hub, HubCall, HubMethodError
from signalr_asgi_auth.protocol import ClientInvocation, CloseConnection, Completion, Invocation

from .memory_pool import connect, running

pytestmark = pytest.mark.anyio


async def test_a_client_result_owed_by_a_client_that_leaves_fails_at_once() -> None:
    hub = Hub("chat")

    @hub.on("ask_other")
    async def ask_other(call: HubCall, other: str) -> Any:
        try:
            # Far longer than the test may take: only the leave can end this wait in time.
            return await call.clients.connection(other).invoke("confirm", timeout=3600)
        except HubMethodError as exc:
            return f"client error: {exc}"
        except TimeoutError as exc:
            return f"timeout: {exc}"

    async with running(hub) as (pool, events):
        caller = await connect(pool, events, "caller")
        await connect(pool, events, "asked")
        await caller.send(Invocation(target="ask_other", arguments=("asked",), invocation_id="1"))
        await pool.wait_for(
            lambda: [m for m in pool.of_type(ClientInvocation) if m.connection_id == "asked"]
        )

        await events.client_closed(CloseConnection("asked", "client went away"))

        done = await caller.receive(Completion, invocation_id="1")
    assert done.result == "client error: Connection 'asked' is disconnected."
