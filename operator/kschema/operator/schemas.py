"""Schema handlers: register the version in the store (ID assigned or pinned, references resolved from
the store), keep its state in line with `spec.state`, re-project its Subject, and soft-delete the version
when the resource is deleted."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import kopf
from kubernetes_asyncio import client

from kschema.model import GROUP, SCHEMA_PLURAL, VERSION, SchemaSpec, SpecError, schema_from_body
from kschema.operator.conditions import Condition
from kschema.operator.configmaps import ProjectionTarget
from kschema.operator.context import (
    OperatorContext,
    api_blocked,
    fail,
    ready_of,
    refuse_invalid_spec,
    register_kind,
    release_refused,
    retry_deletion_or_give_up,
    set_status,
)
from kschema.operator.indexes import SCHEMAS_INDEX, SUBJECTS_INDEX, index_schema, subject_entry
from kschema.operator.registration import (
    Blocked,
    Registered,
    live_subject,
    register_version,
    soft_delete_version,
)
from kschema.store import StoreError

logger = logging.getLogger(__name__)

NOT_CHECKED = Condition("Compatible", None, "NotChecked", "not checked yet")


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
        refuse_invalid_spec(patch, body, error, NOT_CHECKED)
    subject = subject_entry(subjects_by_name, namespace, spec.subject)
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
    try:
        async with memo.subject_locks(subject.spec.name):
            memo.store_reads.read(namespace, name, subject.spec.name)
            record = await live_subject(memo.store, subject.spec.name)
            registered = await register_version(
                memo.store, record, spec, pool=memo.pool, accepted_through=subject.spec.accepted_through
            )
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
        await memo.projector.project(target)
    except client.ApiException as error:
        fail(api_blocked(error), retry, memo.settings)
    except Blocked as blocked:
        set_status(patch, body, _blocked_conditions(blocked))
        fail(blocked, retry, memo.settings)
    logger.debug(
        "Reconciled Schema namespace=%s name=%s id=%s", namespace, name, registered.version.schema_id
    )


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
    try:
        async with memo.subject_locks(registry_subject):
            await soft_delete_version(memo.store, registry_subject, spec.version)
        if subject is not None and subject.spec is not None and not subject.deleting:
            await memo.projector.project(ProjectionTarget(subject.spec, subject.uid))
    except client.ApiException as error:
        retry_deletion_or_give_up(api_blocked(error), retry, runtime, memo.settings, namespace, name)
        return
    except Blocked as blocked:
        release_refused(blocked, "version", retry, runtime, memo.settings, namespace, name)
        return
    logger.debug("Deleted Schema namespace=%s name=%s", namespace, name)


async def resync(
    body: kopf.Body,
    status: kopf.Status,
    namespace: str | None,
    patch: kopf.Patch,
    memo: OperatorContext,
    **kwargs: Any,
) -> None:
    """Puts `status.id` right when it no longer names the ID the store holds for this version. Anyone
    allowed to write the status subresource can change it, and no reconcile follows a status change:
    clients reading IDs from the status must not be misled for longer than one resync interval. Only a
    registered version (Ready for its current generation) is compared; the others are the reconcile's."""
    namespace = namespace or ""
    if body.meta.get("deletionTimestamp") or not ready_of(status):
        return
    if status.get("observedGeneration") != body.meta.get("generation"):
        return
    try:
        spec = schema_from_body(body)
    except SpecError:
        return
    subject = subject_entry(kwargs[SUBJECTS_INDEX], namespace, spec.subject)
    if subject is None or subject.spec is None or subject.deleting:
        return
    try:
        found = await memo.store.get_version(subject.spec.name, spec.version, include_deleted=True)
    except StoreError as error:
        logger.info("Skipped a status resync namespace=%s name=%s error=%s", namespace, body.meta.name, error)
        return
    if found is None or found.deleted:
        return
    if status.get("id") != found.schema_id or status.get("registrySubject") != subject.spec.name:
        patch.status["id"] = found.schema_id
        patch.status["registrySubject"] = subject.spec.name
        logger.warning(
            "Restored a Schema's status namespace=%s name=%s id=%s was=%r",
            namespace,
            body.meta.name,
            found.schema_id,
            status.get("id"),
        )


def register(registry: kopf.OperatorRegistry, *, resync_interval: float) -> None:
    register_kind(registry, SCHEMA_PLURAL, SCHEMAS_INDEX, index_schema, reconcile, release)
    kopf.timer(
        GROUP,
        VERSION,
        SCHEMA_PLURAL,
        registry=registry,
        id="resync",
        interval=resync_interval,
        initial_delay=resync_interval,
    )(resync)
