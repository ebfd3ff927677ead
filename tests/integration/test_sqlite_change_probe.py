"""The SQLite change feed's followers: a commit by another process (here another store on the same file,
which cannot signal this one) is seen at the next poll, and an idle poll costs no query."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kschema.store.sqlite import SqliteStore
from kschema.store.sqlite_probe import DataVersionProbe
from tests.harness.stores import avro_record, new_version

V1 = avro_record("Order", "id")
V2 = avro_record("Order", "id", "note")


@pytest.fixture
async def two_stores(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    path = tmp_path / "registry.db"
    follower, writer = SqliteStore(path), SqliteStore(path)
    await follower.open()
    await writer.open()
    try:
        yield follower, writer
    finally:
        await writer.close()
        await follower.close()


async def test_a_commit_by_another_store_wakes_the_follower(
    two_stores: tuple[SqliteStore, SqliteStore],
) -> None:
    follower, writer = two_stores
    await writer.register(new_version("orders-value", 1, V1))
    seq = await follower.latest_seq()
    waiter = asyncio.create_task(follower.wait_for_changes(seq, timeout=60))
    await asyncio.sleep(0.2)  # several idle polls first
    assert not waiter.done()

    await writer.register(new_version("orders-value", 2, V2))

    await asyncio.wait_for(waiter, timeout=5)
    assert await follower.latest_seq() > seq


async def test_idle_polls_skip_the_query(
    two_stores: tuple[SqliteStore, SqliteStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    follower, _ = two_stores
    seq = await follower.latest_seq()
    queries = 0
    latest_seq = follower.latest_seq

    async def counted() -> int:
        nonlocal queries
        queries += 1
        return await latest_seq()

    monkeypatch.setattr(follower, "latest_seq", counted)

    await follower.wait_for_changes(seq, timeout=0.5)  # about ten polls

    assert queries == 1


async def test_probe_sees_other_connections_commits(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE t (x INTEGER)")
    probe = DataVersionProbe(str(path))
    probe.open()
    try:
        before = probe.read()
        assert before is not None
        assert probe.read() == before

        other.execute("INSERT INTO t VALUES (1)")

        assert probe.read() not in (None, before)
    finally:
        probe.close()
        other.close()
    assert probe.read() is None  # closed: the caller queries instead


async def test_probe_on_a_locked_file_answers_none_at_once(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")  # rollback journal: readers wait for an exclusive lock
    probe = DataVersionProbe(str(path))
    probe.open()
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert probe.read() is None
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        probe.close()
