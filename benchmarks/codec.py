"""(i) The service codec on the message of every client frame, against plain ``msgpack``.

The message: a ConnectionData whose payload is a 100-byte JSON hub Invocation (a client's
``invoke("send", ...)``), the way SignalR Service hands each client frame to a server connection.
Rows, each timed in this process, interleaved, fastest of the repeats, in CPU time of this process
(``time.process_time_ns``: what the machine's other work on a shared box does not add to):

- ``msgpack.packb`` then ``msgpack.unpackb`` of the same array ``[6, id, payload, {}]``: the
  baseline, what any codec must at least do;
- ``encode_service_message`` then ``decode_service_message``: message object to bytes and back
  (the goal applies here: at most 2x);
- ``frame_service_message`` then ``ServiceMessageReader.feed``: the same with the size prefix and the
  streaming reader, as a server connection runs it, for context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgpack

from signalr_asgi_auth.protocol import (
    ConnectionData,
    Invocation,
    JsonHubProtocol,
    ServiceMessageReader,
    decode_service_message,
    encode_service_message,
    frame_service_message,
)

from ._common import Goal, Result, Settings, time_rows

__all__ = ["NAME", "TITLE", "run"]

NAME = "codec"
TITLE = "(i) ConnectionData encode+decode / msgpack packb+unpackb"

_CONNECTION_ID = "Cmo6aGNO2Ds1pGVQwtHgxAvW3Ksb2a1"  # the length of the ids Azure gives clients
_PAYLOAD_SIZE = 100


def _invocation_payload() -> bytes:
    """A JSON hub Invocation record of exactly 100 bytes, separator included."""
    json_hub = JsonHubProtocol()
    empty = len(json_hub.write(Invocation("send", ("",), "1")))
    payload = json_hub.write(Invocation("send", ("x" * (_PAYLOAD_SIZE - empty),), "1"))
    if len(payload) != _PAYLOAD_SIZE:
        msg = f"the invocation is {len(payload)} bytes, not {_PAYLOAD_SIZE}"
        raise RuntimeError(msg)
    return payload


def _rows() -> dict[str, Callable[[], object]]:
    message = ConnectionData(_CONNECTION_ID, _invocation_payload())
    array: list[Any] = [6, message.connection_id, message.payload, {}]
    if msgpack.packb(array) != encode_service_message(message):
        msg = "the codec does not write the array msgpack writes"
        raise RuntimeError(msg)
    if decode_service_message(encode_service_message(message)) != message:
        msg = "the codec does not read back what it wrote"
        raise RuntimeError(msg)
    reader = ServiceMessageReader()
    if reader.feed(frame_service_message(message)) != [message]:
        msg = "the streaming reader does not read back a framed message"
        raise RuntimeError(msg)

    def plain_msgpack() -> object:
        return msgpack.unpackb(msgpack.packb(array))

    def codec() -> object:
        return decode_service_message(encode_service_message(message))

    def framed() -> object:
        return reader.feed(frame_service_message(message))

    return {
        "msgpack packb+unpackb": plain_msgpack,
        "encode+decode": codec,
        "framed + streaming reader": framed,
    }


def run(settings: Settings) -> list[Result]:
    nanoseconds = time_rows(_rows(), settings.count(25), clock=time.process_time_ns)
    baseline = nanoseconds["msgpack packb+unpackb"]
    details: dict[str, Any] = {
        "ns_per_call": {name: round(value) for name, value in nanoseconds.items()},
        "ratios": {name: round(value / baseline, 2) for name, value in nanoseconds.items()},
        "payload_bytes": _PAYLOAD_SIZE,
        "method": "fastest of interleaved repeats, ~20 ms each, process CPU time",
    }

    def row(name: str, goal: Goal) -> Result:
        ratio = nanoseconds[name] / baseline
        return Result(
            benchmark=NAME,
            measure=f"{name} / msgpack packb+unpackb",
            value=ratio,
            goal=goal,
            shown=f"{ratio:.2f}x ({nanoseconds[name] / 1000:.2f} µs vs {baseline / 1000:.2f} µs)",
            details=details,
        )

    return [
        row("encode+decode", Goal("<=", 2.0, "≤ 2x")),
        row("framed + streaming reader", Goal("info", text="— (with prefix and reader)")),
    ]
