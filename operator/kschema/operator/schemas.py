"""Schema handlers: register the version in the store (ID assigned or pinned, references resolved from
the store), keep its state in line with `spec.state`, re-project its Subject, and soft-delete the version
when the resource is deleted."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
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
from kschema.operator.events import Note, ObjectRef
from kschema.operator.indexes import (
    SCHEMAS_INDEX,
    SUBJECTS_INDEX,
    SubjectEntry,
    index_schema,
    subject_entry,
)
from kschema.operator.registration import (
    Blocked,
    Registered,
    VersionRequest,
    register_versions,
    soft_delete_version,
)
from kschema.operator.rendering import Projection
from kschema.store import StoreError, SubjectRecord

logger = logging.getLogger(__name__)

SUBJECT_WAIT_SECONDS = 3.0  # how long a Schema waits for a missing Subject before it reports it
# ... and for a Subject whose watch event has arrived but whose reconcile has not registered it yet
SUBJECT_PENDING_WAIT_SECONDS = 30.0

NOT_CHECKED = Condition("Compatible", None, "NotChecked", "not checked yet")


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
    memo: OperatorContext, subjects_by_name: kopf.Index[Any, Any], namespace: str, name: str
) -> SubjectEntry | None:
    """The Schema's Subject from the index, waiting a moment for it when it is not registered yet: applied
    together with its Schemas, the Subject is usually only moments behind. Longer when its watch event
    has arrived (its reconcile is coming, only later in a burst) than when nothing is known of it."""
    subject = subject_entry(subjects_by_name, namespace, name)
    if subject is not None and (subject.deleting or await _registered_subject(memo, subject)):
        return subject
    if subject is None:
        await memo.subject_arrivals.wait(namespace, name, SUBJECT_WAIT_SECONDS)
        subject = subject_entry(subjects_by_name, namespace, name)
        if subject is None or subject.deleting or await _registered_subject(memo, subject):
            return subject
    if subject.spec is not None:
        await memo.subject_arrivals.wait(namespace, name, SUBJECT_PENDING_WAIT_SECONDS)
    return subject_entry(subjects_by_name, namespace, name)


def _compatible(registered: Registered, level: str) -> Condition:
    if registered.accepted_history:
        return Condition(
            "Compatible",
            True,
            "AcceptedHistory",
            "accepted as it is: the Subject's spec.acceptedHistory covers this version",
        )
    if registered.already_registered:
        return Condition("Compatible", True, "Registered", "checked when the version was registered")
    if not registered.checked_against:
        return Condition("Compatible", True, "NoHistory", f"no earlier version to check against ({level})")
    versions = ", ".join(str(v) for v in registered.checked_against)
    return Condition("Compatible", True, "Compatible", f"{level} compatible with version(s) {versions}")


def _blocked_conditions(blocked: Blocked) -> list[Condition]:
    compatible = (
        Condition("Compatible", False, "Incompatible", blocked.message)
        if blocked.reason == "Incompatible"
        else NOT_CHECKED
    )
    return [Condition("Ready", False, blocked.reason, blocked.message), compatible]


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
    subject = await _arrived_subject(memo, subjects_by_name, namespace, spec.subject)
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
    try:
        # In progress from before the wait for a place: the projection of a subject whose versions are
        # queued together waits for all of them (bounded), and is one ConfigMap write for the burst.
        # The versions of the subject waiting at the same time register together (`_register_queued`).
        with memo.projector.registering(target):
            request = VersionRequest(spec, subject.spec.accepted_through)
            run = functools.partial(_register_queued, memo, subject.spec.name)
            admit = functools.partial(memo.turn, SCHEMA_KIND)
            record, registered = await memo.registrations.submit(subject.spec.name, request, run, admit)
        set_status(
            patch,
            body,
            [
                Condition("Ready", True, "Registered", _registered_message(registered, spec)),
                _compatible(registered, str(record.compatibility)),
            ],
            id=registered.version.schema_id,
            fingerprint=registered.fingerprint,
            registrySubject=record.subject,
        )
        for note in _registration_notes(here, subject_ref, registered, spec):
            memo.note(note)
        # Outside the place: waiting for the subject's other versions takes none from the next reconcile.
        await memo.projector.project(target)
    except KubeApiError as error:
        fail(api_blocked(error), retry, memo.settings)
    except Blocked as blocked:
        set_status(patch, body, _blocked_conditions(blocked))
        if not blocked.temporary:
            memo.note(Note(here, "Warning", "Refused", f"Refused: {blocked.message}", subject_ref))
        fail(blocked, retry, memo.settings)
    logger.debug(
        "Reconciled Schema namespace=%s name=%s id=%s", namespace, name, registered.version.schema_id
    )


async def _register_queued(
    memo: OperatorContext, registry_subject: str, requests: Sequence[VersionRequest]
) -> list[tuple[SubjectRecord, Registered] | Exception]:
    """The versions of one subject queued until a place was free (see `KeyedBatches`), registered under
    one hold of the subject's lock."""
    async with memo.subject_locks(registry_subject):
        return await register_versions(
            memo.store, registry_subject, requests, pool=memo.pool, schemas=memo.schemas
        )


def held(meta: kopf.Meta, **_: Any) -> bool:
    """Whether the Schema carries the finalizer, as earlier releases put on registered Schemas: kopf
    releases it through `release` and takes it off. The operator adds it to no Schema: a Schema's deletion
    only soft-deletes its version and re-projects, which the DELETED event (`release_unheld`) does as the
    object goes, and the Subject's resync does for deletions the operator did not see (see
    `subjects.sweep`). Without a finalizer a reconcile is one write, to the status."""
    return FINALIZER in (meta.get("finalizers") or ())


def _registration_notes(
    here: ObjectRef, subject: ObjectRef, registered: Registered, spec: SchemaSpec
) -> list[Note]:
    """The Events of a successful reconcile: a new version, a new state. Nothing when nothing changed."""
    version = registered.version
    of = f"version {version.version} of {version.subject}"
    sunset = f"; Sunset {spec.sunset}" if spec.sunset and spec.state is SchemaState.DEPRECATED else ""
    notes = []
    state = "" if spec.state is SchemaState.ACTIVE else f" ({spec.state}{sunset})"
    if not registered.already_registered:
        notes.append(
            Note(here, "Normal", "Registered", f"Registered {of} as ID {version.schema_id}{state}", subject)
        )
    elif registered.restored:
        message = f"Restored {of} (deleted before) with its ID {version.schema_id}{state}"
        notes.append(Note(here, "Normal", "Restored", message, subject))
    elif registered.state_changed:
        if spec.state is SchemaState.DEPRECATED:
            reason, message = "Deprecated", f"Deprecated {of}{sunset}"
        elif spec.state is SchemaState.ARCHIVED:
            reason = "Archived"
            message = f"Archived {of}: hidden from listings, ID {version.schema_id} still resolves"
        else:
            reason, message = "StateChanged", f"{of[0].upper()}{of[1:]} is now {spec.state}"
        notes.append(Note(here, "Normal", reason, message, subject))
    return notes


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


def _registered_message(registered: Registered, spec: SchemaSpec) -> str:
    version = registered.version
    return (
        f"registered as {version.subject} version {version.version} "
        f"with ID {version.schema_id} ({spec.state})"
    )


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
