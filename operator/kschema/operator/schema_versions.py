"""Registering a Schema's version once its Subject is known, and what comes of it: the status conditions,
the Events, the projection. Run inside kopf's processing of the object (the status goes into kopf's patch,
kopf retries), or, past the limit of a burst, in a deferred task of its own (`deferral`), which writes
the status itself and retries with the same backoff."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import kopf

from kschema.kubeapi import KubeApiError, NotFound
from kschema.model import SCHEMA_KIND, SchemaSpec, SchemaState
from kschema.operator.blocked import Blocked
from kschema.operator.conditions import Condition
from kschema.operator.configmaps import ProjectionTarget
from kschema.operator.context import OperatorContext, set_status
from kschema.operator.diffbase import DIGEST_STATUS_FIELD
from kschema.operator.events import Note, ObjectRef
from kschema.operator.registration import Registered, VersionRequest, register_versions
from kschema.store import SubjectRecord

logger = logging.getLogger(__name__)

NOT_CHECKED = Condition("Compatible", None, "NotChecked", "not checked yet")

Status = tuple[list[Condition], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class VersionWork:
    """What a Schema's reconcile has left to do once its Subject is known."""

    memo: OperatorContext
    spec: SchemaSpec
    target: ProjectionTarget
    here: ObjectRef
    subject: ObjectRef

    async def register(self) -> Status:
        """Registers the version (queued with the subject's other waiting versions, on the Schemas'
        turns) and posts its Events; the status it earns. `Blocked` when refused or not possible now."""
        memo, registry_subject = self.memo, self.target.spec.name
        # In progress from before the wait for a place: the projection of a subject whose versions are
        # queued together waits for all of them (bounded), and is one ConfigMap write for the burst.
        with memo.projector.registering(self.target, self.here.name):
            request = VersionRequest(self.spec, self.target.spec.accepted_through)
            run = functools.partial(_register_queued, memo, registry_subject)
            admit = functools.partial(memo.turn, SCHEMA_KIND)
            record, registered = await memo.registrations.submit(registry_subject, request, run, admit)
        for note in registration_notes(self.here, self.subject, registered, self.spec):
            memo.note(note)
        conditions = [
            Condition("Ready", True, "Registered", _registered_message(registered, self.spec)),
            _compatible(registered, str(record.compatibility)),
        ]
        fields = {
            "id": registered.version.schema_id,
            "fingerprint": registered.fingerprint,
            "registrySubject": record.subject,
        }
        return conditions, fields

    async def project(self) -> None:
        """Outside the place: waiting for the subject's other versions takes none from the next one."""
        await self.memo.projector.project(self.target)

    def refused(self, blocked: Blocked) -> list[Condition]:
        """The conditions of a blocked registration, and the Event when it is refused for good."""
        if not blocked.temporary:
            self.memo.note(Note(self.here, "Warning", "Refused", f"Refused: {blocked.message}", self.subject))
        compatible = (
            Condition("Compatible", False, "Incompatible", blocked.message)
            if blocked.reason == "Incompatible"
            else NOT_CHECKED
        )
        return [Condition("Ready", False, blocked.reason, blocked.message), compatible]


def status_snapshot(body: kopf.Body) -> kopf.Body:
    """What `set_status` reads from the object (its generation and conditions), kept by a deferred
    reconcile instead of the whole body."""
    conditions = body.status.get("conditions")
    raw = {
        "metadata": {"generation": body.meta.get("generation")},
        "status": {"conditions": list(conditions) if isinstance(conditions, list) else []},
    }
    return kopf.Body(cast(kopf.RawBody, raw))


async def finish_deferred(
    work: VersionWork, snapshot: kopf.Body, digest: str, superseded: Callable[[], bool]
) -> None:
    """A deferred reconcile: registers and projects, then writes the status with the digest that marks
    the object handled. A temporary failure writes its conditions without the digest and is retried
    with the operator's backoff; a newer spec waiting (`superseded`) ends it without a write."""
    memo, ref = work.memo, work.here
    retry = 0
    while True:
        conditions: list[Condition] = []
        fields: dict[str, Any] = {}
        done = True
        try:
            conditions, fields = await work.register()
            await work.project()
        except KubeApiError as error:  # the projection's: the registration stands, retried as a whole
            done = False
            logger.warning(
                "Retrying a deferred reconcile namespace=%s name=%s: %s", ref.namespace, ref.name, error
            )
        except Blocked as blocked:
            conditions, fields, done = work.refused(blocked), {}, not blocked.temporary
        except Exception:  # kopf retries a handler's unexpected error; so does this, with the backoff
            done = False
            logger.exception("Retrying a deferred reconcile namespace=%s name=%s", ref.namespace, ref.name)
        if superseded():
            return
        patch = kopf.Patch()
        if conditions:
            set_status(patch, snapshot, conditions, **fields)
        if done:
            patch.status[DIGEST_STATUS_FIELD] = digest
        try:
            if patch.status:
                await memo.kube.patch_schema_status(ref.namespace, ref.name, dict(patch.status))
        except NotFound:
            return  # deleted meanwhile: its release soft-deletes the version
        except KubeApiError as error:
            done = False
            logger.warning(
                "Retrying a deferred status write namespace=%s name=%s: %s", ref.namespace, ref.name, error
            )
        if done:
            return
        await asyncio.sleep(memo.settings.backoff(retry))
        retry += 1
        if superseded():
            return


async def _register_queued(
    memo: OperatorContext, registry_subject: str, requests: Sequence[VersionRequest]
) -> list[tuple[SubjectRecord, Registered] | Exception]:
    """The versions of one subject queued until a place was free (see `KeyedBatches`), registered under
    one hold of the subject's lock."""
    async with memo.subject_locks(registry_subject):
        return await register_versions(
            memo.store, registry_subject, requests, pool=memo.pool, schemas=memo.schemas
        )


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


def registration_notes(
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


def _registered_message(registered: Registered, spec: SchemaSpec) -> str:
    version = registered.version
    return (
        f"registered as {version.subject} version {version.version} "
        f"with ID {version.schema_id} ({spec.state})"
    )
