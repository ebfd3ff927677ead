"""The PostgreSQL backend, for high availability and for one registry shared by several clusters.

asyncpg with a connection pool: a connection broken by a server restart is dropped and the next call
connects again, so the process recovers without restarting. Every write transaction first locks the
single `registry_counters` row (it holds the ID allocator's sequence): writes are serialised across all
processes, which makes ID allocation trivially race-free and makes change-feed sequence numbers commit
in order (a follower reading `seq > n` never skips a row that commits later with a smaller number).
Registry writes are rare and short, so the lock costs nothing that matters. Readers never take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from kschema.compat import CompatibilityLevel
from kschema.formats import SchemaFormat
from kschema.model import SchemaState
from kschema.store import _common as common
from kschema.store.base import (
    Change,
    NewVersion,
    Snapshot,
    StoredSchema,
    StoreError,
    StoreUnavailableError,
    SubjectRecord,
    SubjectVersion,
)
from kschema.store.group_commit import GroupCommit, Outcome
from kschema.store.postgres_writes import WriteFn, run_batch

log = logging.getLogger(__name__)

T = TypeVar("T")

NOTIFY_CHANNEL = "kschema_changes"
# pg_advisory_xact_lock key held while migrating ("kschema" as a big-endian integer).
MIGRATION_LOCK_KEY = int.from_bytes(b"kschema", "big")
CONNECT_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 30.0

# Errors that mean "the server is not reachable right now" rather than "this request is wrong".
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,  # class 08: connection lost, refused, does not exist
    asyncpg.exceptions.OperatorInterventionError,  # class 57: admin shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, disk full
    asyncpg.InterfaceError,  # connection closed under us, pool closing
    OSError,  # refused, reset, unreachable
    TimeoutError,  # connect or acquire timed out
)

_NEXT_FREE_ID = common.NEXT_FREE_ID_SQL.format(p="$1::bigint")
_S = common.SCHEMA_COLUMNS
_SUBJ = common.SUBJECT_COLUMNS
_V = common.VERSION_COLUMNS


def _change(row: Any) -> Change:
    return Change(seq=row[0], kind=row[1], subject=row[2], version=row[3], schema_id=row[4], at=row[5])


async def _fetch_subject(conn: Any, subject: str) -> SubjectRecord | None:
    row = await conn.fetchrow(f"SELECT {_SUBJ} FROM subjects WHERE subject = $1", subject)
    return None if row is None else common.subject_from_row(row)


async def _fetch_version(conn: Any, subject: str, version: int) -> SubjectVersion | None:
    row = await conn.fetchrow(
        f"SELECT {_V} FROM subject_versions WHERE subject = $1 AND version = $2", subject, version
    )
    return None if row is None else common.version_from_row(row)


async def _fetch_schema(conn: Any, schema_id: int) -> StoredSchema | None:
    row = await conn.fetchrow(f"SELECT {_S} FROM schemas WHERE id = $1", schema_id)
    return None if row is None else common.schema_from_row(row)


async def _fetch_by_content(conn: Any, fingerprint: str, fmt: SchemaFormat) -> StoredSchema | None:
    row = await conn.fetchrow(
        f"SELECT {_S} FROM schemas WHERE fingerprint = $1 AND format = $2", fingerprint, fmt.value
    )
    return None if row is None else common.schema_from_row(row)


async def _append(
    conn: Any, kind: str, subject: str | None = None, version: int | None = None, schema_id: int | None = None
) -> None:
    await conn.execute(
        "INSERT INTO changes (kind, subject, version, schema_id) VALUES ($1, $2, $3, $4)",
        kind,
        subject,
        version,
        schema_id,
    )


async def _register(conn: Any, sequence: int, new: NewVersion) -> tuple[SubjectVersion, bool]:
    subject = await _fetch_subject(conn, new.subject)
    common.check_subject_claim(subject, new.namespace, new.format)
    existing = await _fetch_version(conn, new.subject, new.version)
    content = await _fetch_by_content(conn, new.fingerprint, new.format)
    holder = None if new.pinned_id is None else await _fetch_schema(conn, new.pinned_id)
    schema_id, changed = common.choose_schema_id(new, existing, content, holder)
    if schema_id is None:
        schema_id = common.allocated_id(await conn.fetchval(_NEXT_FREE_ID, sequence + 1))
        await conn.execute("UPDATE registry_counters SET id_sequence = $1 WHERE singleton = 1", schema_id)
    if changed:
        await conn.execute(
            "INSERT INTO schemas (id, format, schema_text, canonical, fingerprint, refs, contract) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            schema_id,
            new.format.value,
            new.schema,
            new.canonical,
            new.fingerprint,
            common.encode_references(new.references),
            common.encode_contract(new.contract),
        )
        await conn.execute(
            "UPDATE registry_counters SET id_high_water = greatest(id_high_water, $1) WHERE singleton = 1",
            schema_id,
        )
        await _append(conn, common.KIND_SCHEMA, schema_id=schema_id)

    if subject is None:
        await conn.execute(
            "INSERT INTO subjects (subject, namespace, format, compatibility) VALUES ($1, $2, $3, $4)",
            new.subject,
            new.namespace,
            new.format.value,
            CompatibilityLevel.BACKWARD.value,
        )
        await _append(conn, common.KIND_SUBJECT, subject=new.subject)
        changed = True
    elif subject.deleted or subject.namespace != new.namespace:
        await conn.execute(
            "UPDATE subjects SET deleted = FALSE, namespace = $1, transfer_to = $2, updated_at = now() "
            "WHERE subject = $3",
            new.namespace,
            common.transfer_after_claim(subject, new.namespace),
            new.subject,
        )
        await _append(conn, common.KIND_SUBJECT, subject=new.subject)
        changed = True

    result = common.registered_version(new, schema_id)
    if existing is None:
        await conn.execute(
            "INSERT INTO subject_versions (subject, version, schema_id, state, namespace, sunset) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            new.subject,
            new.version,
            schema_id,
            new.state.value,
            new.namespace,
            new.sunset,
        )
    elif existing != result:
        await conn.execute(
            "UPDATE subject_versions SET state = $1, deleted = FALSE, namespace = $2, sunset = $3, "
            "updated_at = now() WHERE subject = $4 AND version = $5",
            new.state.value,
            new.namespace,
            new.sunset,
            new.subject,
            new.version,
        )
    else:
        return result, changed
    await _append(conn, common.KIND_VERSION, subject=new.subject, version=new.version, schema_id=schema_id)
    return result, True


async def _upsert_subject(conn: Any, record: SubjectRecord) -> bool:
    existing = await _fetch_subject(conn, record.subject)
    common.check_subject_claim(existing, record.namespace, record.format)
    if existing == record:
        return False
    if existing is None:
        await conn.execute(
            "INSERT INTO subjects (subject, namespace, format, compatibility, description, "
            "compatibility_declared, contract, transfer_to) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            record.subject,
            record.namespace,
            record.format.value,
            record.compatibility.value,
            record.description,
            record.compatibility_declared,
            common.encode_subject_contract(record.contract),
            record.transfer_to,
        )
    else:
        await conn.execute(
            "UPDATE subjects SET namespace = $1, compatibility = $2, description = $3, deleted = FALSE, "
            "compatibility_declared = $4, contract = $5, transfer_to = $6, updated_at = now() "
            "WHERE subject = $7",
            record.namespace,
            record.compatibility.value,
            record.description,
            record.compatibility_declared,
            common.encode_subject_contract(record.contract),
            record.transfer_to,
            record.subject,
        )
    await _append(conn, common.KIND_SUBJECT, subject=record.subject)
    return True


async def _delete_subject(conn: Any, subject: str, namespace: str) -> bool:
    existing = await _fetch_subject(conn, subject)
    if existing is None:
        return False
    common.check_subject_owner(existing, namespace)
    live = await conn.fetch(
        "UPDATE subject_versions SET deleted = TRUE, updated_at = now() "
        "WHERE subject = $1 AND NOT deleted RETURNING version, schema_id",
        subject,
    )
    if existing.deleted and not live:
        return False
    for row in sorted(live, key=lambda r: r[0]):
        await _append(conn, common.KIND_VERSION, subject=subject, version=row[0], schema_id=row[1])
    if not existing.deleted:
        await conn.execute(
            "UPDATE subjects SET deleted = TRUE, updated_at = now() WHERE subject = $1", subject
        )
        await _append(conn, common.KIND_SUBJECT, subject=subject)
    return True


async def _set_state(conn: Any, subject: str, version: int, state: SchemaState, sunset: str | None) -> bool:
    existing = common.require_version(await _fetch_version(conn, subject, version), subject, version)
    if existing.state == state and existing.sunset == sunset:
        return False
    await conn.execute(
        "UPDATE subject_versions SET state = $1, sunset = $2, updated_at = now() "
        "WHERE subject = $3 AND version = $4",
        state.value,
        sunset,
        subject,
        version,
    )
    await _append(conn, common.KIND_VERSION, subject=subject, version=version, schema_id=existing.schema_id)
    return True


async def _delete_version(conn: Any, subject: str, version: int) -> bool:
    existing = await _fetch_version(conn, subject, version)
    if existing is None or existing.deleted:
        return False
    await conn.execute(
        "UPDATE subject_versions SET deleted = TRUE, updated_at = now() WHERE subject = $1 AND version = $2",
        subject,
        version,
    )
    await _append(conn, common.KIND_VERSION, subject=subject, version=version, schema_id=existing.schema_id)
    return True


async def _migrate(conn: Any, migrations: list[common.Migration]) -> list[int]:
    async with conn.transaction():
        # Two processes starting at once: the second waits here, then finds nothing left to do.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        applied = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        done: list[int] = []
        for migration in common.pending_migrations(applied, migrations):
            # No arguments: asyncpg sends the file with the simple query protocol, several statements at once;
            # PostgreSQL DDL is transactional, so a failed migration leaves nothing behind.
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            done.append(migration.version)
        return done


class PostgresStore:
    """`RegistryStore` on a PostgreSQL database."""

    def __init__(self, dsn: str, min_connections: int = 1, max_connections: int = 10) -> None:
        self._dsn = dsn
        self._min = min_connections
        self._max = max_connections
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._listener_lock = asyncio.Lock()
        self._notified = asyncio.Event()
        self._writes: GroupCommit[WriteFn] | None = None

    # Lifecycle ---------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self._min,
                max_size=self._max,
                timeout=CONNECT_TIMEOUT_SECONDS,
                command_timeout=COMMAND_TIMEOUT_SECONDS,
            )
        except _UNAVAILABLE as error:
            raise StoreUnavailableError(f"PostgreSQL is unavailable: {error}") from error
        self._pool = pool
        try:
            migrations = common.load_migrations("postgres")
            applied = await self._run(lambda conn: _migrate(conn, migrations))
        except BaseException:
            self._pool = None
            pool.terminate()
            raise
        if applied:
            log.info("Applied PostgreSQL migrations versions=%s", applied)

    async def close(self) -> None:
        pool, listener = self._pool, self._listener
        self._pool, self._listener = None, None
        if listener is not None and not listener.is_closed():
            listener.terminate()
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), CONNECT_TIMEOUT_SECONDS)
            except (TimeoutError, *_UNAVAILABLE):
                pool.terminate()

    # Plumbing ----------------------------------------------------------------------------------------

    async def _run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Runs `fn` on a pooled connection. A broken connection is retried once on a fresh one: every
        operation of this store is idempotent, so repeating one whose commit was in flight is safe."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailableError("the PostgreSQL store is not open")
        for attempt in (1, 2):
            try:
                async with pool.acquire(timeout=CONNECT_TIMEOUT_SECONDS) as conn:
                    return await fn(conn)
            except _UNAVAILABLE as error:
                if attempt == 2:
                    raise StoreUnavailableError(f"PostgreSQL is unavailable: {error}") from error
                log.info("Retrying after a broken PostgreSQL connection error=%r", error)
            except asyncpg.PostgresError as error:
                # Anything else from the server is a bug here (constraint, syntax), not bad user input:
                # input was validated before the transaction began.
                raise StoreError(f"PostgreSQL refused a statement: {error}") from error
        raise AssertionError("unreachable")

    async def _write(self, fn: Callable[[Any, int], Awaitable[tuple[T, bool]]]) -> T:
        """Every write transaction first locks the counters row; writes queued meanwhile share the next
        transaction (group commit, one savepoint each)."""
        if self._writes is None:
            self._writes = GroupCommit(self._commit)
        result: T = await self._writes.submit(fn)
        return result

    async def _commit(self, fns: list[WriteFn]) -> list[Outcome]:
        async def notify(conn: Any) -> None:
            # Delivered at commit, and only if the transaction commits.
            await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)

        return await self._run(functools.partial(run_batch, fns=fns, unavailable=_UNAVAILABLE, notify=notify))

    # Subjects ----------------------------------------------------------------------------------------

    async def upsert_subject(self, record: SubjectRecord) -> SubjectRecord:
        clean = common.validate_subject_record(record)

        async def write(conn: Any, _: int) -> tuple[None, bool]:
            return None, await _upsert_subject(conn, clean)

        await self._write(write)
        return clean

    async def delete_subject(self, subject: str, namespace: str) -> None:
        common.check_subject(subject)
        common.check_namespace(namespace)

        async def write(conn: Any, _: int) -> tuple[None, bool]:
            return None, await _delete_subject(conn, subject, namespace)

        await self._write(write)

    async def get_subject(self, subject: str, include_deleted: bool = False) -> SubjectRecord | None:
        record = await self._run(lambda conn: _fetch_subject(conn, subject))
        return common.visible(record, include_deleted)

    async def list_subjects(self, include_deleted: bool = False) -> list[SubjectRecord]:
        where = "" if include_deleted else " WHERE NOT deleted"
        rows = await self._run(
            lambda conn: conn.fetch(f"SELECT {_SUBJ} FROM subjects{where} ORDER BY subject")
        )
        return [common.subject_from_row(row) for row in rows]

    # Versions ----------------------------------------------------------------------------------------

    async def register(self, new: NewVersion) -> SubjectVersion:
        clean = common.validate_new_version(new)
        return await self._write(lambda conn, sequence: _register(conn, sequence, clean))

    async def set_state(
        self, subject: str, version: int, state: SchemaState, sunset: str | None = None
    ) -> None:
        clean_state, clean_sunset = common.check_state_change(subject, version, state, sunset)

        async def write(conn: Any, _: int) -> tuple[None, bool]:
            return None, await _set_state(conn, subject, version, clean_state, clean_sunset)

        await self._write(write)

    async def delete_version(self, subject: str, version: int) -> None:
        common.check_subject(subject)
        common.check_version(version)

        async def write(conn: Any, _: int) -> tuple[None, bool]:
            return None, await _delete_version(conn, subject, version)

        await self._write(write)

    async def get_version(
        self, subject: str, version: int, include_deleted: bool = False
    ) -> SubjectVersion | None:
        if not common.could_exist(version, common.MAX_VERSION):
            return None
        found = await self._run(lambda conn: _fetch_version(conn, subject, version))
        return common.visible(found, include_deleted)

    async def list_versions(self, subject: str, include_deleted: bool = False) -> list[SubjectVersion]:
        where = "" if include_deleted else " AND NOT deleted"
        rows = await self._run(
            lambda conn: conn.fetch(
                f"SELECT {_V} FROM subject_versions WHERE subject = $1{where} ORDER BY version", subject
            )
        )
        return [common.version_from_row(row) for row in rows]

    async def get_versions(self, keys: Sequence[tuple[str, int]]) -> list[SubjectVersion]:
        wanted = list(dict.fromkeys(common.batch_keys(keys)))
        if not wanted:
            return []
        subjects, numbers = [s for s, _ in wanted], [v for _, v in wanted]
        rows = await self._run(
            lambda conn: conn.fetch(
                f"SELECT {_V} FROM subject_versions "
                "WHERE (subject, version) IN (SELECT * FROM unnest($1::text[], $2::int[]))",
                subjects,
                numbers,
            )
        )
        return [common.version_from_row(row) for row in rows]

    # Schemas -----------------------------------------------------------------------------------------

    async def get_schema(self, schema_id: int) -> StoredSchema | None:
        if not common.could_exist(schema_id, common.MAX_SCHEMA_ID):
            return None
        return await self._run(lambda conn: _fetch_schema(conn, schema_id))

    async def get_schemas(self, schema_ids: Sequence[int]) -> list[StoredSchema]:
        wanted = common.batch_ids(schema_ids)
        if not wanted:
            return []
        rows = await self._run(
            lambda conn: conn.fetch(f"SELECT {_S} FROM schemas WHERE id = ANY($1::bigint[])", wanted)
        )
        return [common.schema_from_row(row) for row in rows]

    async def find_schema(self, fingerprint: str, format: SchemaFormat | None = None) -> StoredSchema | None:
        """The schema with this fingerprint; with `format`, only of that format (a JSON Schema and an Avro
        schema could in principle share a canonical text, and they are different schemas)."""
        if format is not None:
            fmt = common.check_format(format)
            return await self._run(lambda conn: _fetch_by_content(conn, fingerprint, fmt))
        row = await self._run(
            lambda conn: conn.fetchrow(
                f"SELECT {_S} FROM schemas WHERE fingerprint = $1 ORDER BY id LIMIT 1", fingerprint
            )
        )
        return None if row is None else common.schema_from_row(row)

    async def versions_of_schema(self, schema_id: int, include_deleted: bool = False) -> list[SubjectVersion]:
        where = "" if include_deleted else " AND NOT deleted"
        rows = await self._run(
            lambda conn: conn.fetch(
                f"SELECT {_V} FROM subject_versions WHERE schema_id = $1{where} ORDER BY subject, version",
                schema_id,
            )
        )
        return [common.version_from_row(row) for row in rows]

    # Change feed -------------------------------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        async def read(conn: Any) -> Snapshot:
            # REPEATABLE READ: every statement sees the same committed state, the one `seq` names.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                seq = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes")
                schema_rows = await conn.fetch(f"SELECT {_S} FROM schemas ORDER BY id")
                subject_rows = await conn.fetch(f"SELECT {_SUBJ} FROM subjects ORDER BY subject")
                version_rows = await conn.fetch(
                    f"SELECT {_V} FROM subject_versions ORDER BY subject, version"
                )
            return Snapshot(
                seq=seq,
                schemas=[common.schema_from_row(r) for r in schema_rows],
                subjects=[common.subject_from_row(r) for r in subject_rows],
                versions=[common.version_from_row(r) for r in version_rows],
            )

        return await self._run(read)

    async def changes(self, after_seq: int, limit: int = 1000) -> list[Change]:
        common.check_limit(limit)
        rows = await self._run(
            lambda conn: conn.fetch(
                "SELECT seq, kind, subject, version, schema_id, at FROM changes "
                "WHERE seq > $1 ORDER BY seq LIMIT $2",
                after_seq,
                limit,
            )
        )
        return [_change(row) for row in rows]

    async def latest_seq(self) -> int:
        """The newest change-feed sequence number (0 when the feed is empty)."""
        seq: int = await self._run(lambda conn: conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes"))
        return seq

    def _wake(self) -> None:
        self._notified.set()
        self._notified = asyncio.Event()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._wake()

    def _on_listener_lost(self, _conn: Any) -> None:
        # Waiters return (a change "may exist") and the next wait connects a new listener.
        self._listener = None
        self._wake()

    async def _ensure_listener(self) -> None:
        if self._pool is None:
            raise StoreUnavailableError("the PostgreSQL store is not open")
        async with self._listener_lock:
            if self._listener is not None and not self._listener.is_closed():
                return
            try:
                conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_SECONDS)
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
            except _UNAVAILABLE as error:
                raise StoreUnavailableError(f"PostgreSQL is unavailable: {error}") from error
            conn.add_termination_listener(self._on_listener_lost)
            self._listener = conn

    async def wait_for_changes(self, after_seq: int, timeout: float) -> None:  # noqa: ASYNC109 (the protocol's signature)
        # Listen before looking, so a change committed between the look and the wait still wakes us.
        await self._ensure_listener()
        notified = self._notified
        if await self.latest_seq() > after_seq:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(notified.wait(), timeout)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.fetchval("SELECT 1"))
