"""Reviews of `Schema` creates (format, references, ownership, IDs, contracts, compatibility with the
declared neighbours), updates (only state and metadata may change) and deletes (never refused)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from kschema.compat.levels import LEVELS
from kschema.contracts import contract_fingerprint, group_of, registered_contracts, review_contract
from kschema.formats import InvalidSchemaError, ParsedSchema, parse_schema
from kschema.formats.budget import TooComplexError
from kschema.model import SchemaSpec, SchemaState, SubjectSpec
from kschema.policy.common import (
    DeclaredVersion,
    UnresolvedReference,
    compat_sentences,
    history_violations,
    ownership_reasons,
    parse_declared,
    parsed_history,
    resolve_declared,
    who_schema,
)
from kschema.policy.inputs import Catalog, Decision, Parser, RegistryFacts

__all__ = ["ALLOWED_TRANSITIONS", "review_schema"]


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
    who = who_schema(new)
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
    who = who_schema(new)
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

    reasons = ownership_reasons(
        who, new.namespace, subject.name, subject.format, others.subjects_named(subject.name), registry
    )
    siblings = others.schemas_of(subject)
    for other in siblings:
        if other.version == new.version:
            reasons.append(
                f'{who}: version {new.version} of subject "{subject.name}" is already declared by '
                f"{who_schema(other)}; each version number is used once. Use the next free version, "
                f"{max(s.version for s in siblings) + 1}"
            )
            break
    try:
        resolution = resolve_declared(new.references, subject.format, others, registry)
        parsed = parse(subject.format, new.schema, resolution.references)
    except UnresolvedReference as exc:
        return Decision((*reasons, f"{who}: spec.references: {exc}"), tuple(warnings))
    except InvalidSchemaError as exc:
        return Decision(
            (*reasons, f"{who}: spec.schema is not a valid {subject.format} schema: {exc}"), tuple(warnings)
        )
    except TooComplexError as exc:
        return Decision((*reasons, f"{who}: {exc}"), tuple(warnings))
    warnings += [
        f'{who}: spec.references uses subject "{s}" version {v}, which was deleted from the registry; '
        "it still resolves, but declare a live version before that one is gone for good"
        for s, v in resolution.deleted
    ]

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
    if subject.accepts_as_history(new.version):
        # Accepted history is only checked from above, by a later version that is not accepted history:
        # parse just that one (or those, for transitive levels), not the whole history.
        above = [s for s in distinct if s.version > new.version]
        if not LEVELS[subject.compatibility].transitive:
            above = above[:1]
        distinct = [s for s in above if not subject.accepts_as_history(s.version)]
    history, parse_warnings = parsed_history(subject, distinct, others, registry, parse)
    warnings += [f"{who}: {w}" for w in parse_warnings]
    me = DeclaredVersion(new, parsed)
    older = [v for v in history if v.spec.version < new.version]
    newer = [v for v in history if v.spec.version > new.version]
    try:
        incompatible = compat_sentences(who, subject, me, older, newer)
    except TooComplexError as exc:
        return Decision((*reasons, f"{who}: {exc}"), tuple(warnings))
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
            same = parse_declared(other, fmt, others, registry, parse).fingerprint == parsed.fingerprint
        except (InvalidSchemaError, UnresolvedReference, TooComplexError):
            same = False
        if not same:
            return [
                f"{who}: spec.id {new.pinned_id} is already pinned by {who_schema(other)} "
                "for other content; "
                "an ID always names the same schema. Remove spec.id or pin a free ID"
            ]
    return []


def _review_schema_delete(
    old: SchemaSpec, others: Catalog, registry: RegistryFacts, parse: Parser
) -> Decision:
    who = who_schema(old)
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
        history, _ = parsed_history(subject, [lower[-1], higher[0]], others, registry, parse)
        if len(history) == 2:
            gap = history_violations(subject, history, subject.compatibility)
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
            + ", ".join(who_schema(s) for s in referrers[:5])
        )
    return Decision((), tuple(warnings))


def _latest_served(schemas: Iterable[SchemaSpec]) -> SchemaSpec | None:
    served = [s for s in schemas if s.state in _SERVED_AS_LATEST]
    return max(served, key=lambda s: s.version, default=None)
