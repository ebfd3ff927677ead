"""What the reviews of Subjects and Schemas share: names in messages, reference resolution against the
declared resources and the store, parsing declared versions, and the compatibility sentences."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from kschema.compat import CompatibilityLevel, Incompatibility, VersionedSchema, check_compatibility
from kschema.compat.levels import LEVELS
from kschema.contracts import group_of, registered_contracts
from kschema.formats import InvalidSchemaError, ParsedSchema, Reference, SchemaFormat
from kschema.formats.budget import TooComplexError
from kschema.formats.resolver import (
    Lookup,
    ReferenceTarget,
    Resolution,
    Unresolvable,
    UnresolvableKind,
    missing_references,
    resolve_references,
)
from kschema.model import TRANSFER_ANNOTATION, SchemaSpec, SubjectSpec
from kschema.policy.inputs import Catalog, Parser, RegistryFacts

# A long list of field-level findings buries the first one; the rest is summarised by a count.
MAX_MESSAGES_PER_CHECK = 10


def who_schema(spec: SchemaSpec) -> str:
    return f"Schema {spec.namespace}/{spec.resource_name}"


def who_subject(spec: SubjectSpec) -> str:
    return f"Subject {spec.namespace}/{spec.resource_name}"


def capped(messages: list[str], what: str = "incompatibilities") -> list[str]:
    if len(messages) <= MAX_MESSAGES_PER_CHECK:
        return messages
    rest = len(messages) - MAX_MESSAGES_PER_CHECK
    return [*messages[:MAX_MESSAGES_PER_CHECK], f"... and {rest} more {what}"]


def _reference_lookup(catalog: Catalog, registry: RegistryFacts, *, usable_only: bool = True) -> Lookup:
    """What policy sees of a referenced version: the declared Schema first, then the registry store."""

    def find(subject: str, version: int) -> ReferenceTarget | None:
        declared = catalog.declared_version(subject, version)
        if declared is not None:
            ref_subject, ref_schema = declared
            return ReferenceTarget(ref_subject.format, ref_schema.schema, ref_schema.references)
        if usable_only and not registry.usable:
            return None
        stored = registry.versions.get((subject, version))
        if stored is None:
            return None
        return ReferenceTarget(stored.format, stored.schema, stored.references, stored.deleted)

    return find


# What resolving no references gives (most declared versions have none).
_NO_REFERENCES: Final = Resolution(())


class UnresolvedReference(Exception):
    """A reference that cannot be resolved; the message is a full sentence without the resource name."""


def resolve_declared(
    references: Sequence[Reference], fmt: SchemaFormat, catalog: Catalog, registry: RegistryFacts
) -> Resolution:
    """Resolves through the core resolver; a missing version is explained with what the cluster and the
    store know of its subject."""
    if not references:
        return _NO_REFERENCES
    try:
        return resolve_references(references, fmt, _reference_lookup(catalog, registry))
    except Unresolvable as exc:
        if exc.kind is not UnresolvableKind.MISSING:
            raise UnresolvedReference(exc.reason) from None
        ref = exc.reference
        owners = catalog.subjects_named(ref.subject)
        where = (
            f'subject "{ref.subject}" is declared by Subject '
            f"{owners[0].namespace}/{owners[0].resource_name} "
            f"but has no Schema with version {ref.version}"
            if owners
            else f'no Subject declares subject "{ref.subject}"'
        )
        if registry.configured and not registry.unavailable:
            where += " and the registry store has no such version"
        elif registry.unavailable:
            where += f" and the registry store could not be read ({registry.unavailable})"
        raise UnresolvedReference(f"{exc.reason}: {where}") from None


def missing_registry_references(
    references: Iterable[Reference], catalog: Catalog, registry: RegistryFacts
) -> set[tuple[str, int]]:
    """The (subject, version) pairs reachable from `references` that are neither declared in `catalog`
    nor present in `registry`: what a caller should fetch from the store before deciding. Call it again
    after adding what was fetched, until it returns nothing new."""
    return missing_references(references, _reference_lookup(catalog, registry, usable_only=False))


def parse_declared(
    spec: SchemaSpec, fmt: SchemaFormat, catalog: Catalog, registry: RegistryFacts, parse: Parser
) -> ParsedSchema:
    """Parses a declared Schema; raises `UnresolvedReference`, `InvalidSchemaError` or `TooComplexError`."""
    return parse(fmt, spec.schema, resolve_declared(spec.references, fmt, catalog, registry).references)


@dataclass(frozen=True, slots=True)
class DeclaredVersion:
    spec: SchemaSpec
    parsed: ParsedSchema


def parsed_history(
    subject: SubjectSpec,
    schemas: Sequence[SchemaSpec],
    catalog: Catalog,
    registry: RegistryFacts,
    parse: Parser,
) -> tuple[list[DeclaredVersion], list[str]]:
    """Parses declared versions; those that fail are left out with a warning (they were admitted once,
    and a reference may have gone since), so one broken version does not block every later change."""
    parsed, warnings = [], []
    for spec in schemas:
        try:
            parsed.append(
                DeclaredVersion(spec, parse_declared(spec, subject.format, catalog, registry, parse))
            )
        except (InvalidSchemaError, UnresolvedReference, TooComplexError) as exc:
            warnings.append(
                f"{who_schema(spec)} (version {spec.version}) could not be parsed and was left out of the "
                f"compatibility check: {exc}"
            )
    return parsed, warnings


def _incompatibilities(
    new: DeclaredVersion, against: Sequence[DeclaredVersion], level: CompatibilityLevel
) -> tuple[Incompatibility, ...]:
    """What keeps `new` from being `level` compatible with the declared versions `against`."""
    result = check_compatibility(
        VersionedSchema(new.spec.version, new.parsed),
        [VersionedSchema(v.spec.version, v.parsed) for v in against],
        level,
    )
    return result.incompatibilities


def _other_version(inc: Incompatibility, version: int) -> int | None:
    return inc.writer_version if inc.reader_version == version else inc.reader_version


def compat_sentences(
    who: str,
    subject: SubjectSpec,
    new: DeclaredVersion,
    older: Sequence[DeclaredVersion],
    newer: Sequence[DeclaredVersion],
) -> list[str]:
    """Checks `new` against the declared versions it will sit between, under the subject's level."""
    level = subject.compatibility
    rule = LEVELS[level]
    if not (rule.backward or rule.forward):
        return []
    lower = older if rule.transitive else older[-1:]
    higher = newer if rule.transitive else newer[:1]
    new_v = new.spec.version
    # Accepted history (spec.acceptedHistory) is never checked against the versions below it.
    if subject.accepts_as_history(new_v):
        lower = []
    higher = [v for v in higher if not subject.accepts_as_history(v.spec.version)]
    found: list[str] = []
    if lower:
        for inc in _incompatibilities(new, lower, level):
            found.append(
                f'{who}: version {new_v} of subject "{subject.name}" is not {level} compatible with version '
                f"{_other_version(inc, new_v)}: {inc}"
            )
    for successor in higher:
        succ_v = successor.spec.version
        for inc in _incompatibilities(successor, [new], level):
            found.append(
                f'{who}: version {succ_v} of subject "{subject.name}" '
                f"({who_schema(successor.spec)}) would not be "
                f"{level} compatible with version {new_v}: {inc}"
            )
    return capped(found)


def history_violations(
    subject: SubjectSpec, versions: Sequence[DeclaredVersion], level: CompatibilityLevel
) -> list[str]:
    """Where a subject's declared history already breaks `level` (each version against its predecessors)."""
    rule = LEVELS[level]
    if not (rule.backward or rule.forward):
        return []
    found: list[str] = []
    # Compatibility groups: each version is compared with the versions of its own group only.
    contracts = registered_contracts(subject.contract, [(v.spec.version, v.spec.contract) for v in versions])
    groups = [group_of(subject.contract, contracts[v.spec.version]) for v in versions]
    for i in range(1, len(versions)):
        new = versions[i]
        if subject.accepts_as_history(new.spec.version):
            continue
        same = [v for v, g in zip(versions[:i], groups[:i], strict=True) if g == groups[i]]
        against = same if rule.transitive else same[-1:]
        try:
            incompatibilities = _incompatibilities(new, against, level)
        except TooComplexError as exc:
            found.append(f"version {new.spec.version} could not be checked: {exc}")
            continue
        for inc in incompatibilities:
            found.append(
                f"version {new.spec.version} is not {level} compatible with version "
                f"{_other_version(inc, new.spec.version)}: {inc}"
            )
    return capped(found)


def ownership_reasons(
    who: str,
    namespace: str,
    registry_subject: str,
    fmt: SchemaFormat,
    others: Sequence[SubjectSpec],
    registry: RegistryFacts,
) -> list[str]:
    """Refusals when `registry_subject` belongs to another namespace or was registered with another format."""
    reasons: list[str] = []
    stored = registry.subjects.get(registry_subject) if registry.usable else None
    if stored is not None and not stored.may_be_claimed_by(namespace):
        if stored.deleted:
            reasons.append(
                f'{who}: subject "{registry_subject}" is owned by namespace {stored.namespace} in the '
                "registry (deleted there, but a deleted subject stays owned by its namespace: its versions "
                f"and IDs are still in the registry); namespace {stored.namespace} can hand it over by "
                f"annotating its Subject with {TRANSFER_ANNOTATION}: {namespace} before deleting it"
            )
        else:
            handover = (
                f"; the transfer to {namespace} that namespace declared takes effect once it deletes its "
                "Subject"
                if stored.transfer_to == namespace
                else ""
            )
            reasons.append(
                f'{who}: subject "{registry_subject}" is owned by namespace {stored.namespace} in the '
                f"registry; a registry subject belongs to the namespace that declared it first{handover}"
            )
    elif stored is None or stored.deleted or stored.namespace != namespace:
        # Without a live store record of this namespace, the cluster decides: another namespace declaring
        # it owns it.
        for other in others:
            if other.namespace != namespace:
                reasons.append(
                    f'{who}: subject "{registry_subject}" is already declared by Subject '
                    f"{other.namespace}/{other.resource_name}; a registry subject belongs to one namespace"
                )
                break
    if stored is not None and stored.format is not fmt:
        reasons.append(
            f'{who}: subject "{registry_subject}" was registered with format {stored.format}, not {fmt}; '
            "a subject's format never changes, even after it was deleted"
        )
    return reasons
