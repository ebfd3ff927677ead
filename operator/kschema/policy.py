"""Admission policy for `Subject` and `Schema` resources: pure decisions over declared specs.

The validating webhook and the offline `kschema check` share these functions, so a manifest refused in CI
is refused by the cluster with the same sentence. Nothing here does I/O: the caller hands in what is
declared (`Catalog`, the Subjects and Schemas in the cluster or in the manifests) and, optionally, what the
registry store knows (`RegistryFacts`, fetched beforehand).

Decisions made here, and why:

* A new version is compared with its *neighbours by version number*, never by arrival order, because Git
  decides version numbers and Argo CD applies files in any order. For non-transitive levels the nearest
  lower declared version is its predecessor, and the nearest higher one (if any) must accept the new
  version as its own predecessor. For transitive levels every lower version is checked, and every higher
  version must be compatible with the new one.
* Every declared version counts as history, whatever its state: a DRAFT becomes ACTIVE later, and ARCHIVED
  or DEPRECATED versions may still have data in topics. A new DRAFT is checked like any other version.
* A Schema whose Subject does not exist yet is allowed with a warning (GitOps tools apply in any order);
  when the Subject arrives, its review checks the waiting Schemas and warns about what they break, because
  refusing the Subject then would leave the whole application unsyncable.
* Deletions are never refused (Argo CD pruning must always succeed); risky ones get warnings.
* A refusal caused by something *missing* in the cluster is only as good as the caller's view; the
  webhook confirms absences with a direct read before it calls these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kschema.compat import CompatibilityLevel, Incompatibility, VersionedSchema, check_compatibility
from kschema.compat.levels import LEVELS
from kschema.contracts import (
    contract_fingerprint,
    group_of,
    registered_contracts,
    review_contract,
    review_subject_contract,
)
from kschema.formats import (
    InvalidSchemaError,
    ParsedSchema,
    Reference,
    ResolvedReference,
    SchemaFormat,
    parse_schema,
)
from kschema.model import SchemaSpec, SchemaState, SubjectSpec

__all__ = [
    "ALLOWED_TRANSITIONS",
    "MAX_MESSAGES_PER_CHECK",
    "Catalog",
    "Decision",
    "Parser",
    "RegisteredSchema",
    "RegisteredSubject",
    "RegisteredVersion",
    "RegistryFacts",
    "missing_registry_references",
    "review_catalog",
    "review_schema",
    "review_subject",
]

Parser = Callable[[SchemaFormat, str, tuple[ResolvedReference, ...]], ParsedSchema]

# A long list of field-level findings buries the first one; the rest is summarised by a count.
MAX_MESSAGES_PER_CHECK = 10
# References nest a few levels in real registries; a deeper chain is a cycle or a mistake.
MAX_REFERENCE_DEPTH = 32

# Which `spec.state` changes make sense. Anything else is refused with the allowed targets named.
ALLOWED_TRANSITIONS: Mapping[SchemaState, frozenset[SchemaState]] = {
    # A draft is promoted, or abandoned by archiving it; it was never served, so "deprecated" means nothing.
    SchemaState.DRAFT: frozenset({SchemaState.ACTIVE, SchemaState.ARCHIVED}),
    SchemaState.ACTIVE: frozenset({SchemaState.DEPRECATED, SchemaState.ARCHIVED}),
    # Back to ACTIVE is the rollback of a deprecation.
    SchemaState.DEPRECATED: frozenset({SchemaState.ACTIVE, SchemaState.ARCHIVED}),
    # An archived version still resolves by ID, so bringing it back is safe.
    SchemaState.ARCHIVED: frozenset({SchemaState.ACTIVE, SchemaState.DEPRECATED}),
}
_SERVED_AS_LATEST = frozenset({SchemaState.ACTIVE, SchemaState.DEPRECATED})
_WHY_NOT = {
    SchemaState.DRAFT: "a version that has been served cannot become a draft again",
    SchemaState.DEPRECATED: "a draft was never served, so it cannot be deprecated; archive it instead",
}


# --------------------------------------------------------------------------------------------------------
# Inputs and outputs


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one admission: `reasons` explain a refusal, `warnings` accompany an allowed change
    (they are shown by kubectl and Argo CD)."""

    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.reasons

    @property
    def message(self) -> str:
        return "\n".join(self.reasons)


@dataclass(frozen=True, slots=True)
class RegisteredSubject:
    """A subject as the registry store records it (possibly tombstoned)."""

    subject: str
    namespace: str
    format: SchemaFormat
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """A version of a subject as the registry store records it, with its content."""

    subject: str
    version: int
    schema_id: int
    format: SchemaFormat
    schema: str
    fingerprint: str
    references: tuple[Reference, ...] = ()
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    """A global schema ID and the content that holds it."""

    schema_id: int
    format: SchemaFormat
    fingerprint: str
    holders: tuple[tuple[str, int], ...] = ()  # (subject, version) pairs that use it


@dataclass(slots=True)
class RegistryFacts:
    """What the registry store says about the names one decision touches. `configured` is False when
    there is no store; `unavailable` holds the reason when it could not be read (store checks are then
    skipped with a warning, and absences cannot be confirmed)."""

    configured: bool = False
    unavailable: str = ""
    subjects: dict[str, RegisteredSubject] = field(default_factory=dict)
    versions: dict[tuple[str, int], RegisteredVersion] = field(default_factory=dict)
    schemas: dict[int, RegisteredSchema] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.configured and not self.unavailable


class Catalog:
    """The declared Subjects and Schemas (all namespaces), indexed for the lookups policy needs."""

    def __init__(self, subjects: Iterable[SubjectSpec] = (), schemas: Iterable[SchemaSpec] = ()) -> None:
        self.subjects: tuple[SubjectSpec, ...] = tuple(subjects)
        self.schemas: tuple[SchemaSpec, ...] = tuple(schemas)
        self._subject_by_resource = {(s.namespace, s.resource_name): s for s in self.subjects}
        self._subjects_by_name: dict[str, list[SubjectSpec]] = {}
        for s in self.subjects:
            self._subjects_by_name.setdefault(s.name, []).append(s)
        self._schemas_by_subject: dict[tuple[str, str], list[SchemaSpec]] = {}
        for sc in self.schemas:
            self._schemas_by_subject.setdefault((sc.namespace, sc.subject), []).append(sc)
        for group in self._schemas_by_subject.values():
            group.sort(key=lambda sc: (sc.version, sc.resource_name))

    def subject_resource(self, namespace: str, resource_name: str) -> SubjectSpec | None:
        return self._subject_by_resource.get((namespace, resource_name))

    def subjects_named(self, registry_subject: str) -> list[SubjectSpec]:
        """Every Subject resource that declares this registry subject string."""
        return list(self._subjects_by_name.get(registry_subject, ()))

    def schemas_of(self, subject: SubjectSpec) -> list[SchemaSpec]:
        """The Schemas of a Subject resource, ordered by version number."""
        return list(self._schemas_by_subject.get((subject.namespace, subject.resource_name), ()))

    def declared_version(self, registry_subject: str, version: int) -> tuple[SubjectSpec, SchemaSpec] | None:
        """The Schema declaring `version` of a registry subject, in the namespace that declares it."""
        for subject in self.subjects_named(registry_subject):
            for schema in self.schemas_of(subject):
                if schema.version == version:
                    return subject, schema
        return None

    def without_schema(self, schema: SchemaSpec) -> Catalog:
        return Catalog(
            self.subjects,
            (
                s
                for s in self.schemas
                if (s.namespace, s.resource_name) != (schema.namespace, schema.resource_name)
            ),
        )

    def without_subject(self, subject: SubjectSpec) -> Catalog:
        return Catalog(
            (
                s
                for s in self.subjects
                if (s.namespace, s.resource_name) != (subject.namespace, subject.resource_name)
            ),
            self.schemas,
        )


# --------------------------------------------------------------------------------------------------------
# Helpers


def _who_schema(spec: SchemaSpec) -> str:
    return f"Schema {spec.namespace}/{spec.resource_name}"


def _who_subject(spec: SubjectSpec) -> str:
    return f"Subject {spec.namespace}/{spec.resource_name}"


def _capped(messages: list[str], what: str = "incompatibilities") -> list[str]:
    if len(messages) <= MAX_MESSAGES_PER_CHECK:
        return messages
    rest = len(messages) - MAX_MESSAGES_PER_CHECK
    return [*messages[:MAX_MESSAGES_PER_CHECK], f"... and {rest} more {what}"]


class _Unresolvable(Exception):
    """A reference that cannot be resolved; the message is a full sentence without the resource name."""


def _resolve(
    references: Sequence[Reference],
    fmt: SchemaFormat,
    catalog: Catalog,
    registry: RegistryFacts,
    depth: int = 0,
) -> tuple[ResolvedReference, ...]:
    if depth > MAX_REFERENCE_DEPTH:
        raise _Unresolvable(f"references nest deeper than {MAX_REFERENCE_DEPTH} levels (a reference cycle?)")
    resolved = []
    for ref in references:
        label = f'reference "{ref.name}" (subject "{ref.subject}" version {ref.version})'
        declared = catalog.declared_version(ref.subject, ref.version)
        if declared is not None:
            ref_subject, ref_schema = declared
            if ref_subject.format is not fmt:
                raise _Unresolvable(
                    f"{label} points at a {ref_subject.format} subject; "
                    f"a {fmt} schema can only refer to {fmt} schemas"
                )
            text, nested = ref_schema.schema, ref_schema.references
        else:
            stored = registry.versions.get((ref.subject, ref.version)) if registry.usable else None
            if stored is None or stored.deleted:
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
                raise _Unresolvable(f"{label} does not exist: {where}")
            if stored.format is not fmt:
                raise _Unresolvable(
                    f"{label} points at a {stored.format} schema; "
                    f"a {fmt} schema can only refer to {fmt} schemas"
                )
            text, nested = stored.schema, stored.references
        resolved.append(ResolvedReference(ref, text, _resolve(nested, fmt, catalog, registry, depth + 1)))
    return tuple(resolved)


def missing_registry_references(
    references: Iterable[Reference], catalog: Catalog, registry: RegistryFacts
) -> set[tuple[str, int]]:
    """The (subject, version) pairs reachable from `references` that are neither declared in `catalog`
    nor present in `registry`: what a caller should fetch from the store before deciding. Call it again
    after adding what was fetched, until it returns nothing new."""
    missing: set[tuple[str, int]] = set()
    seen: set[tuple[str, int]] = set()
    todo = list(references)
    while todo:
        ref = todo.pop()
        key = (ref.subject, ref.version)
        if key in seen:
            continue
        seen.add(key)
        declared = catalog.declared_version(ref.subject, ref.version)
        if declared is not None:
            todo.extend(declared[1].references)
        elif key in registry.versions:
            todo.extend(registry.versions[key].references)
        else:
            missing.add(key)
    return missing


def _parse(
    spec: SchemaSpec, fmt: SchemaFormat, catalog: Catalog, registry: RegistryFacts, parse: Parser
) -> ParsedSchema:
    """Parses a declared Schema; raises `_Unresolvable` or `InvalidSchemaError`."""
    return parse(fmt, spec.schema, _resolve(spec.references, fmt, catalog, registry))


@dataclass(frozen=True, slots=True)
class _Version:
    spec: SchemaSpec
    parsed: ParsedSchema


def _parsed_history(
    subject: SubjectSpec,
    schemas: Sequence[SchemaSpec],
    catalog: Catalog,
    registry: RegistryFacts,
    parse: Parser,
) -> tuple[list[_Version], list[str]]:
    """Parses declared versions; those that fail are left out with a warning (they were admitted once,
    and a reference may have gone since), so one broken version does not block every later change."""
    parsed, warnings = [], []
    for spec in schemas:
        try:
            parsed.append(_Version(spec, _parse(spec, subject.format, catalog, registry, parse)))
        except (InvalidSchemaError, _Unresolvable) as exc:
            warnings.append(
                f"{_who_schema(spec)} (version {spec.version}) could not be parsed and was left out of the "
                f"compatibility check: {exc}"
            )
    return parsed, warnings


def _incompatibilities(
    new: _Version, against: Sequence[_Version], level: CompatibilityLevel
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


def _compat_sentences(
    who: str, subject: SubjectSpec, new: _Version, older: Sequence[_Version], newer: Sequence[_Version]
) -> list[str]:
    """Checks `new` against the declared versions it will sit between, under the subject's level."""
    level = subject.compatibility
    rule = LEVELS[level]
    if not (rule.backward or rule.forward):
        return []
    lower = older if rule.transitive else older[-1:]
    higher = newer if rule.transitive else newer[:1]
    found: list[str] = []
    new_v = new.spec.version
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
                f"({_who_schema(successor.spec)}) would not be "
                f"{level} compatible with version {new_v}: {inc}"
            )
    return _capped(found)


def _history_violations(
    subject: SubjectSpec, versions: Sequence[_Version], level: CompatibilityLevel
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
        same = [v for v, g in zip(versions[:i], groups[:i], strict=True) if g == groups[i]]
        against = same if rule.transitive else same[-1:]
        for inc in _incompatibilities(new, against, level):
            found.append(
                f"version {new.spec.version} is not {level} compatible with version "
                f"{_other_version(inc, new.spec.version)}: {inc}"
            )
    return _capped(found)


def _latest_served(schemas: Iterable[SchemaSpec]) -> SchemaSpec | None:
    served = [s for s in schemas if s.state in _SERVED_AS_LATEST]
    return max(served, key=lambda s: s.version, default=None)


def _ownership_reasons(
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
    if stored is not None and not stored.deleted and stored.namespace != namespace:
        reasons.append(
            f'{who}: subject "{registry_subject}" is owned by namespace {stored.namespace} in the registry; '
            "a registry subject belongs to the namespace that declared it first"
        )
    elif stored is None or stored.deleted:
        # Without a live store record, the cluster decides: another namespace declaring it owns it.
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


# --------------------------------------------------------------------------------------------------------
# Subjects


def review_subject(
    new: SubjectSpec | None,
    old: SubjectSpec | None,
    catalog: Catalog,
    registry: RegistryFacts | None = None,
    *,
    parse: Parser = parse_schema,
) -> Decision:
    """Reviews a Subject create (`old` None), update (both) or delete (`new` None). `catalog` may or may
    not contain the resource itself; it is left out before comparing."""
    registry = registry or RegistryFacts()
    if new is None:
        if old is None:
            raise ValueError("review_subject needs the new or the old Subject")
        return _review_subject_delete(old, catalog.without_subject(old))
    others_catalog = catalog.without_subject(new)
    who = _who_subject(new)
    reasons: list[str] = []
    warnings: list[str] = []

    if old is not None:
        if old.name != new.name:
            reasons.append(
                f'{who}: spec.name cannot change (from "{old.name}" to "{new.name}"); the Schemas of this '
                "Subject are registered under the old name. Create a new Subject for the new name"
            )
        if old.format is not new.format:
            reasons.append(
                f"{who}: spec.format cannot change (from {old.format} to {new.format}); existing versions "
                "keep their format. Create a new Subject for the new format"
            )
        if reasons:
            return Decision(tuple(reasons))
        if old == new:
            return Decision()

    reasons += [f"{who}: {p}" for p in review_subject_contract(new.contract)]
    same_name = others_catalog.subjects_named(new.name)
    for other in same_name:
        if other.namespace == new.namespace:
            reasons.append(
                f'{who}: subject "{new.name}" is already declared by Subject {other.namespace}/'
                f"{other.resource_name}; declare each registry subject once"
            )
            break
    reasons += _ownership_reasons(who, new.namespace, new.name, new.format, same_name, registry)
    if reasons:
        return Decision(tuple(reasons))

    if new.compatibility is CompatibilityLevel.NONE and (
        old is None or old.compatibility is not CompatibilityLevel.NONE
    ):
        warnings.append(
            f'{who}: compatibility NONE turns off compatibility checks for subject "{new.name}"; any new '
            "version is accepted, even one that breaks every consumer"
        )
    waiting = others_catalog.schemas_of(new)
    if waiting and (old is None or old.compatibility is not new.compatibility):
        history, parse_warnings = _parsed_history(new, waiting, others_catalog, registry, parse)
        warnings += [f"{who}: {w}" for w in parse_warnings]
        violations = _history_violations(new, history, new.compatibility)
        if violations:
            verb = "already violate" if old is None else "violate the new level"
            warnings.append(
                f'{who}: the declared versions of subject "{new.name}" {verb} {new.compatibility}; '
                "new versions "
                f"are checked against their neighbours only: " + "; ".join(violations)
            )
        warnings += _duplicate_warnings(who, waiting)
    return Decision((), tuple(warnings))


def _duplicate_warnings(who: str, schemas: Sequence[SchemaSpec]) -> list[str]:
    by_version: dict[int, list[SchemaSpec]] = {}
    for s in schemas:
        by_version.setdefault(s.version, []).append(s)
    return [
        f"{who}: version {version} is declared by several Schemas: "
        + ", ".join(f"{s.namespace}/{s.resource_name}" for s in group)
        for version, group in sorted(by_version.items())
        if len(group) > 1
    ]


def _review_subject_delete(old: SubjectSpec, catalog: Catalog) -> Decision:
    left = catalog.schemas_of(old)
    if not left:
        return Decision()
    names = ", ".join(s.resource_name for s in left[:5]) + (" ..." if len(left) > 5 else "")
    return Decision(
        (),
        (
            f'{_who_subject(old)}: subject "{old.name}" is deleted while {len(left)} Schema(s) '
            "still refer to it "
            f"({names}); their versions stop being listed (IDs keep resolving) and they report Ready=False "
            "until they are deleted too",
        ),
    )


# --------------------------------------------------------------------------------------------------------
# Schemas


def review_schema(
    new: SchemaSpec | None,
    old: SchemaSpec | None,
    catalog: Catalog,
    registry: RegistryFacts | None = None,
    *,
    parse: Parser = parse_schema,
) -> Decision:
    """Reviews a Schema create (`old` None), update (both) or delete (`new` None). `catalog` may or may
    not contain the resource itself; it is left out before comparing."""
    registry = registry or RegistryFacts()
    if new is None:
        if old is None:
            raise ValueError("review_schema needs the new or the old Schema")
        return _review_schema_delete(old, catalog.without_schema(old), registry, parse)
    others = catalog.without_schema(new)
    if old is not None:
        return _review_schema_update(new, old, others)
    return _review_schema_create(new, others, registry, parse)


def _review_schema_update(new: SchemaSpec, old: SchemaSpec, others: Catalog) -> Decision:
    who = _who_schema(new)
    if new == old:
        return Decision()
    changed = [
        name
        for name, a, b in (
            ("spec.subject", old.subject, new.subject),
            ("spec.version", old.version, new.version),
            ("spec.schema", old.schema, new.schema),
            ("spec.references", old.references, new.references),
            ("spec.id", old.pinned_id, new.pinned_id),
            ("spec.metadata", old.contract.metadata, new.contract.metadata),
            ("spec.ruleSet", old.contract.rule_set, new.contract.rule_set),
        )
        if a != b
    ]
    if changed:
        return Decision(
            (
                f"{who}: {', '.join(changed)} cannot change once created: a version's content, number and "
                "subject are fixed for ever. Declare a new Schema with a new version instead "
                f"(this is version "
                f"{old.version})",
            )
        )
    reasons: list[str] = []
    warnings: list[str] = []
    if new.state is not old.state:
        allowed = ALLOWED_TRANSITIONS[old.state]
        if new.state not in allowed:
            why = _WHY_NOT.get(new.state, "")
            reasons.append(
                f"{who}: spec.state cannot change from {old.state} to {new.state}"
                + (f" ({why})" if why else "")
                + f"; from {old.state} it may change to {' or '.join(sorted(allowed))}"
            )
            return Decision(tuple(reasons))
        subject = others.subject_resource(new.namespace, new.subject)
        if subject is not None:
            siblings = others.schemas_of(subject)
            warnings += _latest_warnings(who, subject, new, old, siblings)
    warnings += _sunset_warnings(who, new)
    return Decision((), tuple(warnings))


def _latest_warnings(
    who: str, subject: SubjectSpec, new: SchemaSpec, old: SchemaSpec | None, siblings: Sequence[SchemaSpec]
) -> list[str]:
    """Warnings when a state change (or a create) changes what clients get as "latest"."""
    before = _latest_served([*siblings, *([old] if old is not None else [])])
    after = _latest_served([*siblings, new])
    warnings = []
    if (
        new.state is SchemaState.DEPRECATED
        and after is new
        and (old is None or old.state is not SchemaState.DEPRECATED)
    ):
        warnings.append(
            f'{who}: version {new.version} is the latest version of subject "{subject.name}" and is now '
            "DEPRECATED; clients asking for the latest version get a deprecated schema. Declare its successor"
        )
    if (
        before is not None
        and before.resource_name == new.resource_name
        and after is not None
        and after.version < new.version
    ):
        warnings.append(
            f'{who}: version {new.version} of subject "{subject.name}" is no longer served as latest '
            f"({new.state}); clients asking for the latest version now get version {after.version}"
        )
    if before is not None and after is None:
        warnings.append(
            f'{who}: subject "{subject.name}" has no ACTIVE or DEPRECATED version left to serve as latest'
        )
    return warnings


def _sunset_warnings(who: str, spec: SchemaSpec) -> list[str]:
    if spec.sunset and spec.state is not SchemaState.DEPRECATED:
        return [f"{who}: spec.sunset is only announced for DEPRECATED versions; this version is {spec.state}"]
    return []


def _review_schema_create(
    new: SchemaSpec, others: Catalog, registry: RegistryFacts, parse: Parser
) -> Decision:
    who = _who_schema(new)
    subject = others.subject_resource(new.namespace, new.subject)
    warnings: list[str] = []
    if registry.unavailable:
        warnings.append(
            f"{who}: the registry store could not be read ({registry.unavailable}); store checks were skipped"
        )
    if subject is None:
        warnings.append(
            f"{who}: Subject {new.namespace}/{new.subject} does not exist yet; this version is checked "
            "(format, references, compatibility) when the Subject is created, and the operator reports the "
            "result in the Schema's status"
        )
        return Decision((), tuple(warnings))

    reasons = _ownership_reasons(
        who, new.namespace, subject.name, subject.format, others.subjects_named(subject.name), registry
    )
    siblings = others.schemas_of(subject)
    for other in siblings:
        if other.version == new.version:
            reasons.append(
                f'{who}: version {new.version} of subject "{subject.name}" is already declared by '
                f"{_who_schema(other)}; each version number is used once. Use the next free version, "
                f"{max(s.version for s in siblings) + 1}"
            )
            break
    try:
        parsed = _parse(new, subject.format, others, registry, parse)
    except _Unresolvable as exc:
        return Decision((*reasons, f"{who}: spec.references: {exc}"), tuple(warnings))
    except InvalidSchemaError as exc:
        return Decision(
            (*reasons, f"{who}: spec.schema is not a valid {subject.format} schema: {exc}"), tuple(warnings)
        )

    distinct = [s for s in siblings if s.version != new.version]
    contracts = registered_contracts(subject.contract, [(s.version, s.contract) for s in [*distinct, new]])
    # A version's identity covers its metadata and rules (Confluent gives other rules another ID).
    identity = contract_fingerprint(parsed.fingerprint, contracts[new.version])
    if registry.usable:
        stored = registry.versions.get((subject.name, new.version))
        if stored is not None and stored.fingerprint != identity:
            gone = " (since deleted)" if stored.deleted else ""
            reasons.append(
                f'{who}: version {new.version} of subject "{subject.name}" was registered{gone} '
                "with other content "
                f"(schema ID {stored.schema_id}); version numbers are never reused. Use a new version number"
            )
        if new.pinned_id is not None:
            holder = registry.schemas.get(new.pinned_id)
            if holder is not None and holder.fingerprint != identity:
                used = ", ".join(f'subject "{s}" version {v}' for s, v in holder.holders[:3])
                reasons.append(
                    f"{who}: spec.id {new.pinned_id} is already held by other content"
                    + (f" ({used})" if used else "")
                    + "; an ID always names the same schema. Remove spec.id or pin a free ID"
                )
    if new.pinned_id is not None:
        reasons += _pinned_in_cluster(who, new, parsed, subject, others, registry, parse)
    if reasons:
        return Decision(tuple(reasons), tuple(warnings))

    distinct = [s for s in siblings if s.version != new.version]
    review = review_contract(new.contract, contracts[new.version], subject.contract, parsed)
    warnings += [f"{who}: {w}" for w in review.warnings]
    if review.reasons:
        return Decision(tuple(f"{who}: {r}" for r in review.reasons), tuple(warnings))
    # Confluent's compatibility groups: a version is only checked against versions of its own group.
    group = group_of(subject.contract, contracts[new.version])
    distinct = [s for s in distinct if group_of(subject.contract, contracts[s.version]) == group]
    history, parse_warnings = _parsed_history(subject, distinct, others, registry, parse)
    warnings += [f"{who}: {w}" for w in parse_warnings]
    me = _Version(new, parsed)
    older = [v for v in history if v.spec.version < new.version]
    newer = [v for v in history if v.spec.version > new.version]
    incompatible = _compat_sentences(who, subject, me, older, newer)
    if incompatible:
        return Decision(tuple(incompatible), tuple(warnings))
    warnings += _latest_warnings(who, subject, new, None, siblings)
    warnings += _sunset_warnings(who, new)
    return Decision((), tuple(warnings))


def _pinned_in_cluster(
    who: str,
    new: SchemaSpec,
    parsed: ParsedSchema,
    subject: SubjectSpec,
    others: Catalog,
    registry: RegistryFacts,
    parse: Parser,
) -> list[str]:
    for other in others.schemas:
        if other.pinned_id != new.pinned_id:
            continue
        other_subject = others.subject_resource(other.namespace, other.subject)
        try:
            fmt = other_subject.format if other_subject is not None else subject.format
            same = _parse(other, fmt, others, registry, parse).fingerprint == parsed.fingerprint
        except (InvalidSchemaError, _Unresolvable):
            same = False
        if not same:
            return [
                f"{who}: spec.id {new.pinned_id} is already pinned by {_who_schema(other)} "
                "for other content; "
                "an ID always names the same schema. Remove spec.id or pin a free ID"
            ]
    return []


def _review_schema_delete(
    old: SchemaSpec, others: Catalog, registry: RegistryFacts, parse: Parser
) -> Decision:
    who = _who_schema(old)
    subject = others.subject_resource(old.namespace, old.subject)
    if subject is None:
        return Decision()
    siblings = [s for s in others.schemas_of(subject) if s.version != old.version]
    warnings: list[str] = []
    latest = _latest_served([*siblings, old])
    if latest is old:
        after = _latest_served(siblings)
        then = f"version {after.version}" if after is not None else "no version"
        warnings.append(
            f'{who}: version {old.version} is the latest version of subject "{subject.name}"; '
            "after the deletion "
            f"clients asking for the latest version get {then}"
        )
    rule = LEVELS[subject.compatibility]
    lower = [s for s in siblings if s.version < old.version]
    higher = [s for s in siblings if s.version > old.version]
    if lower and higher and not rule.transitive and (rule.backward or rule.forward):
        # The two neighbours become adjacent: under a non-transitive level they were never compared.
        history, _ = _parsed_history(subject, [lower[-1], higher[0]], others, registry, parse)
        if len(history) == 2:
            gap = _history_violations(subject, history, subject.compatibility)
            if gap:
                warnings.append(
                    f"{who}: deleting version {old.version} leaves version {higher[0].version} "
                    "next to version "
                    f"{lower[-1].version}, and they are not {subject.compatibility} compatible: "
                    + "; ".join(gap)
                )
    referrers = [
        s
        for s in others.schemas
        if any(r.subject == subject.name and r.version == old.version for r in s.references)
    ]
    if referrers:
        warnings.append(
            f'{who}: version {old.version} of subject "{subject.name}" is still referenced by '
            + ", ".join(_who_schema(s) for s in referrers[:5])
        )
    return Decision((), tuple(warnings))


# --------------------------------------------------------------------------------------------------------
# Whole manifests (offline check)


def review_catalog(
    catalog: Catalog, registry: RegistryFacts | None = None, *, parse: Parser = parse_schema
) -> dict[str, Decision]:
    """Reviews every declared Subject and Schema as if it were created last, against all the others, as
    `kschema check PATH...` does for a directory of manifests. Keys are `Subject ns/name` and
    `Schema ns/name`; each pair of neighbouring versions is reported from both sides."""
    decisions: dict[str, Decision] = {}
    for subject in catalog.subjects:
        decisions[_who_subject(subject)] = review_subject(subject, None, catalog, registry, parse=parse)
    for schema in catalog.schemas:
        decisions[_who_schema(schema)] = review_schema(schema, None, catalog, registry, parse=parse)
    return decisions
