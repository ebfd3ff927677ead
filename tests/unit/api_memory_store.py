"""An in-memory `RegistryStore` test double for unit tests of the read API alone (the real backends are
exercised by the integration tests). It keeps the store's contract that matters to a reader: global IDs
by content, tombstones instead of deletes, and a change feed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.test_utils import TestClient

from kschema.api import ApiSettings, create_app
from kschema.api.state import INDEX
from kschema.compat import CompatibilityLevel
from kschema.formats import Reference, ResolvedReference, SchemaFormat, parse_schema
from kschema.model import SchemaState
from kschema.store import (
    Change,
    NewVersion,
    Snapshot,
    StoredSchema,
    StoreUnavailableError,
    SubjectRecord,
    SubjectVersion,
    VersionConflictError,
)
from tests.harness.api_server import ApiTestServer


class MemoryStore:
    def __init__(self) -> None:
        self.schemas: dict[int, StoredSchema] = {}
        self.subjects: dict[str, SubjectRecord] = {}
        self.versions: dict[tuple[str, int], SubjectVersion] = {}
        self.feed: list[Change] = []
        self.failures_left = 0  # reads that raise StoreUnavailableError before the store "comes back"
        self.snapshot_gate: asyncio.Event | None = None  # when set, snapshot() waits for it
        self.batched_reads = 0  # calls of get_versions and get_schemas
        self._changed = asyncio.Event()

    @property
    def seq(self) -> int:
        return self.feed[-1].seq if self.feed else 0

    def _append(
        self, kind: str, subject: str | None = None, version: int | None = None, sid: int | None = None
    ) -> None:
        self.feed.append(Change(self.seq + 1, kind, subject, version, sid, datetime.now(UTC)))
        self._changed.set()
        self._changed = asyncio.Event()

    def _fail_if_down(self) -> None:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise StoreUnavailableError("the test store is down")

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def upsert_subject(self, record: SubjectRecord) -> SubjectRecord:
        self.subjects[record.subject] = record
        self._append("subject", record.subject)
        return record

    async def delete_subject(self, subject: str, namespace: str) -> None:
        for key, v in list(self.versions.items()):
            if key[0] == subject and not v.deleted:
                self.versions[key] = replace(v, deleted=True)
                self._append("version", subject, key[1], v.schema_id)
        self.subjects[subject] = replace(self.subjects[subject], deleted=True)
        self._append("subject", subject)

    async def get_subject(self, subject: str, include_deleted: bool = False) -> SubjectRecord | None:
        self._fail_if_down()
        found = self.subjects.get(subject)
        return found if found is not None and (include_deleted or not found.deleted) else None

    async def list_subjects(self, include_deleted: bool = False) -> list[SubjectRecord]:
        return [s for s in self.subjects.values() if include_deleted or not s.deleted]

    async def register(self, new: NewVersion) -> SubjectVersion:
        existing = self.versions.get((new.subject, new.version))
        content = next((s for s in self.schemas.values() if s.fingerprint == new.fingerprint), None)
        if existing is not None and (content is None or content.id != existing.schema_id):
            raise VersionConflictError("version exists with other content", "version")
        if content is None:
            sid = new.pinned_id or max(self.schemas, default=0) + 1
            content = StoredSchema(
                sid, new.format, new.schema, new.canonical, new.fingerprint, new.references
            )
            self.schemas[sid] = content
            self._append("schema", sid=sid)
        if new.subject not in self.subjects:
            await self.upsert_subject(
                SubjectRecord(new.subject, new.namespace, new.format, CompatibilityLevel.BACKWARD, False)
            )
        v = SubjectVersion(new.subject, new.version, content.id, new.state, False, new.namespace, new.sunset)
        self.versions[(new.subject, new.version)] = v
        self._append("version", new.subject, new.version, content.id)
        return v

    async def set_state(
        self, subject: str, version: int, state: SchemaState, sunset: str | None = None
    ) -> None:
        v = self.versions[(subject, version)]
        self.versions[(subject, version)] = replace(v, state=state, sunset=sunset)
        self._append("version", subject, version, v.schema_id)

    async def delete_version(self, subject: str, version: int) -> None:
        v = self.versions[(subject, version)]
        self.versions[(subject, version)] = replace(v, deleted=True)
        self._append("version", subject, version, v.schema_id)

    async def get_version(
        self, subject: str, version: int, include_deleted: bool = False
    ) -> SubjectVersion | None:
        self._fail_if_down()
        found = self.versions.get((subject, version))
        return found if found is not None and (include_deleted or not found.deleted) else None

    async def list_versions(self, subject: str, include_deleted: bool = False) -> list[SubjectVersion]:
        self._fail_if_down()
        found = [
            v for (s, _), v in self.versions.items() if s == subject and (include_deleted or not v.deleted)
        ]
        return sorted(found, key=lambda v: v.version)

    async def get_versions(self, keys: Sequence[tuple[str, int]]) -> list[SubjectVersion]:
        self._fail_if_down()
        self.batched_reads += 1
        return [self.versions[key] for key in dict.fromkeys(keys) if key in self.versions]

    async def get_schema(self, schema_id: int) -> StoredSchema | None:
        self._fail_if_down()
        return self.schemas.get(schema_id)

    async def get_schemas(self, schema_ids: Sequence[int]) -> list[StoredSchema]:
        self._fail_if_down()
        self.batched_reads += 1
        return [self.schemas[i] for i in dict.fromkeys(schema_ids) if i in self.schemas]

    async def find_schema(self, fingerprint: str) -> StoredSchema | None:
        return next((s for s in self.schemas.values() if s.fingerprint == fingerprint), None)

    async def versions_of_schema(self, schema_id: int, include_deleted: bool = False) -> list[SubjectVersion]:
        return [
            v
            for v in self.versions.values()
            if v.schema_id == schema_id and (include_deleted or not v.deleted)
        ]

    async def snapshot(self) -> Snapshot:
        if self.snapshot_gate is not None:
            await self.snapshot_gate.wait()
        self._fail_if_down()
        return Snapshot(
            self.seq, list(self.schemas.values()), list(self.subjects.values()), list(self.versions.values())
        )

    async def changes(self, after_seq: int, limit: int = 1000) -> list[Change]:
        self._fail_if_down()
        return [c for c in self.feed if c.seq > after_seq][:limit]

    # The parameter name is the store Protocol's.
    async def wait_for_changes(self, after_seq: int, timeout: float) -> None:  # noqa: ASYNC109
        if self.seq > after_seq:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def ping(self) -> None:
        self._fail_if_down()

    # Test helpers ------------------------------------------------------------------------------------
    def resolve(self, references: tuple[Reference, ...]) -> tuple[ResolvedReference, ...]:
        out = []
        for ref in references:
            target = self.schemas[self.versions[(ref.subject, ref.version)].schema_id]
            out.append(ResolvedReference(ref, target.schema, self.resolve(target.references)))
        return tuple(out)

    async def add(
        self,
        subject: str,
        version: int,
        schema: str,
        fmt: SchemaFormat = SchemaFormat.AVRO,
        references: tuple[Reference, ...] = (),
        state: SchemaState = SchemaState.ACTIVE,
        sunset: str | None = None,
        namespace: str = "team-a",
    ) -> SubjectVersion:
        """Registers a version the way the operator does: parsed, with the parser's canonical form and
        fingerprint."""
        parsed = parse_schema(fmt, schema, self.resolve(references))
        return await self.register(
            NewVersion(
                subject=subject,
                version=version,
                namespace=namespace,
                format=fmt,
                schema=schema,
                canonical=parsed.canonical,
                fingerprint=parsed.fingerprint,
                references=references,
                state=state,
                sunset=sunset,
            )
        )


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Waits until `condition()` holds, yielding to the event loop between checks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def api_client(
    store: MemoryStore, wait_ready: bool = True, global_compatibility: CompatibilityLevel | None = None
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The read API over `store` behind aiohttp's test server; waits for its first load."""
    settings = ApiSettings(feed_wait_seconds=0.05, feed_retry_seconds=0.01)
    if global_compatibility is not None:
        settings = replace(settings, global_compatibility=global_compatibility)
    app = create_app(settings, store)
    async with TestClient(ApiTestServer(app)) as client:
        if wait_ready:
            await wait_for(lambda: app[INDEX].loaded)
        yield client


async def caught_up(client: TestClient[web.Request, web.Application], store: MemoryStore) -> None:
    """Waits until the API's index has applied everything the store has recorded."""
    index = client.app[INDEX]
    await wait_for(lambda: index.loaded and index.seq >= store.seq)
