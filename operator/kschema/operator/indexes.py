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
from kschema.operator.subject_status import fields_of

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
    version: int | None = None  # spec.version, when it is a number


async def index_subject(
    namespace: str | None,
    name: str,
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: Any,
    **_: Any,
) -> dict[Any, Any]:
    """Also shows the projector's status writer the Subject's status fields as they are now (see
    `subject_status`)."""
    try:
        spec: SubjectSpec | None = subject_from_body(body, memo.settings.default_compatibility)
    except SpecError:
        spec = None
    memo.observe_subject_status((namespace or "", name), fields_of(status))
    return {(namespace, name): SubjectEntry(spec, str(meta.get("uid")), bool(meta.get("deletionTimestamp")))}


async def index_schema(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    """Read from the plain dicts of the event's object: through kopf's views, every lookup walks the
    path from the object again, on every watch event of every Schema."""
    raw = dict(body)
    spec, meta, status = (raw.get(k) or {} for k in ("spec", "metadata", "status"))
    subject = spec.get("subject")
    if not isinstance(subject, str):
        return {}
    nudged = (meta.get("annotations") or {}).get(SUBJECT_UID_ANNOTATION)
    deleting = bool(meta.get("deletionTimestamp"))
    ready = ready_of(status)
    version = spec.get("version")
    registration = None
    current = status.get("observedGeneration") == meta.get("generation")
    if ready and current and not deleting and isinstance(version, int) and "registrySubject" in status:
        registration = Registration(version, status.get("id"), status.get("registrySubject"))
    declared = version if isinstance(version, int) and not isinstance(version, bool) else None
    return {(namespace, subject): SchemaEntry(name, nudged, ready, deleting, registration, declared)}


def subject_entry(index: kopf.Index[Any, Any], namespace: str, name: str) -> SubjectEntry | None:
    for entry in index.get((namespace, name), ()):
        if isinstance(entry, SubjectEntry):
            return entry
    return None


def schema_entries(index: kopf.Index[Any, Any], namespace: str, subject: str) -> list[SchemaEntry]:
    return [e for e in index.get((namespace, subject), ()) if isinstance(e, SchemaEntry)]


def declared_versions(
    subjects: kopf.Index[Any, Any], schemas: kopf.Index[Any, Any], namespace: str, registry_subject: str
) -> set[int]:
    """The versions of `registry_subject` that Schemas in `namespace` declare, through any Subject resource
    of the namespace that names it (admission allows one; the operator does not rely on it)."""
    declared: set[int] = set()
    for key in list(subjects):
        entry = subject_entry(subjects, *key) if key[0] == namespace else None
        if entry is None or entry.spec is None or entry.spec.name != registry_subject:
            continue
        declared.update(e.version for e in schema_entries(schemas, *key) if e.version is not None)
    return declared
