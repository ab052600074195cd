"""The connection registry on its own: hubs, users, groups, delivery and closing, without sockets."""

from __future__ import annotations

import json

import pytest

from signalr_asgi_auth.emulator import ClientConnection, ConnectionRegistry


def connection(
    connection_id: str, hub: str = "chat", user_id: str | None = None
) -> ClientConnection:
    return ClientConnection(connection_id, hub, user_id)


@pytest.fixture
def registry() -> ConnectionRegistry:
    registry = ConnectionRegistry()
    for conn in (
        connection("a1", "chat", "alice"),
        connection("a2", "Chat", "alice"),
        connection("b1", "chat", "bob"),
        connection("x1", "other", "alice"),
        connection("anon", "chat"),
    ):
        registry.add(conn)
    return registry


def ids(connections: list[ClientConnection]) -> list[str]:
    return sorted(c.connection_id for c in connections)


def test_lookups_by_hub_and_user(registry: ConnectionRegistry) -> None:
    assert ids(registry.in_hub("CHAT")) == ["a1", "a2", "anon", "b1"]
    assert ids(registry.of_user("chat", "alice")) == ["a1", "a2"]
    assert ids(registry.of_user("other", "alice")) == ["x1"]
    assert registry.get("b1") is not None
    assert registry.get("nope") is None
    registry.remove("b1")
    registry.remove("b1")  # twice is fine
    assert ids(registry.in_hub("chat")) == ["a1", "a2", "anon"]


def test_a_connection_id_is_unique(registry: ConnectionRegistry) -> None:
    with pytest.raises(ValueError, match="exists already"):
        registry.add(connection("a1"))


def test_connection_groups_are_per_hub(registry: ConnectionRegistry) -> None:
    assert registry.add_to_group("chat", "room", "b1")
    assert not registry.add_to_group("other", "room", "b1")  # b1 is not in that hub
    assert not registry.add_to_group("chat", "room", "missing")
    assert ids(registry.in_group("chat", "room")) == ["b1"]
    assert ids(registry.in_group("other", "room")) == []
    assert registry.remove_from_group("chat", "room", "b1")
    assert not registry.remove_from_group("chat", "room", "missing")
    assert registry.in_group("chat", "room") == []


def test_a_user_in_a_group_brings_current_and_future_connections(
    registry: ConnectionRegistry,
) -> None:
    registry.add_user_to_group("chat", "vip", "alice")
    assert ids(registry.in_group("chat", "vip")) == ["a1", "a2"]
    assert registry.user_in_group("chat", "vip", "alice")
    assert not registry.user_in_group("other", "vip", "alice")
    registry.add(connection("a3", "chat", "alice"))
    assert ids(registry.in_group("chat", "vip")) == ["a1", "a2", "a3"]

    registry.remove_user_from_group("chat", "vip", "alice")
    assert registry.in_group("chat", "vip") == []
    assert not registry.user_in_group("chat", "vip", "alice")
    registry.add(connection("a4", "chat", "alice"))
    assert registry.in_group("chat", "vip") == []


def test_a_user_with_a_connection_in_a_group_is_in_it(registry: ConnectionRegistry) -> None:
    registry.add_to_group("chat", "room", "b1")
    assert registry.user_in_group("chat", "room", "bob")
    assert registry.remove_from_all_groups("chat", "b1")
    assert not registry.user_in_group("chat", "room", "bob")


@pytest.mark.anyio
async def test_deliver_queues_an_invocation_for_each_connection_not_excluded(
    registry: ConnectionRegistry,
) -> None:
    count = await registry.deliver(
        registry.in_hub("chat"), "news", ["hi", {"n": 1}], excluded={"a2"}
    )
    assert count == 3
    [frame] = registry.get("a1").pending  # type: ignore[union-attr]
    assert isinstance(frame, str)
    assert frame.endswith("\x1e")
    assert json.loads(frame[:-1]) == {"type": 1, "target": "news", "arguments": ["hi", {"n": 1}]}
    assert registry.get("a2").pending == []  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_a_closing_connection_takes_no_more_messages() -> None:
    conn = connection("c")
    await conn.close("bye")
    await conn.send({"type": 1, "target": "late", "arguments": []})
    registry = ConnectionRegistry()
    registry.add(conn)
    assert await registry.deliver([conn], "late", []) == 0
    assert conn.closing
    assert [json.loads(f[:-1]) for f in conn.pending] == [
        {"type": 7, "error": "bye", "allowReconnect": False}
    ]


@pytest.mark.anyio
async def test_close_without_a_reason_has_no_error() -> None:
    conn = connection("c")
    await conn.close()
    assert [json.loads(f[:-1]) for f in conn.pending] == [{"type": 7, "allowReconnect": False}]


def test_repr_shows_no_claims() -> None:
    conn = ClientConnection("c", "chat", "alice", claims={"secret-ish": "value"})
    assert "value" not in repr(conn)
    assert "alice" in repr(conn)
