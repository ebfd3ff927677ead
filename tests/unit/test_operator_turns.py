"""Reconciles take turns: at most `reconcile_concurrency` of one kind run at once, in arrival order, and
the kinds do not share their places (a Schema waiting for its Subject's reconcile cannot starve it)."""

from __future__ import annotations

import asyncio
import copy
from typing import cast

from kschema.compute import WorkerPool
from kschema.operator.context import OperatorContext
from kschema.operator.settings import OperatorSettings
from kschema.store import RegistryStore


def _context(limit: int) -> OperatorContext:
    return OperatorContext(
        settings=OperatorSettings(reconcile_concurrency=limit),
        store=cast(RegistryStore, object()),
        pool=cast(WorkerPool, object()),
    )


async def test_at_most_the_configured_number_run_at_once_and_the_rest_in_arrival_order() -> None:
    memo = _context(3)
    running: set[int] = set()
    most = 0
    started: list[int] = []
    release = asyncio.Event()

    async def reconcile(n: int) -> None:
        nonlocal most
        async with memo.turn("Schema"):
            started.append(n)
            running.add(n)
            most = max(most, len(running))
            await release.wait()
            running.discard(n)

    tasks = [asyncio.create_task(reconcile(n)) for n in range(20)]
    for _ in range(10):
        await asyncio.sleep(0)
    assert started == [0, 1, 2]
    release.set()
    await asyncio.gather(*tasks)

    assert most == 3
    assert started == list(range(20))


async def test_a_copy_of_the_context_shares_the_places_and_each_kind_has_its_own() -> None:
    memo = _context(1)
    other = copy.copy(memo)  # what kopf hands each object
    held = asyncio.Event()
    done = asyncio.Event()

    async def hold() -> None:
        async with memo.turn("Schema"):
            held.set()
            await done.wait()

    holder = asyncio.create_task(hold())
    await held.wait()

    assert other.turn("Schema").locked()
    async with asyncio.timeout(1):
        async with other.turn("Subject"):  # not blocked by the Schema holding its kind's only place
            pass
    done.set()
    await holder
