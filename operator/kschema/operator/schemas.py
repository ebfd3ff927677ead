"""Schema handlers: register the version in the store (ID assigned or pinned, references resolved from
the store), keep its state in line with `spec.state`, re-project its Subject, and soft-delete the version
when the resource is deleted."""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from typing import Any

import kopf

from kschema.kubeapi import KubeApiError
from kschema.model import (
    FINALIZER,
    GROUP,
    SCHEMA_KIND,
    SCHEMA_PLURAL,
    SUBJECT_KIND,
    VERSION,
    SchemaSpec,
    SchemaState,
    SpecError,
    schema_from_body,
)
from kschema.operator.blocked import Blocked
from kschema.operator.conditions import Condition
from kschema.operator.configmaps import ProjectionTarget
from kschema.operator.context import (
    OperatorContext,
    api_blocked,
    fail,
    object_ref,
    refuse_invalid_spec,
    register_kind,
    release_blocked,
    set_status,
)
from kschema.operator.diffbase import DIGEST_KEY
from kschema.operator.events import Note, ObjectRef
from kschema.operator.indexes import (
    SCHEMAS_INDEX,
    SUBJECTS_INDEX,
    SubjectEntry,
    index_schema,
    subject_entry,
)
from kschema.operator.registration import soft_delete_version
from kschema.operator.rendering import Projection
from kschema.operator.schema_versions import NOT_CHECKED, VersionWork, finish_deferred, status_snapshot
from kschema.store import StoreError

logger = logging.getLogger(__name__)

SUBJECT_WAIT_SECONDS = 3.0  # how long a Schema waits for a missing Subject before it reports it
# ... and for a Subject whose watch event has arrived but whose reconcile has not registered it yet
SUBJECT_PENDING_WAIT_SECONDS = 30.0


async def _registered_subject(memo: OperatorContext, subject: SubjectEntry) -> bool:
    """Whether the indexed Subject is registered in the store (its reconcile has run)."""
    if subject.spec is None:
        return False
    if memo.subject_arrivals.seen(subject.spec.namespace, subject.spec.resource_name):
        return True
    try:
        record = await memo.store.get_subject(subject.spec.name)
    except StoreError:
        return True  # the registration below reports the store's state
    return record is not None and not record.deleted


async def _arrived_subject(
    memo: OperatorContext, subjects_by_name: kopf.Index[Any, Any], namespace: str, name: str, schema: str
) -> SubjectEntry | None:
    """The Schema's Subject from the index, waiting a moment for it when it is not registered yet: applied
    together with its Schemas, the Subject is usually only moments behind. Longer when its watch event
    has arrived (its reconcile is coming, only later in a burst) than when nothing is known of it."""
    subject = subject_entry(subjects_by_name, namespace, name)
    if subject is not None and (subject.deleting or await _registered_subject(memo, subject)):
        return subject
    if subject is None:
        await memo.subject_arrivals.wait(namespace, name, SUBJECT_WAIT_SECONDS, schema)
        subject = subject_entry(subjects_by_name, namespace, name)
        if subject is None or subject.deleting or await _registered_subject(memo, subject):
            return subject
    if subject.spec is not None:
        await memo.subject_arrivals.wait(namespace, name, SUBJECT_PENDING_WAIT_SECONDS, schema)
    return subject_entry(subjects_by_name, namespace, name)


async def reconcile(
    body: kopf.Body,
    namespace: str | None,
    name: str,
    patch: kopf.Patch,
    retry: int,
    memo: OperatorContext,
    **kwargs: Any,
) -> None:
    """Create, update (state changes, Subject nudges) and resume: the same level-based reconcile."""
    namespace = namespace or ""  # both kinds are namespaced
    memo.store_reads.started(namespace, name)  # before the index lookup below: see StoreReads
    subjects_by_name: kopf.Index[Any, Any] = kwargs[SUBJECTS_INDEX]
    try:
        spec = schema_from_body(body)
    except SpecError as error:
        memo.note(Note(object_ref(SCHEMA_KIND, body), "Warning", "Refused", f"Refused: {error}"))
        refuse_invalid_spec(patch, body, error, NOT_CHECKED)
    subject = await _arrived_subject(memo, subjects_by_name, namespace, spec.subject, name)
    if subject is None or subject.deleting or subject.spec is None:
        # Not retried: the Subject's own reconcile nudges its Schemas when it appears.
        reason, message = (
            "SubjectNotFound",
            f"Subject {spec.subject!r} does not exist in namespace {namespace}",
        )
        if subject is not None and not subject.deleting:
            reason, message = "SubjectInvalid", f"Subject {spec.subject!r} has an invalid spec"
        set_status(patch, body, [Condition("Ready", False, reason, message), NOT_CHECKED])
        return
    target = ProjectionTarget(subject.spec, subject.uid)
    here = object_ref(SCHEMA_KIND, body)
    subject_ref = ObjectRef(SUBJECT_KIND, namespace, subject.spec.resource_name, subject.uid)
    # Said before the wait for a place: the store is read after it, so it sees every upsert made until now.
    memo.store_reads.read(namespace, name, subject.spec.name)
    work = VersionWork(memo, spec, target, here, subject_ref)
    new = kwargs.get("new")  # kopf's essence of the object: its digest (see diffbase)
    if isinstance(new, dict) and memo.deferrals.should_defer(here.uid):
        # kopf's processing of the object ends here; the task writes the status and the digest.
        digest = str(new[DIGEST_KEY])
        finish = functools.partial(finish_deferred, work, status_snapshot(body), digest)
        memo.deferrals.defer(here.uid, digest, finish)
        return
    with memo.deferrals.inline():
        try:
            conditions, fields = await work.register()
            set_status(patch, body, conditions, **fields)
            await work.project()
        except KubeApiError as error:
            fail(api_blocked(error), retry, memo.settings)
        except Blocked as blocked:
            set_status(patch, body, work.refused(blocked))
            fail(blocked, retry, memo.settings)
    logger.debug("Reconciled Schema namespace=%s name=%s id=%s", namespace, name, fields.get("id"))


def held(meta: kopf.Meta, **_: Any) -> bool:
    """Whether the Schema carries the finalizer, as earlier releases put on registered Schemas: kopf
    releases it through `release` and takes it off. The operator adds it to no Schema: a Schema's deletion
    only soft-deletes its version and re-projects, which the DELETED event (`release_unheld`) does as the
    object goes, and the Subject's resync does for deletions the operator did not see (see
    `subjects.sweep`). Without a finalizer a reconcile is one write, to the status."""
    return FINALIZER in (meta.get("finalizers") or ())


def _deleted_note(
    where: ObjectRef,
    registry_subject: str,
    spec: SchemaSpec,
    schema_id: object,
    projection: Projection | None,
) -> Note:
    """What the deletion did, and what clients asking for the latest version get now (a Warning when
    that changed, as the webhook warns on DELETE)."""
    message = f"Soft-deleted version {spec.version} of {registry_subject}"
    if isinstance(schema_id, int):
        message += f"; ID {schema_id} still resolves"
    if projection is None:
        return Note(where, "Normal", "VersionDeleted", message)
    latest = projection.latest_version
    if latest is None:
        return Note(where, "Warning", "VersionDeleted", message + "; no version is left to serve as latest")
    if latest < spec.version and spec.state in (SchemaState.ACTIVE, SchemaState.DEPRECATED):
        message += f"; clients asking for the latest version now get version {latest}"
        return Note(where, "Warning", "VersionDeleted", message)
    return Note(where, "Normal", "VersionDeleted", message)


async def release(
    body: kopf.Body,
    status: kopf.Status,
    namespace: str | None,
    name: str,
    retry: int,
    runtime: timedelta,
    memo: OperatorContext,
    **kwargs: Any,
) -> None:
    """Deletion soft-deletes the version: listings hide it, its ID keeps resolving."""
    namespace = namespace or ""  # both kinds are namespaced
    memo.store_reads.forget(namespace, name)
    # A deferred reconcile still pending would register the version after this soft-delete.
    await memo.deferrals.cancel(str(body.metadata.uid))
    subjects_by_name: kopf.Index[Any, Any] = kwargs[SUBJECTS_INDEX]
    try:
        spec = schema_from_body(body)
    except SpecError:
        return  # never registered
    subject = subject_entry(subjects_by_name, namespace, spec.subject)
    registry_subject = subject.spec.name if subject is not None and subject.spec is not None else None
    # With the Subject gone, the status says where the version was registered (its deletion already
    # soft-deleted every version; deleting again is a no-op).
    registry_subject = registry_subject or status.get("registrySubject")
    if not isinstance(registry_subject, str):
        return
    projection: Projection | None = None
    try:
        async with memo.subject_locks(registry_subject):
            await soft_delete_version(memo.store, registry_subject, spec.version)
        if subject is not None and subject.spec is not None and not subject.deleting:
            projection = await memo.projector.project(ProjectionTarget(subject.spec, subject.uid))
    except KubeApiError as error:
        release_blocked(api_blocked(error), "version", retry, runtime, memo, object_ref(SCHEMA_KIND, body))
        return
    except Blocked as blocked:
        release_blocked(blocked, "version", retry, runtime, memo, object_ref(SCHEMA_KIND, body))
        return
    # On the Subject when it stays: a pruned Schema is gone from `kubectl describe` and from Argo CD's
    # resource view, and the webhook's warnings on DELETE reach kubectl users only.
    where = object_ref(SCHEMA_KIND, body)
    if subject is not None and subject.spec is not None and not subject.deleting:
        where = ObjectRef(SUBJECT_KIND, namespace, subject.spec.resource_name, subject.uid)
    memo.note(_deleted_note(where, registry_subject, spec, status.get("id"), projection))
    logger.debug("Deleted Schema namespace=%s name=%s", namespace, name)


def deleted_unheld(type: str, meta: kopf.Meta, **_: Any) -> bool:
    """The DELETED event of a Schema without the finalizer (every Schema but those an earlier release
    held): the only events `release_unheld` is for (kopf then skips the handler, and its log line, for all
    the others)."""
    return type == "DELETED" and not held(meta)


async def release_unheld(
    type: str,
    body: kopf.Body,
    status: kopf.Status,
    namespace: str | None,
    name: str,
    memo: OperatorContext,
    **kwargs: Any,
) -> None:
    """A Schema deleted (it holds no finalizer): the same release, once, as it goes. A failure here (the
    store down) is repaired by the Subject's resync, as is a deletion the operator missed while it was
    not running. Deletions of Schemas holding an earlier release's finalizer went through `release`."""
    indexes = {key: kwargs[key] for key in (SUBJECTS_INDEX, SCHEMAS_INDEX)}
    try:
        await release(
            body=body,
            status=status,
            namespace=namespace,
            name=name,
            retry=0,
            runtime=timedelta(0),
            memo=memo,
            **indexes,
        )
    except (kopf.TemporaryError, kopf.PermanentError) as error:
        logger.warning(
            "Failed to release a deleted Schema namespace=%s name=%s error=%s", namespace, name, error
        )


def register(registry: kopf.OperatorRegistry, *, deletion_timeout: float) -> None:
    register_kind(
        registry,
        SCHEMA_PLURAL,
        SCHEMAS_INDEX,
        index_schema,
        reconcile,
        release,
        deletion_timeout=deletion_timeout,
        release_when=held,
    )
    kopf.on.event(
        GROUP, VERSION, SCHEMA_PLURAL, registry=registry, id="released-unheld", when=deleted_unheld
    )(release_unheld)
