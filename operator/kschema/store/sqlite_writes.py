"""Group commit for the SQLite writer connection.

With `synchronous=FULL` every COMMIT waits for the disk (an fsync of the WAL, milliseconds each), and
writes are serialised on one connection: a burst of ten thousand registrations was ten thousand fsyncs
in a row. Here the writes that queue up while one transaction commits go into the next transaction
together, each inside its own SAVEPOINT: a write that fails (a version conflict, say) rolls back alone
and reports its own error, the others commit, and every caller is answered only after the COMMIT that
made its write durable. A lone write is committed at once, as before.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from kschema.store.base import StoreError

T = TypeVar("T")

MAX_BATCH = 256  # writes per transaction: bounds how long one COMMIT keeps the others waiting

WriteFn = Callable[[sqlite3.Connection], tuple[Any, bool]]
Outcome = tuple[bool, Any]  # (succeeded, result or the error it raised)


def run_batch(
    conn: sqlite3.Connection, fns: list[WriteFn], translate: Callable[[sqlite3.Error], StoreError]
) -> list[Outcome]:
    """Runs `fns` in one IMMEDIATE transaction, one SAVEPOINT each. A failure outside the savepoints
    (BEGIN, COMMIT, a rollback that failed) rolls everything back and raises."""
    # IMMEDIATE takes the write lock now: a transaction that read first and then tried to write could
    # fail with SQLITE_BUSY midway, which the busy timeout cannot retry.
    conn.execute("BEGIN IMMEDIATE")
    outcomes: list[Outcome] = []
    try:
        for fn in fns:
            conn.execute("SAVEPOINT kschema_write")
            try:
                result = fn(conn)
            except (StoreError, sqlite3.Error) as error:
                conn.execute("ROLLBACK TO kschema_write")
                conn.execute("RELEASE kschema_write")
                outcomes.append((False, translate(error) if isinstance(error, sqlite3.Error) else error))
                continue
            conn.execute("RELEASE kschema_write")
            outcomes.append((True, result))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


class GroupCommit:
    """Queues writes and commits them in batches through `run` (the writer connection's `run`)."""

    def __init__(
        self,
        run: Callable[[Callable[[sqlite3.Connection], list[Outcome]]], Awaitable[list[Outcome]]],
        translate: Callable[[sqlite3.Error], StoreError],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._run = run
        self._translate = translate
        self._max_batch = max_batch
        self._queue: list[tuple[WriteFn, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self.transactions = 0  # committed or failed, for tests and metrics

    async def submit(self, fn: Callable[[sqlite3.Connection], tuple[T, bool]]) -> tuple[T, bool]:
        """The write's own result (or its own error), once the transaction holding it has committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((fn, future))
        if self._drainer is None or self._drainer.done():
            # A task of its own: a caller cancelled while waiting never strands the others' answers.
            self._drainer = asyncio.create_task(self._drain(), name="kschema sqlite group commit")
        result: tuple[T, bool] = await future
        return result

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            fns = [fn for fn, _ in batch]
            self.transactions += 1
            try:
                outcomes = await self._run(functools.partial(run_batch, fns=fns, translate=self._translate))
            except Exception as error:  # handed to every waiter: each raises it as its own
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
