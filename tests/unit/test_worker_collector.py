"""A worker's garbage collection: between tasks it collects what the task left behind and freezes the
survivors, so collections during a task never scan the caches; cycles among frozen objects (entries the
parse cache evicted) are swept once enough was evicted, or after a number of tasks."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from kschema.compute import WorkerPool
from kschema.compute.collector import Collector


class _Cycle:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    yield
    gc.unfreeze()
    gc.collect()


class _Evictions:
    def __init__(self) -> None:
        self.total = 0

    def __call__(self) -> int:
        return self.total


def test_a_task_s_garbage_is_collected_and_its_survivors_frozen() -> None:
    collector = Collector(sweep_evicted_bytes=1000, sweep_tasks=100, evicted_bytes=_Evictions())
    collector.start()
    frozen = gc.get_freeze_count()
    garbage = weakref.ref(_Cycle())
    kept = _Cycle()
    assert garbage() is not None  # a cycle outlives its last reference until a collection
    collector.after_task()
    assert garbage() is None
    assert gc.get_freeze_count() > frozen
    assert all(o is not kept for o in gc.get_objects())  # frozen: in no generation a collection scans
    assert collector.sweeps == 0


def test_frozen_cycles_are_swept_once_enough_was_evicted() -> None:
    evictions = _Evictions()
    collector = Collector(sweep_evicted_bytes=1000, sweep_tasks=100, evicted_bytes=evictions)
    collector.start()
    cached = _Cycle()  # an entry a cache kept past the task: frozen with it
    collector.after_task()
    dropped = weakref.ref(cached)
    del cached  # evicted later: a frozen cycle, which no collection scans
    gc.collect()
    assert dropped() is not None
    evictions.total = 999
    collector.after_task()
    assert dropped() is not None
    assert collector.sweeps == 0
    evictions.total = 1000
    collector.after_task()
    assert dropped() is None
    assert collector.sweeps == 1


def test_frozen_cycles_are_swept_after_a_number_of_tasks_whatever_was_evicted() -> None:
    collector = Collector(sweep_evicted_bytes=1000, sweep_tasks=3, evicted_bytes=_Evictions())
    collector.start()
    cached = _Cycle()
    collector.after_task()
    dropped = weakref.ref(cached)
    del cached
    collector.after_task()
    assert dropped() is not None
    collector.after_task()
    assert dropped() is None
    assert collector.sweeps == 1


async def test_a_worker_process_freezes_what_survives_its_tasks() -> None:
    async with WorkerPool(processes=1) as pool:
        first = await pool.run(gc.get_freeze_count)
        second = await pool.run(gc.get_freeze_count)
        enabled = await pool.run(gc.isenabled)
    assert first > 0  # the imports, frozen before the first task
    assert second >= first
    assert enabled  # young collections still run during a task
