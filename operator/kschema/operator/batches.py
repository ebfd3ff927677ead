"""Work of one key that waits at the same time runs together. The Schemas of a subject are usually applied
together (a Git sync, a Helm release): their reconciles arrive within moments of each other, and each
would otherwise wait for a place of its own, take the subject's lock, read the subject's record and
history again, and end in a projection of its own. Queued under the subject's name instead, one drain
registers every version that is waiting, under one place and one lock, and their reconciles go on
together: one ConfigMap write and one Subject status patch for the lot."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

# Items handed to one run at most: a subject with a long queue gives its place back between runs, so the
# other subjects' versions are not held behind it.
BATCH_LIMIT = 32


@dataclass(eq=False, slots=True)
class _Waiting(Generic[In, Out]):
    item: In
    future: asyncio.Future[Out]


Run = Callable[[Sequence[In]], Awaitable[Sequence[Out | Exception]]]
Admit = Callable[[], AbstractAsyncContextManager[object]]


class KeyedBatches(Generic[In, Out]):
    """`submit` queues an item under its key and waits for its outcome. While a key has items waiting,
    one drain task per key hands them to `run` in batches of at most `limit`, in arrival order; `run`
    returns one outcome per item, in the same order: a value, or the exception that item's submitter
    raises. An exception from `run` itself fails every item of that batch. A submitter that stops
    waiting (cancelled) is left out of the batches not yet run.

    `admit` (a place among limited ones) is entered before each batch is taken, and held while it runs:
    whatever arrives while the drain waits for its place joins the batch. Under load, when places are
    scarce, batches grow by themselves; when they are not, an item runs at once."""

    def __init__(self, *, limit: int = BATCH_LIMIT) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self._waiting: dict[str, list[_Waiting[In, Out]]] = {}
        self._drains: dict[str, asyncio.Task[None]] = {}

    async def submit(self, key: str, item: In, run: Run[In, Out], admit: Admit | None = None) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(_Waiting(item, future))
        if key not in self._drains:
            # A task of its own, not the first submitter's: cancelling one reconcile stops no other.
            drain = self._drain(key, run, admit or nullcontext)
            self._drains[key] = asyncio.create_task(drain, name=f"batch {key}")
        return await future

    def waiting(self, key: str) -> int:
        return len(self._waiting.get(key, ()))

    async def _drain(self, key: str, run: Run[In, Out], admit: Admit) -> None:
        queue = self._waiting[key]
        try:
            while queue:
                async with admit():
                    batch = [w for w in queue[: self._limit] if not w.future.done()]
                    del queue[: self._limit]
                    if batch:
                        await self._run(batch, run)
        finally:
            del self._drains[key]
            for left in queue:  # only when the drain itself was cancelled (shutdown)
                left.future.cancel()
            del self._waiting[key]

    @staticmethod
    async def _run(batch: list[_Waiting[In, Out]], run: Run[In, Out]) -> None:
        try:
            outcomes = await run([w.item for w in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} items got {len(outcomes)} outcomes")
        except asyncio.CancelledError:
            for waiting in batch:
                waiting.future.cancel()
            raise
        except Exception as error:  # the submitters re-raise it; the drain goes on
            outcomes = [error] * len(batch)
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if waiting.future.done():
                continue
            if isinstance(outcome, Exception):
                waiting.future.set_exception(outcome)
            else:
                waiting.future.set_result(outcome)
