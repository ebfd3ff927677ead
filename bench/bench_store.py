"""Registry store throughput, against SQLite (synchronous=FULL) and a real PostgreSQL (fsync on).

For each backend: registrations/s, lookups/s (get_schema by ID, get_version), and the time and peak
Python memory to load 100,000 versions through `snapshot()` into plain dict indexes. Each number has a
baseline measured in the same run with the bare driver (same database, same durability settings), so
the store's own overhead is visible whatever the machine's disk and CPU.

Run from the repository root: `python -m bench.bench_store` (or call `run()`).
"""

from __future__ import annotations

import asyncio
import gc
import random
import sqlite3
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from tests.harness.postgres import running_postgres
from tests.harness.stores import avro_record, new_version

from bench.registry_seed import copy_rows, insert_rows
from kschema.formats import SchemaFormat
from kschema.store.base import RegistryStore, StoredSchema, SubjectVersion
from kschema.store.factory import store_from_url

REGISTRATIONS = 400
REGISTRATION_SECONDS = 8.0  # stop early on a slow disk: fsync per commit dominates
LOOKUPS = 5000
SNAPSHOT_VERSIONS = 100_000
SNAPSHOT_SUBJECTS = 1000


def _line(text: str) -> None:
    print(text)  # noqa: T201 - a benchmark reports on stdout


async def _timed(count: int, budget: float, step: Callable[[int], Awaitable[Any]]) -> tuple[int, float]:
    """Runs `step(i)` up to `count` times or until `budget` seconds pass; returns (done, seconds)."""
    start = time.perf_counter()
    done = 0
    while done < count:
        await step(done)
        done += 1
        if time.perf_counter() - start > budget:
            break
    return done, time.perf_counter() - start


def _rate(done: int, seconds: float) -> float:
    return done / seconds if seconds > 0 else float("inf")


async def _registrations(store: RegistryStore, label: str) -> list[tuple[str, int, int]]:
    registered: list[tuple[str, int, int]] = []

    async def step(i: int) -> None:
        v = await store.register(
            new_version(f"bench-{i % 20}-value", i // 20 + 1, avro_record(f"B{i}", f"f{i}"))
        )
        registered.append((v.subject, v.version, v.schema_id))

    done, seconds = await _timed(REGISTRATIONS, REGISTRATION_SECONDS, step)
    _line(f"{label} register: {_rate(done, seconds):.0f} registrations/s ({done} in {seconds:.2f} s)")
    return registered


async def _lookups(store: RegistryStore, label: str, registered: list[tuple[str, int, int]]) -> None:
    rng = random.Random(1)
    picks = [rng.choice(registered) for _ in range(LOOKUPS)]

    async def by_id(i: int) -> None:
        assert await store.get_schema(picks[i][2]) is not None

    async def by_version(i: int) -> None:
        assert await store.get_version(picks[i][0], picks[i][1]) is not None

    done, seconds = await _timed(LOOKUPS, 30.0, by_id)
    _line(f"{label} get_schema by id: {_rate(done, seconds):.0f} lookups/s")
    done, seconds = await _timed(LOOKUPS, 30.0, by_version)
    _line(f"{label} get_version: {_rate(done, seconds):.0f} lookups/s")


async def _load_index(
    store: RegistryStore,
) -> tuple[dict[int, StoredSchema], dict[tuple[str, int], SubjectVersion]]:
    snapshot = await store.snapshot()
    schemas = {s.id: s for s in snapshot.schemas}
    versions = {(v.subject, v.version): v for v in snapshot.versions}
    return schemas, versions


async def _snapshot_load(store: RegistryStore, label: str, raw_fetch: Callable[[], Awaitable[int]]) -> None:
    gc.collect()
    start = time.perf_counter()
    schemas, versions = await _load_index(store)
    seconds = time.perf_counter() - start
    loaded = len(versions)
    assert loaded >= SNAPSHOT_VERSIONS, loaded
    del schemas, versions
    gc.collect()
    tracemalloc.start()
    schemas, versions = await _load_index(store)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del schemas, versions
    gc.collect()
    start = time.perf_counter()
    rows = await raw_fetch()
    raw_seconds = time.perf_counter() - start
    _line(
        f"{label} snapshot of {loaded} versions into dict indexes: {seconds:.2f} s, "
        f"peak {peak / 2**20:.0f} MiB traced (baseline: bare driver fetch of the same {rows} rows "
        f"{raw_seconds:.2f} s)"
    )


def _seed_rows() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """100,000 versions over 1,000 subjects, each version its own schema, IDs above the benchmark's."""
    schemas, subjects, versions = [], [], []
    per_subject = SNAPSHOT_VERSIONS // SNAPSHOT_SUBJECTS
    for s in range(SNAPSHOT_SUBJECTS):
        subject = f"seed-{s}-value"
        subjects.append((subject, "bench", SchemaFormat.AVRO.value, "BACKWARD"))
        for v in range(1, per_subject + 1):
            schema_id = 1_000_000 + s * per_subject + v
            text = avro_record(f"Seed{s}V{v}", "id", f"f{v}")
            fingerprint = new_version(subject, v, text).fingerprint
            schemas.append((schema_id, SchemaFormat.AVRO.value, text, text, fingerprint, "[]"))
            versions.append((subject, v, schema_id, "ACTIVE", "bench"))
    return schemas, subjects, versions


def _seed_sqlite(path: str) -> None:
    insert_rows(path, *_seed_rows())


async def _seed_postgres(dsn: str) -> None:
    await copy_rows(dsn, *_seed_rows())


async def _bench_sqlite(root: Path) -> None:
    label = "sqlite"
    path = str(root / "bench.db")
    store = store_from_url(f"sqlite:///{path}")
    await store.open()
    try:
        registered = await _registrations(store, label)
        await _lookups(store, label, registered)
    finally:
        await store.close()

    # Baselines: the bare driver on the same file with the same pragmas.
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE bare (id INTEGER PRIMARY KEY, body TEXT)")

    async def bare_commit(i: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO bare (body) VALUES (?)", (f"row {i}",))
        conn.execute("COMMIT")

    done, seconds = await _timed(REGISTRATIONS, REGISTRATION_SECONDS, bare_commit)
    _line(
        f"{label} baseline: {_rate(done, seconds):.0f} bare one-row commits/s (same file, synchronous=FULL)"
    )
    ids = [r[2] for r in registered]

    async def bare_select(i: int) -> None:
        assert conn.execute("SELECT * FROM schemas WHERE id = ?", (ids[i % len(ids)],)).fetchone()

    done, seconds = await _timed(LOOKUPS, 30.0, bare_select)
    _line(
        f"{label} baseline: {_rate(done, seconds):.0f} bare SELECT by id/s (same thread, no event loop hop)"
    )
    conn.close()

    _seed_sqlite(path)
    store = store_from_url(f"sqlite:///{path}")
    await store.open()

    async def raw_fetch() -> int:
        raw = sqlite3.connect(path)
        try:
            return sum(
                len(raw.execute(f"SELECT * FROM {table}").fetchall())
                for table in ("schemas", "subjects", "subject_versions")
            )
        finally:
            raw.close()

    try:
        await _snapshot_load(store, label, raw_fetch)
    finally:
        await store.close()


async def _bench_postgres(dsn: str) -> None:
    label = "postgres"
    store = store_from_url(dsn)
    await store.open()
    try:
        registered = await _registrations(store, label)
        await _lookups(store, label, registered)
    finally:
        await store.close()

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE bare (id BIGSERIAL PRIMARY KEY, body TEXT)")

        async def bare_commit(i: int) -> None:
            async with conn.transaction():
                await conn.execute("INSERT INTO bare (body) VALUES ($1)", f"row {i}")

        done, seconds = await _timed(REGISTRATIONS, REGISTRATION_SECONDS, bare_commit)
        _line(f"{label} baseline: {_rate(done, seconds):.0f} bare one-row commits/s (same server, fsync on)")
        ids = [r[2] for r in registered]

        async def bare_select(i: int) -> None:
            assert await conn.fetchrow("SELECT * FROM schemas WHERE id = $1", ids[i % len(ids)])

        done, seconds = await _timed(LOOKUPS, 30.0, bare_select)
        _line(f"{label} baseline: {_rate(done, seconds):.0f} bare SELECT by id/s (one connection, no pool)")
    finally:
        await conn.close()

    await _seed_postgres(dsn)
    store = store_from_url(dsn)
    await store.open()

    async def raw_fetch() -> int:
        raw = await asyncpg.connect(dsn)
        try:
            total = 0
            for table in ("schemas", "subjects", "subject_versions"):
                total += len(await raw.fetch(f"SELECT * FROM {table}"))
            return total
        finally:
            await raw.close()

    try:
        await _snapshot_load(store, label, raw_fetch)
    finally:
        await store.close()


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="kschema-bench-") as root:
        asyncio.run(_bench_sqlite(Path(root)))
    with running_postgres(durable=True) as server:
        dsn = server.create_database()
        asyncio.run(_bench_postgres(dsn))


if __name__ == "__main__":
    run()
