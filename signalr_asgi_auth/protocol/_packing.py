"""``msgpack.packb`` with a packer kept per thread: building a packer is about a third of the cost of
packing a small message, and a packer is not safe to share between threads."""

from __future__ import annotations

import threading
from typing import Any

import msgpack

__all__ = ["pack", "packer"]

_packers = threading.local()


def packer() -> msgpack.Packer:
    """This thread's packer (``use_bin_type``: ``bytes`` as bin, ``str`` as str)."""
    try:
        found: msgpack.Packer = _packers.packer
    except AttributeError:
        found = _packers.packer = msgpack.Packer(use_bin_type=True)
    return found


def pack(value: Any) -> bytes:
    data: bytes = packer().pack(value)
    return data
