"""kopf in-memory indexes: Subjects by (namespace, name) for the Schema handlers, and Schemas by
(namespace, Subject name) for the Subject handlers. Both follow the watch streams, so a lookup costs no
API call and always reflects the latest event seen. The index functions are coroutines although they never
wait: kopf runs plain functions in a thread pool, a thread hop on every watch event of both kinds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import kopf

from kschema.model import SpecError, SubjectSpec, subject_from_body
from kschema.operator.context import SUBJECT_UID_ANNOTATION, ready_of

SUBJECTS_INDEX = "subjects_by_name"  # also the handler kwarg names
SCHEMAS_INDEX = "schemas_by_subject"


@dataclass(frozen=True, slots=True)
class SubjectEntry:
    spec: SubjectSpec | None  # None when its spec does not parse
    uid: str
    deleting: bool


@dataclass(frozen=True, slots=True)
class Registration:
    """What a registered Schema's status says (Ready for its current generation): compared with the
    store by its Subject's resync."""

    version: int
    status_id: object
    registry_subject: object


@dataclass(frozen=True, slots=True)
class SchemaEntry:
    name: str
    nudged_uid: str | None
    ready: bool
    deleting: bool = False
    registration: Registration | None = None


async def index_subject(
    namespace: str | None, name: str, body: kopf.Body, meta: kopf.Meta, memo: Any, **_: Any
) -> dict[Any, Any]:
    try:
        spec: SubjectSpec | None = subject_from_body(body, memo.settings.default_compatibility)
    except SpecError:
        spec = None
    return {(namespace, name): SubjectEntry(spec, str(meta.get("uid")), bool(meta.get("deletionTimestamp")))}


async def index_schema(
    namespace: str | None, name: str, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, **_: Any
) -> dict[Any, Any]:
    subject = spec.get("subject")
    if not isinstance(subject, str):
        return {}
    nudged = meta.annotations.get(SUBJECT_UID_ANNOTATION)
    deleting = bool(meta.get("deletionTimestamp"))
    ready = ready_of(status)
    version = spec.get("version")
    registration = None
    current = status.get("observedGeneration") == meta.get("generation")
    if ready and current and not deleting and isinstance(version, int) and "registrySubject" in status:
        registration = Registration(version, status.get("id"), status.get("registrySubject"))
    return {(namespace, subject): SchemaEntry(name, nudged, ready, deleting, registration)}


def subject_entry(index: kopf.Index[Any, Any], namespace: str, name: str) -> SubjectEntry | None:
    for entry in index.get((namespace, name), ()):
        if isinstance(entry, SubjectEntry):
            return entry
    return None


def schema_entries(index: kopf.Index[Any, Any], namespace: str, subject: str) -> list[SchemaEntry]:
    return [e for e in index.get((namespace, subject), ()) if isinstance(e, SchemaEntry)]
