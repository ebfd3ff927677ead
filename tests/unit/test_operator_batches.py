"""Work of one key that waits at the same time runs together (the versions of one subject applied
together), each submitter getting its own outcome. (A subject's versions registered as one batch:
`test_operator_service`.)"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from kschema.operator.batches import KeyedBatches


class Recorder:
    """A `run` that records its batches and can be held until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, items: Sequence[int]) -> list[str | Exception]:
        self.batches.append(list(items))
        await self.release.wait()
        return [ValueError(f"item {i} refused") if i < 0 else f"done {i}" for i in items]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_items_waiting_together_run_as_one_batch_and_each_gets_its_own_outcome() -> None:
    batches: KeyedBatches[int, str] = KeyedBatches()
    run = Recorder()
    run.release.clear()
    first = asyncio.create_task(batches.submit("orders", 1, run))
    await settle()  # the first is running alone; the next ones queue behind it
    rest = [asyncio.create_task(batches.submit("orders", n, run)) for n in (2, -3, 4)]
    await settle()
    run.release.set()

    assert await first == "done 1"
    assert await rest[0] == "done 2"
    with pytest.raises(ValueError, match="item -3 refused"):
        await rest[1]
    assert await rest[2] == "done 4"
    assert run.batches == [[1], [2, -3, 4]]
    assert batches.waiting("orders") == 0


async def test_items_arriving_while_the_drain_waits_for_its_place_join_its_batch() -> None:
    batches: KeyedBatches[int, str] = KeyedBatches()
    run = Recorder()
    places = asyncio.Semaphore(1)
    await places.acquire()  # every place taken: the drain waits
    first = asyncio.create_task(batches.submit("orders", 1, run, lambda: places))
    await settle()
    rest = [asyncio.create_task(batches.submit("orders", n, run, lambda: places)) for n in (2, 3)]
    await settle()
    assert run.batches == []
    places.release()

    assert [await first, *[await t for t in rest]] == ["done 1", "done 2", "done 3"]
    assert run.batches == [[1, 2, 3]]
    assert not places.locked()  # given back after the batch


async def test_keys_do_not_share_batches() -> None:
    batches: KeyedBatches[int, str] = KeyedBatches()
    run = Recorder()
    results = await asyncio.gather(batches.submit("a", 1, run), batches.submit("b", 2, run))
    assert list(results) == ["done 1", "done 2"]
    assert sorted(run.batches) == [[1], [2]]


async def test_a_long_queue_runs_in_batches_of_the_limit_in_arrival_order() -> None:
    batches: KeyedBatches[int, str] = KeyedBatches(limit=3)
    run = Recorder()
    results = await asyncio.gather(*(batches.submit("orders", n, run) for n in range(8)))
    assert results == [f"done {n}" for n in range(8)]
    assert run.batches == [[0, 1, 2], [3, 4, 5], [6, 7]]


async def test_a_failing_run_fails_its_whole_batch_and_the_next_batch_still_runs() -> None:
    batches: KeyedBatches[int, str] = KeyedBatches(limit=2)
    calls = 0

    async def run(items: Sequence[int]) -> list[str | Exception]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("store went away")
        return [f"done {i}" for i in items]

    outcomes = await asyncio.gather(
        *(batches.submit("orders", n, run) for n in range(3)), return_exceptions=True
    )
    assert [str(o) for o in outcomes] == ["store went away", "store went away", "done 2"]


async def test_a_run_with_the_wrong_number_of_outcomes_fails_the_batch_rather_than_mismatch_them() -> None:
    batches: KeyedBatches[int, str] = KeyedBatches()

    async def run(items: Sequence[int]) -> list[str | Exception]:
        return ["only one"]

    outcomes = await asyncio.gather(
        *(batches.submit("orders", n, run) for n in range(2)), return_exceptions=True
    )
    assert all(isinstance(o, RuntimeError) and "2 items got 1 outcomes" in str(o) for o in outcomes)


async def test_a_submitter_that_stops_waiting_is_left_out_and_stops_no_other() -> None:
    batches: KeyedBatches[int, str] = KeyedBatches()
    run = Recorder()
    run.release.clear()
    first = asyncio.create_task(batches.submit("orders", 1, run))
    await settle()
    gone = asyncio.create_task(batches.submit("orders", 2, run))
    staying = asyncio.create_task(batches.submit("orders", 3, run))
    await settle()
    gone.cancel()
    first.cancel()  # cancelled while its batch runs: the drain is a task of its own and goes on
    await settle()
    run.release.set()

    assert await staying == "done 3"
    assert run.batches == [[1], [3]]
    with pytest.raises(asyncio.CancelledError):
        await first
    assert gone.cancelled()


async def test_cancelling_a_drain_cancels_its_waiters_instead_of_leaving_them_hanging() -> None:
    batches: KeyedBatches[int, str] = KeyedBatches()
    run = Recorder()
    run.release.clear()
    waiters = [asyncio.create_task(batches.submit("orders", n, run)) for n in range(3)]
    await settle()
    drains = [t for t in asyncio.all_tasks() if t.get_name() == "batch orders"]
    assert len(drains) == 1
    drains[0].cancel()
    async with asyncio.timeout(2):
        outcomes = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
    assert batches.waiting("orders") == 0


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        KeyedBatches(limit=0)
