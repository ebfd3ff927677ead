"""Subject handlers: upsert the subject (its namespace owns it), project its versions into a ConfigMap,
nudge its Schemas when it appears or goes away, and soft-delete it on deletion."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import kopf
from kubernetes_asyncio import client

from kschema.model import SUBJECT_PLURAL, SpecError, SubjectSpec, subject_from_body
from kschema.operator.conditions import Condition
from kschema.operator.configmaps import Projection, ProjectionTarget
from kschema.operator.context import (
    SUBJECT_UID_ANNOTATION,
    OperatorContext,
    api_blocked,
    fail,
    refuse_invalid_spec,
    register_kind,
    release_refused,
    retry_deletion_or_give_up,
    set_status,
)
from kschema.operator.indexes import SCHEMAS_INDEX, SUBJECTS_INDEX, index_subject, schema_entries
from kschema.operator.registration import Blocked, soft_delete_subject, upsert_subject

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
        except client.ApiException as error:
            if error.status != 404:
                raise
    return count


def _ready_message(spec: SubjectSpec, projection: Projection | None) -> str:
    if projection is None:
        return f"subject {spec.name!r} is registered; projection is disabled"
    return (
        f"subject {spec.name!r} is registered; {projection.version_count} versions, "
        f"projected into ConfigMap {spec.config_map_name}"
    )


async def reconcile(
    body: kopf.Body,
    meta: kopf.Meta,
    namespace: str | None,
    name: str,
    patch: kopf.Patch,
    retry: int,
    memo: OperatorContext,
    **kwargs: Any,
) -> None:
    """Create, update and resume: the same level-based reconcile."""
    namespace = namespace or ""  # both kinds are namespaced
    schemas_by_subject: kopf.Index[Any, Any] = kwargs[SCHEMAS_INDEX]
    try:
        spec = subject_from_body(body, memo.settings.default_compatibility)
    except SpecError as error:
        refuse_invalid_spec(patch, body, error)
    target = ProjectionTarget(spec, str(meta.get("uid")))
    try:
        async with memo.subject_locks(spec.name):
            await upsert_subject(memo.store, spec)
            tick = memo.store_reads.upserted()
        memo.projector.reopen(target)
        projection = await memo.projector.project(target, tidy=True)
        await nudge_schemas(
            memo, schemas_by_subject, namespace, name, target.uid, everyone=False, upserted=(spec.name, tick)
        )
    except client.ApiException as error:
        blocked = api_blocked(error)
        set_status(
            patch, body, [Condition("Ready", False, blocked.reason, blocked.message)], subject=spec.name
        )
        fail(blocked, retry, memo.settings)
    except Blocked as blocked:
        set_status(
            patch, body, [Condition("Ready", False, blocked.reason, blocked.message)], subject=spec.name
        )
        fail(blocked, retry, memo.settings)
    set_status(
        patch,
        body,
        [Condition("Ready", True, "Registered", _ready_message(spec, projection))],
        subject=spec.name,
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
            await soft_delete_subject(memo.store, spec.name, spec.namespace)
        await memo.projector.remove(target)
        await nudge_schemas(memo, schemas_by_subject, namespace, name, "", everyone=True)
    except client.ApiException as error:
        retry_deletion_or_give_up(api_blocked(error), retry, runtime, memo.settings, namespace, name)
        return
    except Blocked as blocked:
        release_refused(blocked, "subject", retry, runtime, memo.settings, namespace, name)
        if not blocked.temporary:  # e.g. another namespace owns the subject: nothing of ours to delete
            await memo.projector.remove(target)
        return
    logger.info("Deleted Subject namespace=%s name=%s subject=%s", namespace, name, spec.name)


def register(registry: kopf.OperatorRegistry) -> None:
    register_kind(registry, SUBJECT_PLURAL, SUBJECTS_INDEX, index_subject, reconcile, release)
