"""The README's Hubs example, taken from README.md as it is written, against the independent service
(tests/independent_service: written from the .NET sources, raw msgpack, none of the library's
codec). The service checks the server token signed with the access key, answers the handshake,
connects a JSON and a MessagePack client through the hub's server connections and records what
the app sends it: so what the README tells a newcomer to write is what this test runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from signalr_asgi_auth import SignalRAuth

from ..independent_service import Client, IndependentService

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parents[2] / "README.md"
KEY = "readme-hub-test-access-key-0123456789"
SERVERLESS_PART = "# Serverless mode with upstream"


def readme_hub_snippet() -> str:
    """The Python block of the README's Hubs section, up to its Serverless-mode lines (those need
    a Starlette app and a verifier around them; the Default-mode line before them is kept)."""
    section = README.read_text(encoding="utf-8").split("\n## Hubs\n", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "the README's Hubs section has no Python example"
    snippet = code.group(1)
    assert SERVERLESS_PART in snippet, "the Hubs example no longer marks its Serverless part"
    return snippet.split(SERVERLESS_PART, 1)[0]


def completion(client: Client, invocation_id: str) -> Any:
    for message in client.received:
        if client.protocol == "json":
            if message.get("type") == 3 and message.get("invocationId") == invocation_id:
                return message
        elif message[0] == 3 and message[2] == invocation_id:
            return message
    return None


def with_target(client: Client, target: str) -> list[Any]:
    if client.protocol == "json":
        return [m["arguments"] for m in client.received if m.get("target") == target]
    return [m[4] for m in client.received if m[0] == 1 and m[3] == target]


async def test_the_readme_hub_answers_clients_of_the_independent_service() -> None:
    async with IndependentService.running(access_key=KEY) as service:
        namespace: dict[str, Any] = {"cs": f"Endpoint={service.url};AccessKey={KEY};Version=1.0"}
        exec(compile(readme_hub_snippet(), str(README), "exec"), namespace)
        auth = namespace["auth"]
        assert isinstance(auth, SignalRAuth)
        async with auth:
            await service.wait_for_servers("chat", count=5)
            ann = await service.connect_client("chat", protocol="json", user_id="ann")
            bob = await service.connect_client("chat", protocol="messagepack", user_id="bob")
            assert (ann.handshake, bob.handshake) == ({}, {})

            # send: a completion with the result, and one BroadcastData with a payload per protocol.
            await ann.invoke("send", "hi", invocation_id="1")
            await ann.wait_for(lambda c: completion(c, "1") is not None)
            assert completion(ann, "1") == {"type": 3, "invocationId": "1", "result": "delivered"}
            await bob.wait_for(lambda c: bool(with_target(c, "newMessage")))
            assert (
                with_target(ann, "newMessage") == with_target(bob, "newMessage") == [["ann", "hi"]]
            )
            broadcasts = [m for c in service.up("chat") for m in c.of_type(10)]
            assert len(broadcasts) == 1
            payloads = {name.lower(): data for name, data in broadcasts[0][2].items()}
            assert set(payloads) == {"json", "messagepack"}
            first = json.loads(payloads["json"].split(b"\x1e")[0])
            assert (first["target"], first["arguments"]) == ("newMessage", ["ann", "hi"])

            # HubMethodError: an error completion with its message (MessagePack: [3, {}, id, 1, e]).
            await bob.invoke("fail", invocation_id="2")
            await bob.wait_for(lambda c: completion(c, "2") is not None)
            assert completion(bob, "2") == [3, {}, "2", 1, "nope"]

            # join: the group add is acknowledged by the service before the group hears "joined".
            await bob.invoke("join", "room", invocation_id="3")
            await bob.wait_for(lambda c: completion(c, "3") is not None)
            assert completion(bob, "3") == [3, {}, "3", 2]  # a void result
            joins = [m for c in service.up("chat") for m in c.of_type(18)]  # JoinGroupWithAck
            assert [(m[1], m[2]) for m in joins] == [(bob.connection_id, "room")]
            assert bob.groups == {"room"}
            await bob.wait_for(lambda c: bool(with_target(c, "joined")))
            assert with_target(bob, "joined") == [["bob"]]
            assert with_target(ann, "joined") == []

            # count: a stream of items, then its completion.
            await bob.send([4, {}, "4", "count", [3], []])
            await bob.wait_for(lambda c: completion(c, "4") is not None)
            items = [m[3] for m in bob.received if m[0] == 2 and m[2] == "4"]
            assert (items, completion(bob, "4")) == ([0, 1, 2], [3, {}, "4", 2])

            # ask: a client result; the client's answer is the invocation's result.
            await ann.invoke("ask", invocation_id="5")
            await ann.wait_for(lambda c: bool(with_target(c, "confirm")))
            question = next(m for m in ann.received if m.get("target") == "confirm")
            assert question["arguments"] == ["Sure?"]
            await ann.send({"type": 3, "invocationId": question["invocationId"], "result": True})
            await ann.wait_for(lambda c: completion(c, "5") is not None)
            assert completion(ann, "5") == {"type": 3, "invocationId": "5", "result": True}

            for client in (ann, bob):
                await service.close_client(client)
    assert {a.auth for a in service.attempts} == {"access-key"}
    assert all(c.errors == [] for c in service.connections)
