"""Declared Schemas (and slices of the catalog) a worker already holds cross the pipe as a number.

Every admission review of a version hands a worker the declared versions of its subject (the policy
reads their numbers, states and contracts, and parses their texts). With a hundred versions of a
fifty-field record that was a quarter of a megabyte and two thousand objects to pickle, pipe and
unpickle per review, a tenth of the review's time. A `SchemaSpec` never changes, and neither does a
`Catalog`, so the pool sends each one to a worker once: the first time in full, under a number, and
afterwards as that number alone (a catalog sent again names the specs in it that way too). The worker
keeps what it was sent (`HELD`) and forgets what the pool tells it to forget, so both sides always agree
on what the worker holds, and a number always names the same content.

The pool's side (`Sent`, one per worker) knows the objects by identity and holds a reference to each,
so no other object can take the identity of one it remembers; a spec read again from the API server is
another object and is sent in full once more. It is bounded in entries and estimated bytes: the least
recently sent are forgotten first, on both sides. A replaced worker starts with nothing, and so does
its `Sent`.
"""

from __future__ import annotations

import io
import itertools
import pickle
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final, cast

from kschema.compute.frames import LENGTH
from kschema.model import SchemaSpec
from kschema.policy import Catalog

__all__ = ["HELD", "Sent", "held", "keep", "read_task"]

# A spec's fixed cost besides its text: the object, its fields, its references and contract.
SPEC_OVERHEAD_BYTES: Final = 1024


def _spec_cost(spec: SchemaSpec) -> int:
    return SPEC_OVERHEAD_BYTES + len(spec.schema)


def _catalog_cost(catalog: Catalog) -> int:
    # Its specs count again: the worker keeps them alive through it even once they are forgotten.
    return SPEC_OVERHEAD_BYTES * (1 + len(catalog.subjects)) + sum(map(_spec_cost, catalog.schemas))


# What is sent once, with the estimated cost of keeping it.
_COSTS: Final[dict[type, Callable[[Any], int]]] = {SchemaSpec: _spec_cost, Catalog: _catalog_cost}

# The worker's side: what it was sent, by number (module state: a worker is one process).
HELD: dict[int, Any] = {}

# The numbers the pool's side hands out, never reused within a process.
_NUMBERS = itertools.count(1)


def held(number: int) -> Any:
    """Something the worker holds (unpickling `Sent`'s short form)."""
    return HELD[number]


def keep(number: int, build: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Something sent in full: built, and kept under `number` (unpickling `Sent`'s long form)."""
    value = HELD[number] = build(*args)
    return value


class Sent:
    """What one worker holds, as the pool knows it; `frame` pickles a task for that worker."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.cost = 0
        # By identity: (number, the object itself, its estimated cost).
        self._entries: OrderedDict[int, tuple[int, Any, int]] = OrderedDict()
        self._dispatch = dict.fromkeys(_COSTS, self._reduce)
        self._forget: list[int] = []
        self._forget_all = False

    def __len__(self) -> int:
        return len(self._entries)

    def frame(self, value: Any) -> bytes:
        """A length-prefixed frame for `read_task`: whether the worker must first forget everything,
        `value` pickled with what the worker holds as numbers, then what it must forget."""
        buffer = io.BytesIO()
        buffer.write(bytes(LENGTH.size))
        pickle.dump(self._forget_all, buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = self._dispatch
        try:
            pickler.dump(value)
        except BaseException:
            # What was recorded as sent never reached the worker: start again from nothing, on both sides.
            self._entries.clear()
            self.cost = 0
            self._forget.clear()
            self._forget_all = True
            raise
        pickle.dump(self._forget, buffer, protocol=pickle.HIGHEST_PROTOCOL)
        self._forget = []
        self._forget_all = False
        data = buffer.getbuffer()
        LENGTH.pack_into(data, 0, len(data) - LENGTH.size)
        return bytes(data)

    def _reduce(self, value: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        key = id(value)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return held, (entry[0],)
        number = next(_NUMBERS)
        cost = _COSTS[type(value)](value)
        self._entries[key] = (number, value, cost)
        self.cost += cost
        # Forgotten after the worker has read the whole task: something this task names may go too.
        while len(self._entries) > self.max_entries or self.cost > self.max_bytes:
            _, (gone, _value, gone_cost) = self._entries.popitem(last=False)
            self.cost -= gone_cost
            self._forget.append(gone)
        build, args = cast(tuple[Callable[..., Any], tuple[Any, ...]], value.__reduce__())
        return keep, (number, build, args)


def read_task(data: bytes) -> Any:
    """The value of a frame written by `Sent.frame` (its length prefix removed). What the pool no longer
    remembers is forgotten once the whole value is read: it may name some of it."""
    stream = io.BytesIO(data)
    if pickle.load(stream):
        HELD.clear()
    value = pickle.load(stream)
    for number in pickle.load(stream):
        HELD.pop(number, None)
    return value
