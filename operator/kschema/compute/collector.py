"""Garbage collection in a worker process: between tasks, never a scan of the caches during one.

A worker keeps what it parsed and decided (`caches`): hundreds of thousands of objects, all long-lived.
Left to itself, CPython's collector scans every one of them in each full collection, which it starts
whenever the objects promoted since the last one reach a quarter of the old ones. For a worker reviewing
new versions of a JSON Schema record against a 100-version history, that was a 60-160 ms collection
every 30-50 reviews, inside a review: the whole p99 of admission.

So after each task (once its answer is written) the worker collects what is not frozen (the objects the
task left behind: a few thousand, about a millisecond) and freezes the survivors (`gc.freeze`): later
collections, automatic or not, skip them. Garbage *without* reference cycles is still freed at once by
reference counting, frozen or not; what freezing holds back is garbage *in cycles* among frozen
objects, which in a worker comes from entries evicted from the parse cache (a parsed schema's nodes
point at their loader and back). So the worker sweeps (unfreezes, collects everything, freezes again)
once the parse cache has evicted `sweep_evicted_bytes` (estimated) since the last sweep, and in any case
every `sweep_tasks` tasks: memory held back stays bounded, and a sweep's cost falls on the time between
tasks, a few times per cache turnover.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

__all__ = ["TASK_YOUNG_OBJECTS", "Collector"]

# Objects a task may leave alive before a collection runs during it (CPython's default is 700). A
# review allocates a few thousand that live until it ends (a parsed schema, its verdicts): with the
# default, four or five collections of them ran inside every review, half a millisecond in all.
TASK_YOUNG_OBJECTS = 50_000


class Collector:
    """Runs the worker's collections between tasks. `evicted_bytes()` reports the (estimated) bytes the
    worker's caches of cyclic objects have evicted so far, a growing total."""

    def __init__(self, sweep_evicted_bytes: int, sweep_tasks: int, evicted_bytes: Callable[[], int]) -> None:
        self.sweep_evicted_bytes = sweep_evicted_bytes
        self.sweep_tasks = sweep_tasks
        self._evicted_bytes = evicted_bytes
        self._evicted_at_sweep = evicted_bytes()
        self._tasks_since_sweep = 0
        self.sweeps = 0
        self.last_seconds = 0.0

    def start(self) -> None:
        """Freezes what exists now (the imports): no collection ever scans it again. A task's own objects
        are collected after it: collections during one wait for many more of them."""
        gc.collect()
        gc.freeze()
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(TASK_YOUNG_OBJECTS, older, oldest)

    def after_task(self) -> None:
        started = time.perf_counter()
        self._tasks_since_sweep += 1
        evicted = self._evicted_bytes()
        if (
            evicted - self._evicted_at_sweep >= self.sweep_evicted_bytes
            or self._tasks_since_sweep >= self.sweep_tasks
        ):
            gc.unfreeze()
            self._evicted_at_sweep = evicted
            self._tasks_since_sweep = 0
            self.sweeps += 1
        # Only what is not frozen: the task's survivors (or, after unfreezing, everything).
        gc.collect()
        gc.freeze()
        self.last_seconds = time.perf_counter() - started
