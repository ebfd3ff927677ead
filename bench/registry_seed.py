"""Registry stores filled with many versions for the read-API benchmarks: 10 versions per subject
(`topic-{s}-value`, versions 1..10), each version its own Avro record, IDs 1..N.

The rows go in with the bare driver (one transaction, or PostgreSQL's COPY) into tables the store's own
migrations created; registering 100,000 versions one by one through the store would take minutes. A
SQLite file is built once per size and migration set and cached under `~/.cache/kschema/bench`; callers
work on a copy."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
from tests.harness.stores import fingerprint_of

from kschema.devcluster.cachedir import cache_dir
from kschema.formats import SchemaFormat
from kschema.store.postgres import PostgresStore
from kschema.store.sqlite import SqliteStore

VERSIONS_PER_SUBJECT = 10
CACHE = cache_dir() / "bench"

Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def subject_name(s: int) -> str:
    return f"topic-{s}-value"


def avro_text(i: int) -> str:
    """A ~300-byte record, as the author wrote it (with whitespace)."""
    fields: list[dict[str, object]] = [{"name": f"f{j}", "type": "string"} for j in range(5)]
    fields.append({"name": "n", "type": "long", "default": i})
    return json.dumps({"type": "record", "name": f"Rec{i}", "namespace": "bench", "fields": fields})


def rows(versions: int) -> Rows:
    schemas, subjects, subject_versions = [], [], []
    for s in range(versions // VERSIONS_PER_SUBJECT):
        subjects.append((subject_name(s), "bench", SchemaFormat.AVRO.value, "BACKWARD"))
        for v in range(1, VERSIONS_PER_SUBJECT + 1):
            schema_id = s * VERSIONS_PER_SUBJECT + v
            text = avro_text(schema_id)
            fingerprint = fingerprint_of(SchemaFormat.AVRO, text)
            schemas.append((schema_id, SchemaFormat.AVRO.value, text, text, fingerprint, "[]"))
            subject_versions.append((subject_name(s), v, schema_id, "ACTIVE", "bench"))
    return schemas, subjects, subject_versions


def _migrations_key(backend: str) -> str:
    digest = hashlib.sha256()
    folder = resources.files("kschema.store") / "migrations" / backend
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        digest.update(entry.name.encode())
        digest.update(entry.read_bytes())
    return digest.hexdigest()[:12]


def sqlite_file(versions: int) -> Path:
    """A cached SQLite store file with `versions` versions (built on first use)."""
    path = CACHE / f"registry-{versions}-{_migrations_key('sqlite')}.db"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        building = Path(tmp) / "registry.db"
        asyncio.run(_migrate(SqliteStore(building)))
        schemas, subjects, subject_versions = rows(versions)
        insert_rows(building, schemas, subjects, subject_versions)
        for suffix in ("-wal", "-shm"):
            building.with_name(building.name + suffix).unlink(missing_ok=True)
        os.replace(building, path)
    return path


def sqlite_copy(versions: int, into: Path) -> str:
    """A store URL for a private copy of the cached file."""
    target = into / f"registry-{versions}.db"
    shutil.copyfile(sqlite_file(versions), target)
    return f"sqlite:///{target}"


async def _migrate(store: SqliteStore | PostgresStore) -> None:
    await store.open()
    await store.close()


async def seed_postgres(dsn: str, versions: int) -> None:
    """Creates the store's tables in the (empty) database and copies `versions` versions in."""
    await _migrate(PostgresStore(dsn))
    await copy_rows(dsn, *rows(versions))


async def copy_rows(dsn: str, schemas: list[Any], subjects: list[Any], subject_versions: list[Any]) -> None:
    """Copies the rows into the store's tables with COPY, in one transaction, and moves the ID counters
    past them."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "schemas",
                records=schemas,
                columns=["id", "format", "schema_text", "canonical", "fingerprint", "refs"],
            )
            await conn.copy_records_to_table(
                "subjects", records=subjects, columns=["subject", "namespace", "format", "compatibility"]
            )
            await conn.copy_records_to_table(
                "subject_versions",
                records=subject_versions,
                columns=["subject", "version", "schema_id", "state", "namespace"],
            )
            await conn.execute(
                "UPDATE registry_counters SET id_high_water = greatest(id_high_water, $1), id_sequence = $1",
                schemas[-1][0],
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def insert_rows(
    path: Path | str, schemas: list[Any], subjects: list[Any], subject_versions: list[Any]
) -> None:
    """Inserts the rows into a SQLite store's tables in one transaction and moves the ID counters past
    them."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO schemas (id, format, schema_text, canonical, fingerprint, refs) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            schemas,
        )
        conn.executemany(
            "INSERT INTO subjects (subject, namespace, format, compatibility) VALUES (?, ?, ?, ?)",
            subjects,
        )
        conn.executemany(
            "INSERT INTO subject_versions (subject, version, schema_id, state, namespace) "
            "VALUES (?, ?, ?, ?, ?)",
            subject_versions,
        )
        conn.execute(
            "UPDATE registry_counters SET id_high_water = max(id_high_water, ?1), id_sequence = ?1",
            (schemas[-1][0],),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
