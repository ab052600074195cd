"""Writing a Hub: what registration accepts and the errors that say what to change."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import signalr_asgi_auth
from signalr_asgi_auth import ConfigurationError
from signalr_asgi_auth.hubs import Hub, HubCall, HubMethodError


def test_one_hub_method_error_class() -> None:
    assert signalr_asgi_auth.HubMethodError is HubMethodError
    assert signalr_asgi_auth.Hub is Hub


def generator(call: HubCall) -> Iterator[int]:
    yield 1


def no_call() -> None:
    return None


def keyword_only(call: HubCall, *, room: str) -> None:
    return None


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (generator, "is a generator: a streaming hub method is an async generator"),
        (no_call, r"must take the call as its first parameter: def m\(call, ...\)"),
        (keyword_only, "keyword-only parameter 'room' without a default"),
        ("not callable", "must be a function"),
    ],
)
def test_handlers_that_cannot_be_hub_methods(function: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Hub("chat").on("m")(function)


def test_names_and_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="Invalid hub name 'no spaces'"):
        Hub("no spaces")
    with pytest.raises(ConfigurationError, match="protocols takes 'json' and/or 'messagepack'"):
        Hub("chat", protocols=["xml"])
    with pytest.raises(ConfigurationError, match="keep_alive_interval"):
        Hub("chat", keep_alive_interval=0)
    for size in (0, -1, 2**31, 1.5, True, "1MB", None):
        with pytest.raises(
            ConfigurationError,
            match=r"max_receive_message_size must be a whole number of bytes from 1 to 2147483647",
        ):
            Hub("chat", max_receive_message_size=size)  # type: ignore[arg-type]
    assert Hub("chat").max_receive_message_size == 1024 * 1024
    assert Hub("chat", max_receive_message_size=32 * 1024).max_receive_message_size == 32 * 1024
    hub = Hub("chat")
    with pytest.raises(ConfigurationError, match="A hub method needs a name"):
        hub.on("")
    hub.on("send")(no_call_but_call)
    with pytest.raises(ConfigurationError, match="Hub 'chat' already has a method 'SEND'"):
        hub.on("SEND")(no_call_but_call)


def no_call_but_call(call: HubCall) -> None:
    return None


@pytest.mark.parametrize("threads", [0, -1, 1001, 2.5, True, "8"])
def test_worker_threads_is_a_whole_number(threads: object) -> None:
    with pytest.raises(ConfigurationError, match="worker_threads must be a whole number"):
        Hub("chat", worker_threads=threads)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("register", "function", "message"),
    [
        (Hub.on_connected, lambda call, error: None, r"must take \(call\)"),
        (Hub.on_disconnected, lambda call, a, b: None, r"must take \(call\) or \(call, error\)"),
    ],
)
def test_event_handlers(
    register: Callable[[Hub, Any], Any], function: Callable[..., None], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        register(Hub("chat"), function)


def test_argument_checks() -> None:
    hub = Hub("chat")

    @hub.on("m")
    def m(call: HubCall, a: int, b: str | None, c: list[int], d: Any, *rest: float) -> None:
        return None

    method = hub.method("M")
    assert method is not None
    assert method.check((1, None, [], object())) is None
    assert method.check((1, "x", [1], 1, 2.5, 3)) is None
    assert method.check((1,)) == (
        "Invocation of 'm' provides 1 argument(s) but the method takes at least 4."
    )
    assert method.check((1.5, None, [], 0)) == "Argument 1 ('a') of 'm' must be int, not float."
    assert method.check((1, 2, [], 0)) == "Argument 2 ('b') of 'm' must be str or null, not int."
    assert (
        method.check((1, None, {}, 0)) == "Argument 3 ('c') of 'm' must be a list, not an object."
    )
    assert repr(hub) == "Hub('chat', methods=['m'])"
