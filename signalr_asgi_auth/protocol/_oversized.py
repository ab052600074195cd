"""What a service message over the reader's limit was, told from its first bytes.

Two messages carry what a client wrote and may be as big as it liked: ConnectionData (its hub
messages) and ClientCompletion (its answer to a server's invocation, relayed to the server that
asked). Either one over the limit is its client's fault, so it costs that client alone: the
ConnectionData becomes :class:`ConnectionDataTooLarge` (the hub layer closes the client), the
ClientCompletion an ErrorCompletion for the server that waits for it. Anything else over the limit
is the service's fault and ends the connection, as a malformed message does.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from .._errors import ProtocolError
from ._framing import OversizedFrame
from ._service_messages import ConnectionDataTooLarge, ErrorCompletion, ServiceMessage

__all__ = ["HEAD_SIZE", "read_oversized"]

HEAD_SIZE: Final = 1024
"""How much of an oversized message is kept: its type and the ids before its payload."""

_CONNECTION_DATA: Final = 6
_CLIENT_COMPLETION: Final = 35


def read_oversized(frame: OversizedFrame, limit: int) -> ServiceMessage:
    """The message standing for ``frame``, or :class:`ProtocolError` when it is no client's."""
    fields = _leading_fields(frame)
    kind = fields[0] if fields else None
    if kind == _CONNECTION_DATA and len(fields) >= 2 and _texts(fields[1:2]):
        return ConnectionDataTooLarge(fields[1], frame.size)
    if kind == _CLIENT_COMPLETION and len(fields) >= 4 and _texts(fields[1:4]):
        error = f"The client's result of {frame.size} bytes is over the limit of {limit} bytes."
        return ErrorCompletion(fields[1], fields[2], fields[3], error)
    text = f"a service message of {frame.size} bytes is over the limit of {limit} bytes"
    raise ProtocolError(text)


def _leading_fields(head: bytes) -> list[Any]:
    """The type and the next three elements of the array ``head`` starts, as far as they are in
    it (an id cut off by the end of ``head`` is left out)."""
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=HEAD_SIZE)
    unpacker.feed(head)
    fields: list[Any] = []
    try:
        length = unpacker.read_array_header()
        for _ in range(min(length, 4)):
            fields.append(unpacker.unpack())
    except Exception:  # OutOfData at the cut, or not an array: what was read so far is all
        pass
    return fields


def _texts(values: list[Any]) -> bool:
    return all(type(value) is str for value in values)
