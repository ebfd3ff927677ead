"""Keeps the index current: one full load from a store snapshot, then the change feed."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC

from kschema.api.index import RegistryIndex
from kschema.api.metrics import ApiMetrics
from kschema.api.settings import ApiSettings
from kschema.store import Change, RegistryStore, StoreError

log = logging.getLogger(__name__)


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
        for change in changes:
            await self.apply(change)
        return bool(changes)

    async def apply(self, change: Change) -> None:
        if change.kind == "schema" and change.schema_id is not None:
            stored = await self.store.get_schema(change.schema_id)
            if stored is not None:
                self.index.put_schema(stored)
        elif change.kind == "subject" and change.subject is not None:
            await self._refresh_subject(change.subject)
        elif change.kind == "version" and change.subject is not None and change.version is not None:
            if not self.index.has_subject(change.subject):
                await self._refresh_subject(change.subject)
            found = await self.store.get_version(change.subject, change.version, include_deleted=True)
            if found is not None:
                await self._ensure_schema(found.schema_id)
                self.index.put_version(found)
        else:
            log.warning("Found an unknown change; reloading seq=%d kind=%s", change.seq, change.kind)
            await self.load()
            return
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
                raise StoreError(f"schema {schema_id} is used by a version but missing from the store")
            self.index.put_schema(stored)
