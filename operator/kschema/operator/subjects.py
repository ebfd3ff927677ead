"""Subject handlers: upsert the subject (its namespace owns it), project its versions into a ConfigMap,
nudge its Schemas when it appears or goes away, and soft-delete it on deletion."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import kopf

from kschema.kubeapi import KubeApiError, NotFound
from kschema.model import (
    GROUP,
    SUBJECT_KIND,
    SUBJECT_PLURAL,
    VERSION,
    SpecError,
    SubjectSpec,
    subject_from_body,
)
from kschema.operator.blocked import Blocked, blocked_by_store
from kschema.operator.conditions import Condition
from kschema.operator.configmaps import ProjectionTarget, status_fields
from kschema.operator.context import (
    SUBJECT_UID_ANNOTATION,
    OperatorContext,
    api_blocked,
    fail,
    object_ref,
    refuse_invalid_spec,
    register_kind,
    release_blocked,
    set_status,
)
from kschema.operator.events import Note, ObjectRef
from kschema.operator.indexes import (
    SCHEMAS_INDEX,
    SUBJECTS_INDEX,
    declared_versions,
    index_subject,
    schema_entries,
)
from kschema.operator.registration import (
    soft_delete_subject,
    soft_delete_version,
    upsert_subject,
)
from kschema.operator.rendering import Projection
from kschema.operator.subject_status import as_patch
from kschema.store import StoreError, SubjectVersion

logger = logging.getLogger(__name__)


async def nudge_schemas(
    memo: OperatorContext,
    schemas: kopf.Index[Any, Any],
    namespace: str,
    name: str,
    uid: str,
    *,
    everyone: bool,
    upserted: tuple[str, int] | None = None,
) -> int:
    """Makes this Subject's Schemas reconcile again by setting the annotation to `uid` ("" when the
    Subject goes away). Only those not Ready, unless `everyone`: the others have nothing to catch up.
    `upserted` (registry subject, tick of `StoreReads.upserted`) also spares the Schemas whose reconcile
    is still to come or read the store after that upsert: when many are created at once, most are."""
    count = 0
    for entry in schema_entries(schemas, namespace, name):
        if entry.nudged_uid == uid or (entry.ready and not everyone):
            continue
        if upserted is not None and not memo.store_reads.may_be_waiting(namespace, entry.name, *upserted):
            continue
        try:
            await memo.kube.annotate_schema(namespace, entry.name, {SUBJECT_UID_ANNOTATION: uid})
            count += 1
        except NotFound:
            pass
    return count


def _ready_message(spec: SubjectSpec, projection: Projection | None) -> str:
    """No version count here: Schemas registered after this reconcile change it without a new Subject
    reconcile, and a stale count would show as the health message in Argo CD. `status.versionCount` and
    `status.latestVersion` (the printer columns) are kept current by every projection instead."""
    if projection is None:
        return f"subject {spec.name!r} is registered; projection is disabled"
    return (
        f"subject {spec.name!r} is registered; "
        f"its versions are projected into ConfigMap {spec.config_map_name}"
    )


async def reconcile(
    body: kopf.Body,
    meta: kopf.Meta,
    namespace: str | None,
    name: str,
    patch: kopf.Patch,
    retry: int,
    reason: str,
    memo: OperatorContext,
    **kwargs: Any,
) -> None:
    """Create, update and resume: the same level-based reconcile."""
    namespace = namespace or ""  # both kinds are namespaced
    schemas_by_subject: kopf.Index[Any, Any] = kwargs[SCHEMAS_INDEX]
    try:
        spec = subject_from_body(body, memo.settings.default_compatibility)
    except SpecError as error:
        memo.note(Note(object_ref(SUBJECT_KIND, body), "Warning", "Refused", f"Refused: {error}"))
        refuse_invalid_spec(patch, body, error)
    target = ProjectionTarget(spec, str(meta.get("uid")))
    try:
        async with memo.turn(SUBJECT_KIND), memo.subject_locks(spec.name):
            try:
                await upsert_subject(memo.store, spec)
            except BaseException:
                memo.subject_arrivals.attempted(namespace, name)
                raise
            tick = memo.store_reads.upserted()
        # The Schemas waiting for it (applied before it: a Schema whose name sorts before its Subject's in
        # an Argo CD sync, a file listing the Schemas first) register now; its projection waits for them
        # (bounded) and is their one ConfigMap write. Outside the place: the wait takes none from the next
        # Subject.
        memo.projector.expect(target, memo.subject_arrivals.waiting(namespace, name))
        memo.subject_arrivals.arrived(namespace, name)
        memo.projector.reopen(target)
        projection = await memo.projector.project(target, tidy=True, fresh=reason == kopf.Reason.CREATE)
        await nudge_schemas(
            memo,
            schemas_by_subject,
            namespace,
            name,
            target.uid,
            everyone=False,
            upserted=(spec.name, tick),
        )
    except (KubeApiError, Blocked) as error:
        blocked = api_blocked(error) if isinstance(error, KubeApiError) else error
        set_status(
            patch, body, [Condition("Ready", False, blocked.reason, blocked.message)], subject=spec.name
        )
        if not blocked.temporary:  # an API error is always retried
            memo.note(
                Note(object_ref(SUBJECT_KIND, body), "Warning", "Refused", f"Refused: {blocked.message}")
            )
        fail(blocked, retry, memo.settings)
    # The projection's status fields go into this patch, written anyway: no patch of their own for the
    # projection of a Subject created ahead of its Schemas. (A later projection's fields are newer, and
    # written by the projector's status writer, which also puts back one this patch overwrote late.)
    projected: dict[str, Any] = {}
    if projection is not None:
        fields = status_fields(target, projection)
        memo.projector.status.reported(target.key, fields)
        projected = as_patch(fields)
    set_status(
        patch,
        body,
        [Condition("Ready", True, "Registered", _ready_message(spec, projection))],
        subject=spec.name,
        transferTo=spec.transfer_to,
        **projected,
    )
    logger.info("Reconciled Subject namespace=%s name=%s subject=%s", namespace, name, spec.name)


async def release(
    body: kopf.Body,
    meta: kopf.Meta,
    namespace: str | None,
    name: str,
    retry: int,
    runtime: timedelta,
    memo: OperatorContext,
    **kwargs: Any,
) -> None:
    """Deletion: soft-delete the subject (IDs keep resolving), remove its ConfigMap, and tell its
    Schemas. Retries while the store is down, up to `deletion_timeout` (see OperatorSettings)."""
    namespace = namespace or ""  # both kinds are namespaced
    schemas_by_subject: kopf.Index[Any, Any] = kwargs[SCHEMAS_INDEX]
    try:
        spec = subject_from_body(body, memo.settings.default_compatibility)
    except SpecError:
        return  # never registered anything
    target = ProjectionTarget(spec, str(meta.get("uid")))
    try:
        async with memo.subject_locks(spec.name):
            ids = await _live_ids(memo, spec.name)
            memo.subject_arrivals.left(namespace, name)
            await soft_delete_subject(memo.store, spec.name, spec.namespace)
        await memo.projector.remove(target)
        await nudge_schemas(memo, schemas_by_subject, namespace, name, "", everyone=True)
    except KubeApiError as error:
        release_blocked(api_blocked(error), "subject", retry, runtime, memo, object_ref(SUBJECT_KIND, body))
        return
    except Blocked as blocked:
        release_blocked(blocked, "subject", retry, runtime, memo, object_ref(SUBJECT_KIND, body))
        if not blocked.temporary:  # e.g. another namespace owns the subject: nothing of ours to delete
            await memo.projector.remove(target)
        return
    staying = [e.name for e in schema_entries(schemas_by_subject, namespace, name) if not e.deleting]
    memo.note(_deleted_note(object_ref(SUBJECT_KIND, body), spec.name, ids, staying))
    logger.info("Deleted Subject namespace=%s name=%s subject=%s", namespace, name, spec.name)


async def _live_ids(memo: OperatorContext, subject: str) -> list[int]:
    try:
        # Deleted versions too: Argo CD may prune the Schemas first, and their IDs resolve all the same.
        return [v.schema_id for v in await memo.store.list_versions(subject, include_deleted=True)]
    except StoreError as error:
        raise blocked_by_store(error) from error


def _deleted_note(where: ObjectRef, subject: str, ids: list[int], staying: list[str]) -> Note:
    shown = ", ".join(str(i) for i in ids[:10]) + (", …" if len(ids) > 10 else "")
    message = f"Subject {subject!r} soft-deleted; " + (
        f"ID{'s' if len(ids) > 1 else ''} {shown} still resolve{'' if len(ids) > 1 else 's'}"
        if ids
        else "it had no versions"
    )
    if not staying:
        return Note(where, "Normal", "SubjectDeleted", message)
    names = ", ".join(staying[:5]) + (" …" if len(staying) > 5 else "")
    return Note(
        where,
        "Warning",
        "SubjectDeleted",
        f"{message}; {len(staying)} Schema(s) still refer to it and report Ready=False "
        f"until deleted: {names}",
    )


async def resync(
    body: kopf.Body, meta: kopf.Meta, namespace: str | None, memo: OperatorContext, **kwargs: Any
) -> None:
    """Every `resync_interval`, per Subject: `sweep` the versions no Schema declares any more, then put a
    Schema's `status.id` right when it no longer names the ID the store holds for its version. Anyone
    allowed to write the status subresource can change it, and no reconcile follows a status change:
    clients reading IDs from the status must not be misled for longer than one resync interval. Only
    registered Schemas (Ready for their current generation) are compared; the others are their
    reconcile's. One timer per Subject and one store read for all its Schemas, instead of a timer task
    per Schema."""
    namespace = namespace or ""
    if meta.get("deletionTimestamp"):
        return
    try:
        spec = subject_from_body(body, memo.settings.default_compatibility)
    except SpecError:
        return
    try:
        stored = {v.version: v for v in await memo.store.list_versions(spec.name, include_deleted=True)}
    except StoreError as error:
        logger.info("Skipped a status resync namespace=%s subject=%s error=%s", namespace, spec.name, error)
        return
    await sweep(memo, namespace, spec, str(meta.get("uid")), stored, kwargs)
    entries = [
        e for e in schema_entries(kwargs[SCHEMAS_INDEX], namespace, spec.resource_name) if e.registration
    ]
    for entry in entries:
        assert entry.registration is not None
        found = stored.get(entry.registration.version)
        if found is None or found.deleted:
            continue
        was = entry.registration.status_id
        if was == found.schema_id and entry.registration.registry_subject == spec.name:
            continue
        try:
            await memo.kube.patch_schema_status(
                namespace, entry.name, {"id": found.schema_id, "registrySubject": spec.name}
            )
        except NotFound:
            continue
        except KubeApiError as error:
            logger.info("Skipped a status resync namespace=%s name=%s error=%s", namespace, entry.name, error)
            continue
        logger.warning(
            "Restored a Schema's status namespace=%s name=%s id=%s was=%r",
            namespace,
            entry.name,
            found.schema_id,
            was,
        )


async def sweep(
    memo: OperatorContext,
    namespace: str,
    spec: SubjectSpec,
    uid: str,
    stored: dict[int, SubjectVersion],
    indexes: dict[str, Any],
) -> None:
    """Soft-deletes the versions of the subject that no Schema declares any more, and re-projects it.
    Schemas hold no finalizer: their deletion is handled from the DELETED event as they go, and this
    catches the ones the operator did not see (deleted while it was not running) or could not finish (the
    store was down then). A version is registered only after its Schema is in the index, so one that is
    live in the store and missing from the index was deleted. Only the owning namespace's subject is
    swept, and the index is read again under the subject's lock."""
    live = {version for version, v in stored.items() if not v.deleted and v.namespace == namespace}
    subjects, schemas = indexes[SUBJECTS_INDEX], indexes[SCHEMAS_INDEX]
    if not live - declared_versions(subjects, schemas, namespace, spec.name):
        return
    swept: list[int] = []
    try:
        async with memo.subject_locks(spec.name):
            for version in sorted(live - declared_versions(subjects, schemas, namespace, spec.name)):
                await soft_delete_version(memo.store, spec.name, version)
                swept.append(version)
        if swept:
            await memo.projector.project(ProjectionTarget(spec, uid))
    except (Blocked, KubeApiError) as error:
        logger.warning("Stopped a sweep namespace=%s subject=%s error=%s", namespace, spec.name, error)
    if not swept:
        return
    listed = ", ".join(str(v) for v in swept)
    message = (
        f"Soft-deleted version(s) {listed} of {spec.name}: no Schema declares them any more (deleted "
        "while the operator could not handle it); their IDs still resolve"
    )
    memo.note(
        Note(
            ObjectRef(SUBJECT_KIND, namespace, spec.resource_name, uid), "Warning", "VersionDeleted", message
        )
    )
    logger.warning("Swept versions namespace=%s subject=%s versions=%s", namespace, spec.name, listed)


def register(registry: kopf.OperatorRegistry, *, deletion_timeout: float, resync_interval: float) -> None:
    register_kind(
        registry,
        SUBJECT_PLURAL,
        SUBJECTS_INDEX,
        index_subject,
        reconcile,
        release,
        deletion_timeout=deletion_timeout,
    )
    kopf.timer(
        GROUP,
        VERSION,
        SUBJECT_PLURAL,
        registry=registry,
        id="resync",
        interval=resync_interval,
        initial_delay=resync_interval,
    )(resync)
