"""The PostgreSQL side of group commit (see `group_commit`): one transaction holding the lock of the
`registry_counters` row, one savepoint per write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from kschema.store.base import StoreError
from kschema.store.group_commit import Outcome

WriteFn = Callable[[Any, int], Awaitable[tuple[Any, bool]]]  # (connection, id sequence) -> (result, changed)

LOCK_COUNTERS = "SELECT id_sequence FROM registry_counters WHERE singleton = 1 FOR UPDATE"


async def run_batch(
    conn: Any,
    fns: list[WriteFn],
    *,
    unavailable: tuple[type[BaseException], ...],
    notify: Callable[[Any], Awaitable[None]],
) -> list[Outcome]:
    """Runs `fns` in one transaction; `notify` is called once, before the commit, when any of them
    changed something. A lost connection (`unavailable`) fails the whole batch, which the caller
    retries on a fresh connection (every write is idempotent)."""
    outcomes: list[Outcome] = []
    changed_any = False
    async with conn.transaction():
        for fn in fns:
            # Each write sees the allocator as the previous one in this transaction left it.
            sequence = await conn.fetchval(LOCK_COUNTERS)
            try:
                async with conn.transaction():  # a savepoint
                    result, changed = await fn(conn, sequence)
            except unavailable:
                raise
            except StoreError as error:
                outcomes.append((False, error))
                continue
            except asyncpg.PostgresError as error:
                # A bug here (constraint, syntax), not bad user input: validated before the transaction.
                outcomes.append((False, StoreError(f"PostgreSQL refused a statement: {error}")))
                continue
            outcomes.append((True, result))
            changed_any = changed_any or changed
        if changed_any:
            await notify(conn)
    return outcomes
