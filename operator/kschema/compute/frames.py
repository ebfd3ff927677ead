"""The frames tasks and answers cross the worker pipes in: an 8-byte big-endian length, then a pickle (a
task's frame holds a few, see `resident`)."""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

LENGTH = struct.Struct(">Q")


def read_frame(stream: BinaryIO, load: Callable[[bytes], Any] = pickle.loads) -> Any | None:
    """The next frame's value (its bytes read by `load`), or None at the end of the stream."""
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        return None
    (size,) = LENGTH.unpack(head)
    return load(stream.read(size))


def frame(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return LENGTH.pack(len(data)) + data
