"""Group commit: the writes that queue up while one transaction commits go into the next transaction
together, each inside its own savepoint.

Both backends serialise their writes (SQLite on its one writer connection, PostgreSQL on the lock of the
`registry_counters` row) and every COMMIT waits for the disk, so a burst of ten thousand registrations
was ten thousand flushes in a row. Batched, a write that fails (a version conflict, say) rolls back
alone and raises its own error in its own caller, the others commit, and every caller is answered only
after the COMMIT that made its write durable. A lone write is committed at once, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

F = TypeVar("F")  # a backend's write function
T = TypeVar("T")

MAX_BATCH = 256  # writes per transaction: bounds how long one COMMIT keeps the others waiting

Outcome = tuple[bool, Any]  # (succeeded, its result or the error it raised)


class GroupCommit(Generic[F]):
    """Queues write functions and hands them in batches to `commit`, which runs them in one transaction
    and returns one outcome per function, in order (or raises, failing the whole batch)."""

    def __init__(
        self, commit: Callable[[list[F]], Awaitable[list[Outcome]]], max_batch: int = MAX_BATCH
    ) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._queue: list[tuple[F, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self.transactions = 0  # batches handed to `commit` so far

    async def submit(self, fn: F) -> Any:
        """The write's own result (or its own error), once the transaction holding it has committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((fn, future))
        if self._drainer is None or self._drainer.done():
            # A task of its own: a caller cancelled while waiting never strands the others' answers.
            self._drainer = asyncio.create_task(self._drain(), name="kschema group commit")
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            self.transactions += 1
            try:
                outcomes = await self._commit([fn for fn, _ in batch])
            except Exception as error:  # handed to every waiter, each raises it as its own
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), (succeeded, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if succeeded:
                    future.set_result(value)
                else:
                    future.set_exception(value)
