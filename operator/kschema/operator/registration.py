"""Store-side service functions of the operator: upsert a subject, resolve a version's references and
register it, with the outcome of each expressed as a value or a `Blocked` reason. No kopf here: the
handlers translate `Blocked` into kopf's permanent and temporary errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from kschema.compat import CompatibilityLevel, CompatibilityResult
from kschema.compat.levels import LEVELS
from kschema.compute import WorkerPool, tasks
from kschema.compute.tasks import SchemaText
from kschema.contracts import Contract, contract_fingerprint, group_of, registered_contract
from kschema.formats import InvalidSchemaError, Reference, ResolvedReference, SchemaFormat
from kschema.formats.budget import TooComplexError
from kschema.formats.resolver import (
    ReferenceTarget,
    Unresolvable,
    UnresolvableKind,
    missing_references,
)
from kschema.formats.resolver import resolve_references as resolve_references_in_core
from kschema.model import SchemaSpec, SubjectSpec
from kschema.operator.schema_cache import SchemaCache
from kschema.store import (
    FormatConflictError,
    IdConflictError,
    InvalidInputError,
    NewVersion,
    RegistryStore,
    StoredSchema,
    StoreError,
    StoreUnavailableError,
    SubjectOwnedElsewhereError,
    SubjectRecord,
    SubjectVersion,
    VersionConflictError,
    get_version_with_schema,
)

P = ParamSpec("P")
T = TypeVar("T")


class Blocked(Exception):
    """A reconcile that cannot complete. `temporary` ones are retried (the world may change without a
    spec change: the store comes back, a referenced version arrives); the others wait for a new spec."""

    def __init__(self, reason: str, message: str, *, temporary: bool) -> None:
        self.reason = reason
        self.message = message
        self.temporary = temporary
        super().__init__(f"{reason}: {message}")


_PERMANENT_REASONS: dict[type[StoreError], str] = {
    SubjectOwnedElsewhereError: "SubjectOwnedElsewhere",
    VersionConflictError: "VersionConflict",
    IdConflictError: "IdConflict",
    FormatConflictError: "FormatConflict",
    InvalidInputError: "InvalidInput",
}


def blocked_by_store(error: StoreError) -> Blocked:
    """Translates the store's typed errors, once, into reasons."""
    if isinstance(error, StoreUnavailableError):
        return Blocked("StoreUnavailable", f"the registry store is unavailable: {error}", temporary=True)
    for kind, reason in _PERMANENT_REASONS.items():
        if isinstance(error, kind):
            return Blocked(reason, str(error), temporary=False)
    return Blocked("StoreError", str(error), temporary=True)


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


async def resolve_references(
    store: RegistryStore, references: Sequence[Reference], fmt: SchemaFormat
) -> tuple[ResolvedReference, ...]:
    """Each reference with its registered text, recursively, by the core resolver's rules. The closure
    is fetched from the store first. A reference to a version that is not registered yet is temporary:
    versions and their references may be applied in any order."""
    known: dict[tuple[str, int], ReferenceTarget] = {}
    fetched: set[tuple[str, int]] = set()

    def lookup(subject: str, version: int) -> ReferenceTarget | None:
        return known.get((subject, version))

    try:
        while wanted := missing_references(references, lookup) - fetched:
            for subject, number in sorted(wanted):
                fetched.add((subject, number))
                # Deleted versions still resolve: their content is immutable and their IDs stay readable.
                found = await get_version_with_schema(store, subject, number, include_deleted=True)
                if found is not None:
                    version, content = found
                    known[(subject, number)] = ReferenceTarget(
                        content.format, content.schema, content.references, version.deleted
                    )
        return resolve_references_in_core(references, fmt, lookup).references
    except StoreError as error:
        raise blocked_by_store(error) from error
    except TooComplexError as error:
        raise Blocked("TooComplex", f"spec.references: {error}", temporary=False) from error
    except Unresolvable as error:
        where = f"spec.references[{error.index_in(references)}]"
        if error.kind is UnresolvableKind.MISSING:
            raise Blocked(
                "ReferenceNotFound", f"{where}: {error.reason}: not registered yet", temporary=True
            ) from error
        raise Blocked("InvalidReference", f"{where}: {error.reason}", temporary=False) from error


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


async def _get_schema(
    store: RegistryStore, schemas: SchemaCache | None, schema_id: int
) -> StoredSchema | None:
    return await (schemas.get(schema_id) if schemas is not None else store.get_schema(schema_id))


async def _stored_text(
    store: RegistryStore, subject: SubjectRecord, version: SubjectVersion, schemas: SchemaCache | None
) -> SchemaText:
    stored = await _get_schema(store, schemas, version.schema_id)
    if stored is None:  # the store never drops content; this is a broken store
        raise Blocked(
            "StoreError",
            f"schema id {version.schema_id} of version {version.version} is missing",
            temporary=True,
        )
    refs = await resolve_references(store, stored.references, subject.format)
    return SchemaText(subject.format, stored.schema, refs)


async def _earlier_contracts(
    store: RegistryStore, subject: SubjectRecord, spec: SchemaSpec, schemas: SchemaCache | None
) -> list[tuple[SubjectVersion, Contract]]:
    """The registered, not deleted versions below the new one, with the contract each was registered with."""
    found = []
    for v in await store.list_versions(subject.subject):
        if v.version < spec.version:
            stored = await _get_schema(store, schemas, v.schema_id)
            found.append((v, stored.contract if stored is not None else Contract()))
    return found


async def _check_against_history(
    store: RegistryStore,
    pool: WorkerPool,
    subject: SubjectRecord,
    spec: SchemaSpec,
    new: SchemaText,
    earlier_contracts: list[tuple[SubjectVersion, Contract]],
    group: str | None,
    schemas: SchemaCache | None,
) -> tuple[CompatibilityResult, tuple[int, ...]]:
    """Checks the new version against the registered, not deleted versions with lower numbers (versions
    may arrive in any order: a higher one already registered is not history for this one) that belong
    to its compatibility group."""
    level = CompatibilityLevel(subject.compatibility)
    rule = LEVELS[level]
    if not (rule.backward or rule.forward):
        return CompatibilityResult(), ()
    earlier = [v for v, c in earlier_contracts if group_of(subject.contract, c) == group]
    if not rule.transitive:
        earlier = earlier[-1:]
    history = [(version.version, await _stored_text(store, subject, version, schemas)) for version in earlier]
    try:
        result = await pool.run(tasks.check, new, spec.version, history, level)
    except InvalidSchemaError as error:  # the new version parsed already: registered by an older release
        raise Blocked("InvalidHistory", f"a registered version: {error}", temporary=False) from error
    except TooComplexError as error:
        raise Blocked("TooComplex", f"compatibility check: {error}", temporary=False) from error
    except OSError as error:
        raise Blocked("TemporaryFailure", f"compatibility check: {error}", temporary=True) from error
    return result, tuple(v.version for v in earlier)


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
) -> Registered:
    """Registers (idempotently) one version and brings its state in line with the spec. `subject` is the
    live record from `live_subject`, read under the same per-subject lock as the write. Parsing and
    checking run in `pool`'s worker processes. A version numbered up to `accepted_through` (the Subject's
    accepted history) is not checked for compatibility."""
    try:
        refs = await resolve_references(store, spec.references, subject.format)
        new = SchemaText(subject.format, spec.schema, refs)
        canonical, fingerprint = await _in_worker(pool, "spec.schema", tasks.summary, new)
        existing = await get_version_with_schema(store, subject.subject, spec.version, include_deleted=True)
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
            earlier = await _earlier_contracts(store, subject, spec, schemas)
            previous = earlier[-1][1] if earlier else None
            contract = registered_contract(subject.contract, spec.contract, previous)
            group = group_of(subject.contract, contract)
            if accepted:  # the Subject's accepted history: registered as it is
                result, against = CompatibilityResult(), tuple[int, ...]()
            else:
                result, against = await _check_against_history(
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
    that is not live refuses them all."""
    record = await live_subject(store, subject)
    outcomes: dict[int, tuple[SubjectRecord, Registered] | Exception] = {}
    for i in sorted(range(len(requests)), key=lambda i: requests[i].spec.version):
        request = requests[i]
        try:
            registered = await register_version(
                store,
                record,
                request.spec,
                pool=pool,
                accepted_through=request.accepted_through,
                schemas=schemas,
            )
        except Exception as error:  # that version's outcome; its reconcile raises it
            outcomes[i] = error
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
