"""The frames tasks and answers cross the worker pipes in: an 8-byte big-endian length, then a pickle."""

from __future__ import annotations

import pickle
import struct
from typing import Any, BinaryIO

LENGTH = struct.Struct(">Q")


def read_frame(stream: BinaryIO) -> Any | None:
    """The next frame's value, or None at the end of the stream."""
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        return None
    (size,) = LENGTH.unpack(head)
    return pickle.loads(stream.read(size))


def frame(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return LENGTH.pack(len(data)) + data
