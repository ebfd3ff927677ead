"""A least-recently-used map bounded in entries and in (estimated) bytes: what every cache of parsed
schemas, verdicts or metaschema results is built on, so that a client sending ever new content only
evicts older entries and can never grow a process past its memory limit."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["BoundedLRU"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedLRU(Generic[K, V]):
    """A least-recently-used map holding at most `max_entries` entries and `max_cost` cost units (bytes,
    as estimated by whoever puts an entry). An entry costing more than `max_cost` alone is not kept."""

    def __init__(
        self, max_entries: int, max_cost: int, on_evict: Callable[[K, V], None] | None = None
    ) -> None:
        self.max_entries = max_entries
        self.max_cost = max_cost
        self.cost = 0
        self.evicted_cost = 0  # the cost of every entry evicted or replaced so far, a growing total
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._on_evict = on_evict

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V, cost: int) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.cost -= old[1]
            self.evicted_cost += old[1]
            if self._on_evict is not None:
                self._on_evict(key, old[0])
        if cost > self.max_cost:
            return
        self._entries[key] = (value, cost)
        self.cost += cost
        while len(self._entries) > self.max_entries or self.cost > self.max_cost:
            evicted_key, (evicted, evicted_cost) = self._entries.popitem(last=False)
            self.cost -= evicted_cost
            self.evicted_cost += evicted_cost
            if self._on_evict is not None:
                self._on_evict(evicted_key, evicted)
