"""Keeps the index current: one full load from a store snapshot, then the change feed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import UTC

from kschema.api.index import RegistryIndex
from kschema.api.metrics import ApiMetrics
from kschema.api.settings import ApiSettings
from kschema.store import Change, RegistryStore, StoreError
from kschema.store.base import MAX_BATCH

log = logging.getLogger(__name__)


def _version_key(change: Change) -> tuple[str, int] | None:
    if change.kind == "version" and change.subject is not None and change.version is not None:
        return change.subject, change.version
    return None


def _names_row(change: Change) -> bool:
    """A change naming one row (a version, a schema): those are read together, `MAX_BATCH` at a time."""
    return _version_key(change) is not None or (change.kind == "schema" and change.schema_id is not None)


def _runs(changes: list[Change]) -> Iterator[list[Change]]:
    """The changes in order: consecutive ones naming a row together (at most `MAX_BATCH`), others alone."""
    run: list[Change] = []
    for change in changes:
        if run and (not _names_row(change) or len(run) == MAX_BATCH):
            yield run
            run = []
        if _names_row(change):
            run.append(change)
        else:
            yield [change]
    if run:
        yield run


def _missing_schema(schema_id: int) -> StoreError:
    return StoreError(f"schema {schema_id} is used by a version but missing from the store")


class FeedFollower:
    def __init__(
        self, store: RegistryStore, index: RegistryIndex, metrics: ApiMetrics, settings: ApiSettings
    ) -> None:
        self.store = store
        self.index = index
        self.metrics = metrics
        self.settings = settings
        self.first_load = asyncio.Event()

    async def run(self) -> None:
        """Follows the store until cancelled. Store failures are logged and retried; the index keeps
        serving what it has meanwhile."""
        while True:
            try:
                if not self.index.loaded:
                    await self.load()
                elif not await self.catch_up():
                    await self.store.wait_for_changes(self.index.seq, self.settings.feed_wait_seconds)
            except asyncio.CancelledError:
                raise
            except StoreError as e:
                self.metrics.feed_errors.inc()
                log.warning("Failed to read the store's change feed seq=%d error=%s", self.index.seq, e)
                await asyncio.sleep(self.settings.feed_retry_seconds)
            except Exception:
                self.metrics.feed_errors.inc()
                log.exception("Failed to apply the store's change feed seq=%d", self.index.seq)
                await asyncio.sleep(self.settings.feed_retry_seconds)

    async def load(self) -> None:
        snapshot = await self.store.snapshot()
        self.index.load(snapshot)
        self.metrics.snapshots.inc()
        self.metrics.feed_seq.set(snapshot.seq)
        self.metrics.feed_lag.set(0)
        self.first_load.set()
        log.info(
            "Loaded the index from a snapshot seq=%d schemas=%d versions=%d",
            snapshot.seq,
            len(snapshot.schemas),
            len(snapshot.versions),
        )

    async def catch_up(self) -> bool:
        """Applies pending changes; returns whether there were any."""
        changes = await self.store.changes(self.index.seq, self.settings.feed_batch)
        if len(changes) >= self.settings.feed_batch:
            # A long backlog (a bulk import, or this replica was cut off): one snapshot is cheaper than
            # re-reading every changed row.
            await self.load()
            return True
        for run in _runs(changes):
            if _names_row(run[0]):
                await self._apply_rows(run)
            else:
                await self._apply_other(run[0])
        return bool(changes)

    async def _apply_other(self, change: Change) -> None:
        if change.kind == "subject" and change.subject is not None:
            await self._refresh_subject(change.subject)
            self._advance(change)
        else:
            log.warning("Found an unknown change; reloading seq=%d kind=%s", change.seq, change.kind)
            await self.load()

    async def _apply_rows(self, run: list[Change]) -> None:
        """Version and schema changes, their rows read together (two reads, where one per change made a
        burst of registrations cost the follower a store round trip each). A version of a subject the
        index does not know yet brings its subject first, read before the rows, as one change at a time
        did: no row read here is older than one the index already has."""
        keys = [key for c in run if (key := _version_key(c)) is not None]
        for subject in dict.fromkeys(s for s, _ in keys if not self.index.has_subject(s)):
            await self._refresh_subject(subject)
        versions = {(v.subject, v.version): v for v in await self.store.get_versions(keys)} if keys else {}
        ids = [c.schema_id for c in run if c.kind == "schema" and c.schema_id is not None]
        ids += [v.schema_id for v in versions.values() if not self.index.has_schema(v.schema_id)]
        schemas = {s.id: s for s in await self.store.get_schemas(ids)} if ids else {}
        for change in run:
            if change.kind == "schema" and change.schema_id in schemas:
                self.index.put_schema(schemas[change.schema_id])
            elif (key := _version_key(change)) is not None and (found := versions.get(key)) is not None:
                if not self.index.has_schema(found.schema_id):
                    if found.schema_id not in schemas:
                        raise _missing_schema(found.schema_id)
                    self.index.put_schema(schemas[found.schema_id])
                self.index.put_version(found)
            self._advance(change)

    def _advance(self, change: Change) -> None:
        self.index.seq = change.seq
        self.metrics.feed_seq.set(change.seq)
        at = change.at if change.at.tzinfo is not None else change.at.replace(tzinfo=UTC)
        self.metrics.feed_lag.set(max(0.0, time.time() - at.timestamp()))

    async def _refresh_subject(self, subject: str) -> None:
        record = await self.store.get_subject(subject, include_deleted=True)
        if record is None:
            return
        # Deleting or restoring a subject touches all its versions; re-read them together.
        versions = await self.store.list_versions(subject, include_deleted=True)
        for v in versions:
            await self._ensure_schema(v.schema_id)
        self.index.put_subject(record)
        for v in versions:
            self.index.put_version(v)

    async def _ensure_schema(self, schema_id: int) -> None:
        if not self.index.has_schema(schema_id):
            stored = await self.store.get_schema(schema_id)
            if stored is None:
                raise _missing_schema(schema_id)
            self.index.put_schema(stored)
