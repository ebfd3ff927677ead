"""Store-side service functions of the operator: upsert a subject, resolve a version's references and
register it, with the outcome of each expressed as a value or a `Blocked` reason. No kopf here: the
handlers translate `Blocked` into kopf's permanent and temporary errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kschema.compat import (
    CompatibilityLevel,
    CompatibilityResult,
    VersionedSchema,
    check_compatibility,
)
from kschema.compat.levels import LEVELS
from kschema.contracts import Contract, contract_fingerprint, group_of, registered_contract
from kschema.formats import InvalidSchemaError, ParsedSchema, Reference, ResolvedReference, parse_schema
from kschema.model import SchemaSpec, SubjectSpec
from kschema.store import (
    FormatConflictError,
    IdConflictError,
    InvalidInputError,
    NewVersion,
    RegistryStore,
    StoreError,
    StoreUnavailableError,
    SubjectOwnedElsewhereError,
    SubjectRecord,
    SubjectVersion,
    VersionConflictError,
    get_version_with_schema,
)

MAX_REFERENCE_DEPTH = 32  # references form a DAG in practice; this stops a corrupted cycle


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
    )
    try:
        return await store.upsert_subject(record)
    except StoreError as error:
        raise blocked_by_store(error) from error


async def resolve_references(
    store: RegistryStore, references: Sequence[Reference], depth: int = 0
) -> tuple[ResolvedReference, ...]:
    """Each reference with its registered text, recursively. A reference to a version that is not
    registered yet is temporary: versions and their references may be applied in any order."""
    if depth > MAX_REFERENCE_DEPTH:
        raise Blocked("InvalidReference", "references nest deeper than 32 levels (a cycle?)", temporary=False)
    resolved = []
    for i, ref in enumerate(references):
        try:
            # Deleted versions still resolve: their content is immutable and their IDs stay readable.
            found = await get_version_with_schema(store, ref.subject, ref.version, include_deleted=True)
        except StoreError as error:
            raise blocked_by_store(error) from error
        if found is None:
            raise Blocked(
                "ReferenceNotFound",
                f"spec.references[{i}]: {ref.subject} version {ref.version} ({ref.name}) "
                "is not registered yet",
                temporary=True,
            )
        nested = await resolve_references(store, found.schema.references, depth + 1)
        resolved.append(ResolvedReference(ref, found.schema.schema, nested))
    return tuple(resolved)


@dataclass(frozen=True, slots=True)
class Registered:
    version: SubjectVersion
    fingerprint: str
    compatibility: CompatibilityResult
    checked_against: tuple[int, ...]  # the version numbers the new one was checked against
    already_registered: bool


async def _parse_stored(
    store: RegistryStore, subject: SubjectRecord, version: SubjectVersion
) -> ParsedSchema:
    stored = await store.get_schema(version.schema_id)
    if stored is None:  # the store never drops content; this is a broken store
        raise Blocked(
            "StoreError",
            f"schema id {version.schema_id} of version {version.version} is missing",
            temporary=True,
        )
    refs = await resolve_references(store, stored.references)
    return parse_schema(subject.format, stored.schema, refs)


async def _earlier_contracts(
    store: RegistryStore, subject: SubjectRecord, spec: SchemaSpec
) -> list[tuple[SubjectVersion, Contract]]:
    """The registered, not deleted versions below the new one, with the contract each was registered with."""
    found = []
    for v in await store.list_versions(subject.subject):
        if v.version < spec.version:
            stored = await store.get_schema(v.schema_id)
            found.append((v, stored.contract if stored is not None else Contract()))
    return found


async def _check_against_history(
    store: RegistryStore,
    subject: SubjectRecord,
    spec: SchemaSpec,
    parsed: ParsedSchema,
    earlier_contracts: list[tuple[SubjectVersion, Contract]],
    group: str | None,
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
    history = []
    for version in earlier:
        try:
            history.append(VersionedSchema(version.version, await _parse_stored(store, subject, version)))
        except InvalidSchemaError as error:  # registered by an older release with other rules
            raise Blocked(
                "InvalidHistory", f"registered version {version.version}: {error}", temporary=False
            ) from error
    result = check_compatibility(VersionedSchema(spec.version, parsed), history, level)
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


async def register_version(store: RegistryStore, subject: SubjectRecord, spec: SchemaSpec) -> Registered:
    """Registers (idempotently) one version and brings its state in line with the spec. `subject` is the
    live record from `live_subject`, read under the same per-subject lock as the write."""
    try:
        refs = await resolve_references(store, spec.references)
        try:
            parsed = parse_schema(subject.format, spec.schema, refs)
        except InvalidSchemaError as error:
            raise Blocked("InvalidSchema", f"spec.schema: {error}", temporary=False) from error
        existing = await get_version_with_schema(store, subject.subject, spec.version, include_deleted=True)
        already = existing is not None and existing.schema.fingerprint == contract_fingerprint(
            parsed.fingerprint, existing.schema.contract
        )
        earlier: list[tuple[SubjectVersion, Contract]] = []
        if already and existing is not None:
            # Checked when first registered; re-checking on every resume would parse whole histories.
            # Its contract is the one it was registered with, whatever the Subject's defaults became.
            contract = existing.schema.contract
            result, against = CompatibilityResult(), tuple[int, ...]()
        else:
            earlier = await _earlier_contracts(store, subject, spec)
            previous = earlier[-1][1] if earlier else None
            contract = registered_contract(subject.contract, spec.contract, previous)
            group = group_of(subject.contract, contract)
            result, against = await _check_against_history(store, subject, spec, parsed, earlier, group)
            if not result.compatible:
                raise Blocked("Incompatible", _incompatibility_message(subject, result), temporary=False)
        version = await store.register(
            NewVersion(
                subject=subject.subject,
                version=spec.version,
                namespace=spec.namespace,
                format=subject.format,
                schema=spec.schema,
                canonical=parsed.canonical,
                fingerprint=contract_fingerprint(parsed.fingerprint, contract),
                references=spec.references,
                state=spec.state,
                pinned_id=spec.pinned_id,
                sunset=spec.sunset,
                contract=contract,
            )
        )
        if version.state is not spec.state or version.sunset != spec.sunset:
            await store.set_state(subject.subject, spec.version, spec.state, spec.sunset)
    except StoreError as error:
        raise blocked_by_store(error) from error
    return Registered(version, contract_fingerprint(parsed.fingerprint, contract), result, against, already)


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
