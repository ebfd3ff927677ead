"""Store-side service functions of the operator: upsert a subject, register its versions, soft-delete
them, with the outcome of each expressed as a value or a `Blocked` reason. No kopf here: the handlers
translate `Blocked` into kopf's permanent and temporary errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import ParamSpec, TypeVar

from kschema.compat import CompatibilityResult
from kschema.compute import WorkerPool, tasks
from kschema.compute.tasks import SchemaText
from kschema.contracts import Contract, contract_fingerprint, group_of, registered_contract
from kschema.formats import InvalidSchemaError
from kschema.formats.budget import TooComplexError
from kschema.model import SchemaSpec, SubjectSpec
from kschema.operator.blocked import Blocked, blocked_by_store
from kschema.operator.history import (
    Known,
    check_against_history,
    earlier_contracts,
    existing_version,
    known_versions,
)
from kschema.operator.references import resolve_references
from kschema.operator.schema_cache import SchemaCache
from kschema.store import (
    NewVersion,
    RegistryStore,
    StoreError,
    SubjectRecord,
    SubjectVersion,
)

P = ParamSpec("P")
T = TypeVar("T")


async def upsert_subject(store: RegistryStore, spec: SubjectSpec) -> SubjectRecord:
    record = SubjectRecord(
        subject=spec.name,
        namespace=spec.namespace,
        format=spec.format,
        compatibility=spec.compatibility,
        deleted=False,
        description=spec.description,
        compatibility_declared=spec.compatibility_declared,
        contract=spec.contract,
        transfer_to=spec.transfer_to,
    )
    try:
        return await store.upsert_subject(record)
    except StoreError as error:
        raise blocked_by_store(error) from error


async def _in_worker(pool: WorkerPool, what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Runs CPU work in the pool, translating its failures once: an invalid or too complex schema
    waits for a new spec; an infrastructure error (a full disk, a missing compiler) is retried."""
    try:
        return await pool.run(fn, *args, **kwargs)
    except InvalidSchemaError as error:
        raise Blocked("InvalidSchema", f"{what}: {error}", temporary=False) from error
    except TooComplexError as error:
        raise Blocked("TooComplex", f"{what}: {error}", temporary=False) from error
    except OSError as error:
        raise Blocked("TemporaryFailure", f"{what}: {error}", temporary=True) from error


@dataclass(frozen=True, slots=True)
class Registered:
    version: SubjectVersion
    fingerprint: str
    compatibility: CompatibilityResult
    checked_against: tuple[int, ...]  # the version numbers the new one was checked against
    already_registered: bool
    accepted_history: bool = False  # within the Subject's spec.acceptedHistory: not checked
    state_changed: bool = False  # a registered version's state or sunset changed to the spec's
    restored: bool = False  # the same content was registered before and soft-deleted: it is listed again


async def live_subject(store: RegistryStore, name: str) -> SubjectRecord:
    """The subject's record; not yet (or no longer) registered is temporary: its Subject's reconcile
    registers it, and registering a version must never create or undelete a subject by itself."""
    try:
        record = await store.get_subject(name)
    except StoreError as error:
        raise blocked_by_store(error) from error
    if record is None or record.deleted:
        raise Blocked("SubjectNotReady", f"subject {name!r} is not registered yet", temporary=True)
    return record


async def register_version(
    store: RegistryStore,
    subject: SubjectRecord,
    spec: SchemaSpec,
    *,
    pool: WorkerPool,
    accepted_through: int | None = None,
    schemas: SchemaCache | None = None,
    known: Known | None = None,
) -> Registered:
    """Registers (idempotently) one version and brings its state in line with the spec. `subject` is the
    live record from `live_subject`, read under the same per-subject lock as the write. Parsing and
    checking run in `pool`'s worker processes. A version numbered up to `accepted_through` (the Subject's
    accepted history) is not checked for compatibility. `known`, the subject's versions as the caller
    read them under that lock, stands in for reading them again, and gets the version written."""
    try:
        refs = await resolve_references(store, spec.references, subject.format)
        new = SchemaText(subject.format, spec.schema, refs)
        canonical, fingerprint = await _in_worker(pool, "spec.schema", tasks.summary, new)
        existing = await existing_version(store, subject.subject, spec.version, known, schemas)
        already = existing is not None and existing.schema.fingerprint == contract_fingerprint(
            fingerprint, existing.schema.contract
        )
        accepted = accepted_through is not None and spec.version <= accepted_through
        restored = already and existing is not None and existing.version.deleted
        earlier: list[tuple[SubjectVersion, Contract]] = []
        if already and existing is not None:
            # Checked when first registered; re-checking on every resume would parse whole histories.
            # Its contract is the one it was registered with, whatever the Subject's defaults became.
            contract = existing.schema.contract
            result, against = CompatibilityResult(), tuple[int, ...]()
        else:
            earlier = await earlier_contracts(store, subject, spec, schemas, known)
            previous = earlier[-1][1] if earlier else None
            contract = registered_contract(subject.contract, spec.contract, previous)
            group = group_of(subject.contract, contract)
            if accepted:  # the Subject's accepted history: registered as it is
                result, against = CompatibilityResult(), tuple[int, ...]()
            else:
                result, against = await check_against_history(
                    store, pool, subject, spec, new, earlier, group, schemas
                )
            if not result.compatible:
                raise Blocked("Incompatible", _incompatibility_message(subject, result), temporary=False)
        version = await store.register(
            NewVersion(
                subject=subject.subject,
                version=spec.version,
                namespace=spec.namespace,
                format=subject.format,
                schema=spec.schema,
                canonical=canonical,
                fingerprint=contract_fingerprint(fingerprint, contract),
                references=spec.references,
                state=spec.state,
                pinned_id=spec.pinned_id,
                sunset=spec.sunset,
                contract=contract,
            )
        )
        if version.state is not spec.state or version.sunset != spec.sunset:
            await store.set_state(subject.subject, spec.version, spec.state, spec.sunset)
        if known is not None:
            known[spec.version] = replace(version, state=spec.state, sunset=spec.sunset)
        before = existing.version if existing is not None and already else None
        state_changed = before is not None and (
            before.state is not spec.state or before.sunset != spec.sunset
        )
    except StoreError as error:
        raise blocked_by_store(error) from error
    return Registered(
        version,
        contract_fingerprint(fingerprint, contract),
        result,
        against,
        already,
        accepted and not already,
        state_changed,
        restored,
    )


@dataclass(frozen=True, slots=True)
class VersionRequest:
    """One Schema's version to register, with its Subject's accepted history as its reconcile saw it."""

    spec: SchemaSpec
    accepted_through: int | None = None


async def register_versions(
    store: RegistryStore,
    subject: str,
    requests: Sequence[VersionRequest],
    *,
    pool: WorkerPool,
    schemas: SchemaCache | None = None,
) -> list[tuple[SubjectRecord, Registered] | Exception]:
    """Registers several versions of one subject, the caller holding its lock: the subject's record is
    read once, then each version is registered in version order (a lower one is history for the higher
    ones). One outcome per request, in the order given: a version refused is refused alone. A subject
    that is not live refuses them all. The subject's versions are read once for all of them (the lock
    keeps other writers out), and again after a version failed, which may have written part of it."""
    record = await live_subject(store, subject)
    outcomes: dict[int, tuple[SubjectRecord, Registered] | Exception] = {}
    known: Known | None = None
    for i in sorted(range(len(requests)), key=lambda i: requests[i].spec.version):
        request = requests[i]
        try:
            if known is None:
                known = await known_versions(store, subject)
            registered = await register_version(
                store,
                record,
                request.spec,
                pool=pool,
                accepted_through=request.accepted_through,
                schemas=schemas,
                known=known,
            )
        except Exception as error:  # that version's outcome; its reconcile raises it
            outcomes[i] = error
            known = None
        else:
            outcomes[i] = (record, registered)
    return [outcomes[i] for i in range(len(requests))]


async def soft_delete_version(store: RegistryStore, subject: str, version: int) -> None:
    try:
        await store.delete_version(subject, version)
    except StoreError as error:
        raise blocked_by_store(error) from error


async def soft_delete_subject(store: RegistryStore, subject: str, namespace: str) -> None:
    try:
        await store.delete_subject(subject, namespace)
    except StoreError as error:
        raise blocked_by_store(error) from error


def _incompatibility_message(subject: SubjectRecord, result: CompatibilityResult) -> str:
    lines = result.messages
    return f"not {subject.compatibility} compatible: " + "; ".join(lines)
