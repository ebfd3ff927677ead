"""Projection of a Subject into a ConfigMap owned by it (its content: `rendering`; the Subject's status
fields that follow it: `subject_status`). The whole ConfigMap is computed from the store every time
(level-based), and concurrent requests for one subject coalesce."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kschema.kubeapi import Conflict, NotFound, Unprocessable
from kschema.model import LABEL_MANAGED_BY, LABEL_SUBJECT, SubjectSpec
from kschema.operator.blocked import Blocked, blocked_by_store
from kschema.operator.configmap_ownership import (
    MANAGED_BY,
    managed_fields_upgrade,
    owned_by,
    owner_reference,
)
from kschema.operator.kube import Kube
from kschema.operator.rendering import Projection, render
from kschema.operator.schema_cache import SchemaCache
from kschema.operator.subject_status import DELAY_SECONDS, Fields, SubjectStatus
from kschema.store import RegistryStore, StoredSchema, StoreError

logger = logging.getLogger(__name__)

CONFLICT_RETRIES = 5
# How long a projection waits for the registrations of its subject still in progress (a burst of versions
# applied together), so that they share one ConfigMap write: at most this much later than without them.
SETTLE_MAX_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ProjectionTarget:
    """The Subject resource a ConfigMap is projected for."""

    spec: SubjectSpec
    uid: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.spec.namespace, self.spec.resource_name)


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    requested: int = 0
    completed: int = 0
    result: Projection | None = None
    closed: bool = False  # the Subject is being deleted: no more writes
    # The ConfigMap name this process has applied: known to be ours, so the next apply needs no read.
    written: str | None = None
    # The digest of the last apply configuration written: the same one again is not re-sent, except by
    # the Subject's own reconcile (`tidy`), which puts back a ConfigMap someone changed or deleted.
    applied: str | None = None
    # Registrations of this subject's versions in progress; the Schemas expected to start one (named by
    # the Subject's reconcile); set when there are neither.
    registering: int = 0
    expected: set[str] = field(default_factory=set)
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    # The request count a projection had read when it last sent an apply, and for which target.
    sent: int = 0
    sent_for: ProjectionTarget | None = None

    def __post_init__(self) -> None:
        self.settled.set()

    @property
    def busy(self) -> bool:
        return bool(self.registering or self.expected)

    def update_settled(self) -> None:
        if self.busy:
            self.settled.clear()
        else:
            self.settled.set()


class Projector:
    """Writes ConfigMaps. One per process, created at start-up; per-subject locks keep the read-store /
    write-ConfigMap pairs of one subject in order, so a stale computation never overwrites a newer one."""

    def __init__(
        self,
        store: RegistryStore,
        kube: Kube,
        *,
        limit_bytes: int,
        field_manager: str,
        schemas: SchemaCache,
        status_delay: float = DELAY_SECONDS,
        settle_max: float = SETTLE_MAX_SECONDS,
    ) -> None:
        self._settle_max = settle_max
        self._store = store
        self._kube = kube
        self._limit = limit_bytes
        self._field_manager = field_manager
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._schemas = schemas
        self.status = SubjectStatus(kube, busy=self._busy, delay=status_delay)

    async def project(
        self, target: ProjectionTarget, *, tidy: bool = False, fresh: bool = False
    ) -> Projection | None:
        """Brings the ConfigMap in line with the store. Requests that arrive while a projection of the
        same subject runs are served by the next one, which reads the store after they were made.
        `tidy` also removes ConfigMaps this Subject projected under another name, unless it is `fresh`
        (never reconciled before: kopf's create). Returns None when projection is disabled or the
        Subject is being deleted.

        While other versions of the subject are being registered (see `registering`), or are expected to
        be (see `expect`), the projection waits for them, up to `settle_max` seconds: a burst of versions
        is one ConfigMap write (and one Subject status patch), not one per version. A tidy projection
        that finds a newer one already sent for the same target only tidies."""
        entry = self._entries.setdefault(target.key, _Entry())
        entry.requested += 1
        mine = entry.requested
        if entry.busy:
            try:
                async with asyncio.timeout(self._settle_max):
                    await entry.settled.wait()
            except TimeoutError:
                entry.expected.clear()  # late: later projections do not wait for them again
                entry.update_settled()
            await asyncio.sleep(0)  # the request of the registration that settled it comes right after
        async with entry.lock:
            if entry.closed:
                return None
            if entry.completed >= mine and entry.result is not None:
                if not tidy:
                    return entry.result
                if entry.sent >= mine and entry.sent_for == target:
                    # Written since this request from a store read after it: what the Subject's own
                    # reconcile would put back is there already.
                    if not fresh:
                        await self._delete_owned(target, keep=target.spec.config_map_name)
                    return entry.result
            started = entry.requested
            result = await self._project_once(target, entry, started, tidy=tidy, fresh=fresh)
            entry.completed = started
            entry.result = result
            if result is not None:
                self.status.want(target.key, status_fields(target, result))
            return result

    @contextlib.contextmanager
    def registering(self, target: ProjectionTarget, schema: str | None = None) -> Iterator[None]:
        """Marks a registration of one of the subject's versions (by the Schema named `schema`) as in
        progress: projections requested meanwhile wait for it (bounded by `settle_max`) and then serve it
        too."""
        entry = self._entries.setdefault(target.key, _Entry())
        entry.registering += 1
        if schema is not None:
            entry.expected.discard(schema)
        entry.update_settled()
        try:
            yield
        finally:
            entry.registering -= 1
            entry.update_settled()

    def expect(self, target: ProjectionTarget, schemas: Iterable[str]) -> None:
        """The Subject's reconcile names its Schemas that are about to register (waiting for it):
        projections wait for them as for registrations in progress (`registering`), so the Subject's
        own projection in a burst is the burst's one ConfigMap write instead of an early one of its own.
        A Schema that never starts a registration (refused before it) holds them only for `settle_max`."""
        entry = self._entries.setdefault(target.key, _Entry())
        entry.expected = set(schemas)
        entry.update_settled()

    def reopen(self, target: ProjectionTarget) -> None:
        entry = self._entries.get(target.key)
        if entry is not None:
            entry.closed = False

    async def remove(self, target: ProjectionTarget) -> None:
        """Deletes the Subject's ConfigMaps and stops projecting it until it is reconciled again."""
        entry = self._entries.setdefault(target.key, _Entry())
        async with entry.lock:
            entry.closed = True
            entry.result = None
            self.status.forget(target.key)
            await self._delete_owned(target, keep=None)
        self._entries.pop(target.key, None)

    async def close(self) -> None:
        """Writes the Subject statuses still waiting (on the way out, before the client closes)."""
        await self.status.close()

    # Internals ----------------------------------------------------------------------------------------

    def _busy(self, key: tuple[str, str]) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.busy

    async def compute(self, spec: SubjectSpec) -> Projection:
        try:
            versions = await self._store.list_versions(spec.name)
            stored = [(v, await self._stored(v.schema_id)) for v in versions]
        except StoreError as error:
            raise blocked_by_store(error) from error
        return render(
            spec.format, [(v, s.schema) for v, s in stored], {v.schema_id: s.contract for v, s in stored}
        )

    async def _stored(self, schema_id: int) -> StoredSchema:
        stored = await self._schemas.get(schema_id)
        if stored is None:
            raise Blocked("StoreError", f"schema id {schema_id} is missing from the store", temporary=True)
        return stored

    async def _project_once(
        self, target: ProjectionTarget, entry: _Entry, started: int, *, tidy: bool, fresh: bool
    ) -> Projection | None:
        spec = target.spec
        if not spec.projection.enabled:
            entry.written = None
            await self._delete_owned(target, keep=None)
            return None
        projection = await self.compute(spec)
        size = sum(len(k) + len(v.encode()) for k, v in projection.data.items())
        if size > self._limit:
            raise Blocked(
                "ProjectionTooLarge",
                f"the projected versions take {size} bytes, over the ConfigMap limit of {self._limit}; "
                "archive old versions or set spec.projection.enabled=false",
                temporary=False,
            )
        if await self._write(target, entry, projection, again=tidy):
            entry.sent, entry.sent_for = started, target
        if tidy and not fresh:
            # A Subject never reconciled before has projected nothing under another name (a list of the
            # namespace's ConfigMaps per Subject saved in a burst). Only a process stopped between the
            # write and its reconcile's status patch, and a rename before the next start, leaves one:
            # the next reconcile of the Subject (every start resumes it) removes it.
            await self._delete_owned(target, keep=spec.config_map_name)
        return projection

    def _desired(self, target: ProjectionTarget, projection: Projection) -> dict[str, Any]:
        """The apply configuration: every field the operator manages, nothing else."""
        spec = target.spec
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": spec.config_map_name,
                "namespace": spec.namespace,
                "labels": {LABEL_SUBJECT: spec.resource_name, LABEL_MANAGED_BY: MANAGED_BY},
                "ownerReferences": [owner_reference(spec.resource_name, target.uid)],
            },
            "data": projection.data,
        }

    async def _write(
        self, target: ProjectionTarget, entry: _Entry, projection: Projection, *, again: bool
    ) -> bool:
        """Server-side apply of the whole projection (our field manager, forced): fields we stop
        applying (a version archived) are removed, fields others added are left alone, and no read
        comes first. The first write of a name in this process reads the ConfigMap once, to refuse
        one that is not ours and to take over the fields an earlier release wrote with updates. The
        configuration this process applied last is not sent again (a burst's projections often find
        nothing new), unless `again`. Whether it was sent."""
        spec = target.spec
        desired = self._desired(target, projection)
        digest = hashlib.sha256(json.dumps(desired, sort_keys=True).encode()).hexdigest()
        if not again and entry.written == spec.config_map_name and entry.applied == digest:
            return False
        entry.applied = None
        if entry.written != spec.config_map_name:
            await self._adopt(target)
        await self._kube.apply_config_map(spec.namespace, spec.config_map_name, desired, self._field_manager)
        entry.written, entry.applied = spec.config_map_name, digest
        return True

    async def _adopt(self, target: ProjectionTarget) -> None:
        spec = target.spec
        for _ in range(CONFLICT_RETRIES):
            try:
                existing = await self._kube.core.read_namespaced_config_map(
                    spec.config_map_name, spec.namespace
                )
            except NotFound:
                return  # the apply creates it
            if not owned_by(existing, spec.resource_name, target.uid):
                raise Blocked(
                    "ConfigMapConflict",
                    f"ConfigMap {spec.config_map_name} exists and is not managed by this Subject; "
                    "set spec.projection.configMapName to another name",
                    temporary=False,
                )
            upgrade = managed_fields_upgrade(existing, self._field_manager)
            if upgrade is None:
                return
            try:
                await self._kube.json_patch_config_map(spec.namespace, spec.config_map_name, upgrade)
                logger.info(
                    "Took over a ConfigMap's fields for server-side apply namespace=%s name=%s",
                    spec.namespace,
                    spec.config_map_name,
                )
                return
            except (Conflict, NotFound, Unprocessable):  # changed or deleted under us: read again
                continue
        raise Blocked(
            "ConfigMapConflict",
            f"ConfigMap {spec.config_map_name} kept changing while written",
            temporary=True,
        )

    async def _delete_owned(self, target: ProjectionTarget, keep: str | None) -> None:
        spec = target.spec
        listed = await self._kube.core.list_namespaced_config_map(
            spec.namespace,
            label_selector=f"{LABEL_SUBJECT}={spec.resource_name},{LABEL_MANAGED_BY}={MANAGED_BY}",
        )
        for item in listed.items:
            if item.metadata.name == keep or not owned_by(item, spec.resource_name, target.uid):
                continue
            try:
                await self._kube.core.delete_namespaced_config_map(item.metadata.name, spec.namespace)
                logger.info("Deleted ConfigMap namespace=%s name=%s", spec.namespace, item.metadata.name)
            except NotFound:
                pass


def status_fields(target: ProjectionTarget, projection: Projection) -> Fields:
    """The Subject's status fields that follow a projection of it."""
    return (projection.latest_version, projection.version_count, target.spec.config_map_name)
