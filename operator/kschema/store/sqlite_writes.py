"""The SQLite side of group commit (see `group_commit`): one IMMEDIATE transaction on the writer
connection's thread, one SAVEPOINT per write."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from kschema.store.base import StoreError
from kschema.store.group_commit import Outcome

WriteFn = Callable[[sqlite3.Connection], tuple[Any, bool]]


def run_batch(
    conn: sqlite3.Connection, fns: list[WriteFn], translate: Callable[[sqlite3.Error], StoreError]
) -> list[Outcome]:
    """Runs `fns` in one transaction. A failure outside the savepoints (BEGIN, COMMIT, a rollback that
    failed) rolls everything back and raises."""
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
