"""The memory of where connections live: bounded, least recently used forgotten first."""

from __future__ import annotations

from signalr_asgi_auth._connection_homes import ConnectionHomes


def test_the_least_recently_used_is_forgotten_first() -> None:
    homes = ConnectionHomes(limit=3)
    for n in range(3):
        homes.learn(f"c{n}", "east")
    assert homes.get("c0") == "east"  # c0 used: c1 is now the oldest
    homes.learn("c3", "west")
    assert len(homes) == 3
    assert homes.get("c1") is None
    assert [homes.get(c) for c in ("c0", "c2", "c3")] == ["east", "east", "west"]


def test_learning_again_moves_and_forgetting_is_quiet() -> None:
    homes = ConnectionHomes(limit=2)
    homes.learn("a", "east")
    homes.learn("b", "east")
    homes.learn("a", "west")  # a is the newest now
    homes.learn("c", "east")
    assert (homes.get("a"), homes.get("b"), homes.get("c")) == ("west", None, "east")
    homes.forget("a")
    homes.forget("never-seen")
    assert homes.get("a") is None
    assert len(homes) == 1
