"""The embedded SQLite backend: one file (on a PVC in the cluster), WAL mode, `synchronous=FULL`.

Each connection lives on its own thread and every transaction runs there as one plain function, so a
registration costs one hop between the event loop and the thread, not one per statement. There is one
writer connection (writes are serialised in this process, and `BEGIN IMMEDIATE` serialises them with
other processes on the same file) and a few reader connections, which WAL lets read while a write is
in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from kschema.compat import CompatibilityLevel
from kschema.formats import SchemaFormat
from kschema.model import SchemaState
from kschema.store import _common as common
from kschema.store.base import (
    Change,
    InvalidInputError,
    NewVersion,
    Snapshot,
    StoredSchema,
    StoreError,
    StoreUnavailableError,
    SubjectRecord,
    SubjectVersion,
)
from kschema.store.group_commit import GroupCommit, Outcome
from kschema.store.sqlite_probe import DataVersionProbe
from kschema.store.sqlite_writes import WriteFn, run_batch

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_SECONDS = 10.0
READER_CONNECTIONS = 2
POLL_INTERVAL_SECONDS = 0.05
# The same text format as the tables' defaults (see migrations/sqlite).
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

_SCHEMA_COLUMNS = common.SCHEMA_COLUMNS
_SUBJECT_COLUMNS = common.SUBJECT_COLUMNS
_VERSION_COLUMNS = common.VERSION_COLUMNS
_NEXT_FREE_ID = common.NEXT_FREE_ID_SQL.format(p="?1")
_schema = common.schema_from_row
_subject = common.subject_from_row
_version = common.version_from_row


def _change(row: tuple[Any, ...]) -> Change:
    return Change(
        seq=row[0],
        kind=row[1],
        subject=row[2],
        version=row[3],
        schema_id=row[4],
        at=datetime.fromisoformat(row[5]),
    )


def split_statements(script: str) -> list[str]:
    """Splits a migration into statements (`executescript` would commit the surrounding transaction)."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            text = pending.strip()
            # A piece of nothing but comments and whitespace is complete but not a statement.
            if any(line.strip() and not line.strip().startswith("--") for line in text.splitlines()):
                statements.append(text)
            pending = ""
    if pending.strip(" \n\t;"):
        raise StoreError("migration ends in an incomplete statement", "migrations")
    return statements


def _translate(error: sqlite3.Error, path: str) -> StoreError:
    if isinstance(error, sqlite3.OperationalError):
        # busy/locked after the busy timeout, I/O errors, a missing directory, a full disk: the file is
        # not usable right now, which the caller treats as "retry later".
        return StoreUnavailableError(f"SQLite database {path} is unavailable: {error}")
    return StoreError(f"SQLite database {path} failed: {error}")


def _enable_wal(conn: sqlite3.Connection, path: str) -> None:
    """Switches the file to WAL (a persistent setting). On a brand-new file several connections race to
    do it, and SQLite answers "database is locked" at once instead of calling the busy handler, so retry
    here within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    delay = 0.005
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
    if str(mode).lower() != "wal":
        raise StoreError(f"SQLite database {path} refused WAL mode (got {mode})")


class _Connection:
    """A sqlite3 connection owned by one thread; `run` executes a function there."""

    def __init__(self, path: str, name: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                raise StoreUnavailableError(f"SQLite database {self._path} is closed")
            try:
                return fn(self._conn)
            except sqlite3.Error as error:
                raise _translate(error, self._path) from error

        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, call)
        except RuntimeError as error:  # the executor was shut down: the store was closed meanwhile
            raise StoreUnavailableError(f"SQLite database {self._path} is closed") from error
        return await future

    async def open(self, query_only: bool) -> None:
        def connect() -> None:
            try:
                conn = sqlite3.connect(
                    self._path,
                    timeout=BUSY_TIMEOUT_SECONDS,
                    isolation_level=None,  # explicit BEGIN/COMMIT only
                    check_same_thread=False,
                )
            except sqlite3.Error as error:
                raise _translate(error, self._path) from error
            try:
                _enable_wal(conn, self._path)
                # FULL: a commit is on disk before the ID is acknowledged, even across power loss.
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
                conn.execute("PRAGMA foreign_keys=ON")
                if query_only:
                    conn.execute("PRAGMA query_only=ON")
            except BaseException:
                conn.close()
                raise
            self._conn = conn

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except sqlite3.Error as error:
            raise _translate(error, self._path) from error

    async def close(self) -> None:
        def disconnect() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)
        finally:
            self._executor.shutdown(wait=True)


def _in_write(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    # IMMEDIATE takes the write lock now: a transaction that read first and then tried to write could
    # fail with SQLITE_BUSY midway, which the busy timeout cannot retry.
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _fetch_subject(conn: sqlite3.Connection, subject: str) -> SubjectRecord | None:
    row = conn.execute(f"SELECT {_SUBJECT_COLUMNS} FROM subjects WHERE subject = ?", (subject,)).fetchone()
    return None if row is None else _subject(row)


def _fetch_version(conn: sqlite3.Connection, subject: str, version: int) -> SubjectVersion | None:
    row = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM subject_versions WHERE subject = ? AND version = ?",
        (subject, version),
    ).fetchone()
    return None if row is None else _version(row)


def _fetch_schema(conn: sqlite3.Connection, schema_id: int) -> StoredSchema | None:
    row = conn.execute(f"SELECT {_SCHEMA_COLUMNS} FROM schemas WHERE id = ?", (schema_id,)).fetchone()
    return None if row is None else _schema(row)


def _fetch_by_content(conn: sqlite3.Connection, fingerprint: str, fmt: SchemaFormat) -> StoredSchema | None:
    row = conn.execute(
        f"SELECT {_SCHEMA_COLUMNS} FROM schemas WHERE fingerprint = ? AND format = ?",
        (fingerprint, fmt.value),
    ).fetchone()
    return None if row is None else _schema(row)


def _append(
    conn: sqlite3.Connection,
    kind: str,
    subject: str | None = None,
    version: int | None = None,
    schema_id: int | None = None,
) -> None:
    conn.execute(
        "INSERT INTO changes (kind, subject, version, schema_id) VALUES (?, ?, ?, ?)",
        (kind, subject, version, schema_id),
    )


def _register(conn: sqlite3.Connection, new: NewVersion) -> tuple[SubjectVersion, bool]:
    subject = _fetch_subject(conn, new.subject)
    common.check_subject_claim(subject, new.namespace, new.format)
    existing = _fetch_version(conn, new.subject, new.version)
    content = _fetch_by_content(conn, new.fingerprint, new.format)
    holder = None if new.pinned_id is None else _fetch_schema(conn, new.pinned_id)
    schema_id, changed = common.choose_schema_id(new, existing, content, holder)
    if schema_id is None:
        sequence = conn.execute("SELECT id_sequence FROM registry_counters").fetchone()[0]
        schema_id = common.allocated_id(conn.execute(_NEXT_FREE_ID, (sequence + 1,)).fetchone()[0])
        conn.execute("UPDATE registry_counters SET id_sequence = ?", (schema_id,))
    if changed:
        conn.execute(
            "INSERT INTO schemas (id, format, schema_text, canonical, fingerprint, refs, contract) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                schema_id,
                new.format.value,
                new.schema,
                new.canonical,
                new.fingerprint,
                common.encode_references(new.references),
                common.encode_contract(new.contract),
            ),
        )
        conn.execute("UPDATE registry_counters SET id_high_water = max(id_high_water, ?)", (schema_id,))
        _append(conn, common.KIND_SCHEMA, schema_id=schema_id)

    if subject is None:
        conn.execute(
            "INSERT INTO subjects (subject, namespace, format, compatibility) VALUES (?, ?, ?, ?)",
            (new.subject, new.namespace, new.format.value, CompatibilityLevel.BACKWARD.value),
        )
        _append(conn, common.KIND_SUBJECT, subject=new.subject)
        changed = True
    elif subject.deleted or subject.namespace != new.namespace:
        conn.execute(
            f"UPDATE subjects SET deleted = 0, namespace = ?, transfer_to = ?, updated_at = {_NOW} "
            "WHERE subject = ?",
            (new.namespace, common.transfer_after_claim(subject, new.namespace), new.subject),
        )
        _append(conn, common.KIND_SUBJECT, subject=new.subject)
        changed = True

    result = common.registered_version(new, schema_id)
    if existing is None:
        conn.execute(
            "INSERT INTO subject_versions (subject, version, schema_id, state, namespace, sunset) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (new.subject, new.version, schema_id, new.state.value, new.namespace, new.sunset),
        )
    elif existing != result:
        conn.execute(
            "UPDATE subject_versions SET state = ?, deleted = 0, namespace = ?, sunset = ?, "
            f"updated_at = {_NOW} WHERE subject = ? AND version = ?",
            (new.state.value, new.namespace, new.sunset, new.subject, new.version),
        )
    else:
        return result, changed
    _append(conn, common.KIND_VERSION, subject=new.subject, version=new.version, schema_id=schema_id)
    return result, True


def _upsert_subject(conn: sqlite3.Connection, record: SubjectRecord) -> bool:
    existing = _fetch_subject(conn, record.subject)
    common.check_subject_claim(existing, record.namespace, record.format)
    if existing == record:
        return False
    if existing is None:
        conn.execute(
            "INSERT INTO subjects (subject, namespace, format, compatibility, description, "
            "compatibility_declared, contract, transfer_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.subject,
                record.namespace,
                record.format.value,
                record.compatibility.value,
                record.description,
                int(record.compatibility_declared),
                common.encode_subject_contract(record.contract),
                record.transfer_to,
            ),
        )
    else:
        conn.execute(
            "UPDATE subjects SET namespace = ?, compatibility = ?, description = ?, deleted = 0, "
            f"compatibility_declared = ?, contract = ?, transfer_to = ?, updated_at = {_NOW} "
            "WHERE subject = ?",
            (
                record.namespace,
                record.compatibility.value,
                record.description,
                int(record.compatibility_declared),
                common.encode_subject_contract(record.contract),
                record.transfer_to,
                record.subject,
            ),
        )
    _append(conn, common.KIND_SUBJECT, subject=record.subject)
    return True


def _delete_subject(conn: sqlite3.Connection, subject: str, namespace: str) -> bool:
    existing = _fetch_subject(conn, subject)
    if existing is None:
        return False
    common.check_subject_owner(existing, namespace)
    live = conn.execute(
        "SELECT version, schema_id FROM subject_versions WHERE subject = ? AND deleted = 0 ORDER BY version",
        (subject,),
    ).fetchall()
    if existing.deleted and not live:
        return False
    conn.execute("UPDATE subject_versions SET deleted = 1 WHERE subject = ? AND deleted = 0", (subject,))
    for version, schema_id in live:
        _append(conn, common.KIND_VERSION, subject=subject, version=version, schema_id=schema_id)
    if not existing.deleted:
        conn.execute(
            f"UPDATE subjects SET deleted = 1, updated_at = {_NOW} WHERE subject = ?",
            (subject,),
        )
        _append(conn, common.KIND_SUBJECT, subject=subject)
    return True


def _set_state(
    conn: sqlite3.Connection, subject: str, version: int, state: SchemaState, sunset: str | None
) -> bool:
    existing = common.require_version(_fetch_version(conn, subject, version), subject, version)
    if existing.state == state and existing.sunset == sunset:
        return False
    conn.execute(
        f"UPDATE subject_versions SET state = ?, sunset = ?, updated_at = {_NOW} "
        "WHERE subject = ? AND version = ?",
        (state.value, sunset, subject, version),
    )
    _append(conn, common.KIND_VERSION, subject=subject, version=version, schema_id=existing.schema_id)
    return True


def _delete_version(conn: sqlite3.Connection, subject: str, version: int) -> bool:
    existing = _fetch_version(conn, subject, version)
    if existing is None or existing.deleted:
        return False
    conn.execute(
        f"UPDATE subject_versions SET deleted = 1, updated_at = {_NOW} WHERE subject = ? AND version = ?",
        (subject, version),
    )
    _append(conn, common.KIND_VERSION, subject=subject, version=version, schema_id=existing.schema_id)
    return True


def _migrate(conn: sqlite3.Connection, migrations: list[common.Migration]) -> list[int]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    done: list[int] = []
    for migration in common.pending_migrations(applied, migrations):
        for statement in split_statements(migration.sql):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (migration.version, migration.name)
        )
        done.append(migration.version)
    return done


class SqliteStore:
    """`RegistryStore` on one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        if self._path in ("", ":memory:") or self._path.startswith("file::memory:"):
            raise InvalidInputError(
                "the SQLite store needs a file (WAL mode and several connections); in-memory databases "
                "are not supported",
                "url",
            )
        self._writer: _Connection | None = None
        self._writes: GroupCommit[WriteFn] | None = None  # batches the writer's transactions (sqlite_writes)
        self._readers: asyncio.Queue[_Connection] | None = None
        self._all_readers: list[_Connection] = []
        self._written = asyncio.Event()
        self._probe = DataVersionProbe(self._path)

    @property
    def path(self) -> str:
        return self._path

    # Lifecycle ---------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._writer is not None:
            return
        writer = _Connection(self._path, "kschema-sqlite-writer")
        readers: list[_Connection] = []
        try:
            await writer.open(query_only=False)
            migrations = common.load_migrations("sqlite")
            applied = await writer.run(lambda conn: _in_write(conn, lambda c: _migrate(c, migrations)))
            if applied:
                log.info("Applied SQLite migrations path=%s versions=%s", self._path, applied)
            for i in range(READER_CONNECTIONS):
                reader = _Connection(self._path, f"kschema-sqlite-reader-{i}")
                readers.append(reader)
                await reader.open(query_only=True)
        except BaseException:
            for connection in [writer, *readers]:
                await connection.close()
            raise
        queue: asyncio.Queue[_Connection] = asyncio.Queue()
        for reader in readers:
            queue.put_nowait(reader)
        await asyncio.to_thread(self._probe.open)
        self._writer, self._readers, self._all_readers = writer, queue, readers

    async def close(self) -> None:
        writer, readers = self._writer, self._all_readers
        self._writer, self._readers, self._all_readers = None, None, []
        self._writes = None
        self._probe.close()
        for reader in readers:
            await reader.close()
        if writer is not None:
            await writer.close()

    # Plumbing ----------------------------------------------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection], tuple[T, bool]]) -> T:
        if self._writer is None:
            raise StoreUnavailableError("the SQLite store is not open")
        if self._writes is None:
            self._writes = GroupCommit(functools.partial(self._commit, self._writer))
        outcome: tuple[T, bool] = await self._writes.submit(fn)
        result, changed = outcome
        if changed:
            # Wake this process's followers at once; other processes see the change at their next poll.
            self._written.set()
            self._written = asyncio.Event()
        return result

    async def _commit(self, writer: _Connection, fns: list[WriteFn]) -> list[Outcome]:
        """One transaction of the group commit (see `group_commit`)."""
        path = self._path
        return await writer.run(
            functools.partial(run_batch, fns=fns, translate=lambda error: _translate(error, path))
        )

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise StoreUnavailableError("the SQLite store is not open")
        readers = self._readers
        reader = await readers.get()
        try:
            return await reader.run(fn)
        finally:
            readers.put_nowait(reader)

    # Subjects ----------------------------------------------------------------------------------------

    async def upsert_subject(self, record: SubjectRecord) -> SubjectRecord:
        clean = common.validate_subject_record(record)
        await self._write(lambda conn: (None, _upsert_subject(conn, clean)))
        return clean

    async def delete_subject(self, subject: str, namespace: str) -> None:
        common.check_subject(subject)
        common.check_namespace(namespace)
        await self._write(lambda conn: (None, _delete_subject(conn, subject, namespace)))

    async def get_subject(self, subject: str, include_deleted: bool = False) -> SubjectRecord | None:
        record = await self._read(lambda conn: _fetch_subject(conn, subject))
        return common.visible(record, include_deleted)

    async def list_subjects(self, include_deleted: bool = False) -> list[SubjectRecord]:
        where = "" if include_deleted else " WHERE deleted = 0"
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_SUBJECT_COLUMNS} FROM subjects{where} ORDER BY subject"
            ).fetchall()
        )
        return [_subject(row) for row in rows]

    # Versions ----------------------------------------------------------------------------------------

    async def register(self, new: NewVersion) -> SubjectVersion:
        clean = common.validate_new_version(new)
        return await self._write(lambda conn: _register(conn, clean))

    async def set_state(
        self, subject: str, version: int, state: SchemaState, sunset: str | None = None
    ) -> None:
        clean_state, clean_sunset = common.check_state_change(subject, version, state, sunset)
        await self._write(lambda conn: (None, _set_state(conn, subject, version, clean_state, clean_sunset)))

    async def delete_version(self, subject: str, version: int) -> None:
        common.check_subject(subject)
        common.check_version(version)
        await self._write(lambda conn: (None, _delete_version(conn, subject, version)))

    async def get_version(
        self, subject: str, version: int, include_deleted: bool = False
    ) -> SubjectVersion | None:
        if not common.could_exist(version, common.MAX_VERSION):
            return None
        found = await self._read(lambda conn: _fetch_version(conn, subject, version))
        return common.visible(found, include_deleted)

    async def list_versions(self, subject: str, include_deleted: bool = False) -> list[SubjectVersion]:
        where = "" if include_deleted else " AND deleted = 0"
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_VERSION_COLUMNS} FROM subject_versions WHERE subject = ?{where} ORDER BY version",
                (subject,),
            ).fetchall()
        )
        return [_version(row) for row in rows]

    async def get_versions(self, keys: Sequence[tuple[str, int]]) -> list[SubjectVersion]:
        wanted = common.batch_keys(keys)

        def fetch(conn: sqlite3.Connection) -> list[SubjectVersion]:
            found = (_fetch_version(conn, subject, version) for subject, version in dict.fromkeys(wanted))
            return [v for v in found if v is not None]

        return await self._read(fetch) if wanted else []

    # Schemas -----------------------------------------------------------------------------------------

    async def get_schema(self, schema_id: int) -> StoredSchema | None:
        if not common.could_exist(schema_id, common.MAX_SCHEMA_ID):
            return None
        return await self._read(lambda conn: _fetch_schema(conn, schema_id))

    async def get_schemas(self, schema_ids: Sequence[int]) -> list[StoredSchema]:
        wanted = common.batch_ids(schema_ids)
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_SCHEMA_COLUMNS} FROM schemas WHERE id IN ({marks})", wanted
            ).fetchall()
        )
        return [_schema(row) for row in rows]

    async def find_schema(self, fingerprint: str, format: SchemaFormat | None = None) -> StoredSchema | None:
        """The schema with this fingerprint; with `format`, only of that format (a JSON Schema and an Avro
        schema could in principle share a canonical text, and they are different schemas)."""
        if format is not None:
            fmt = common.check_format(format)
            return await self._read(lambda conn: _fetch_by_content(conn, fingerprint, fmt))
        row = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_SCHEMA_COLUMNS} FROM schemas WHERE fingerprint = ? ORDER BY id LIMIT 1",
                (fingerprint,),
            ).fetchone()
        )
        return None if row is None else _schema(row)

    async def versions_of_schema(self, schema_id: int, include_deleted: bool = False) -> list[SubjectVersion]:
        where = "" if include_deleted else " AND deleted = 0"
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_VERSION_COLUMNS} FROM subject_versions WHERE schema_id = ?{where} "
                "ORDER BY subject, version",
                (schema_id,),
            ).fetchall()
        )
        return [_version(row) for row in rows]

    # Change feed -------------------------------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        def read(conn: sqlite3.Connection) -> Snapshot:
            # One read transaction: WAL gives it a fixed view of the file while writers go on.
            conn.execute("BEGIN")
            try:
                seq = conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
                schemas = [
                    _schema(r) for r in conn.execute(f"SELECT {_SCHEMA_COLUMNS} FROM schemas ORDER BY id")
                ]
                subjects = [
                    _subject(r)
                    for r in conn.execute(f"SELECT {_SUBJECT_COLUMNS} FROM subjects ORDER BY subject")
                ]
                versions = [
                    _version(r)
                    for r in conn.execute(
                        f"SELECT {_VERSION_COLUMNS} FROM subject_versions ORDER BY subject, version"
                    )
                ]
            finally:
                conn.execute("COMMIT")
            return Snapshot(seq=seq, schemas=schemas, subjects=subjects, versions=versions)

        return await self._read(read)

    async def changes(self, after_seq: int, limit: int = 1000) -> list[Change]:
        common.check_limit(limit)
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT seq, kind, subject, version, schema_id, at FROM changes "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        )
        return [_change(row) for row in rows]

    async def latest_seq(self) -> int:
        """The newest change-feed sequence number (0 when the feed is empty)."""
        seq: int = await self._read(
            lambda conn: conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
        )
        return seq

    async def wait_for_changes(self, after_seq: int, timeout: float) -> None:  # noqa: ASYNC109 (the protocol's signature)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen: int | None = None
        while True:
            written = self._written
            # The file's data version before the query: a commit after this read changes it, so the
            # next poll queries again; an unchanged version means nothing was committed since the last
            # query, which is skipped.
            version = self._probe.read()
            if version is None or version != seen:
                if await self.latest_seq() > after_seq:
                    return
                seen = version
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            # Writers in other processes cannot signal us, so poll; our own writes wake us at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(written.wait(), min(POLL_INTERVAL_SECONDS, remaining))

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1").fetchone())
