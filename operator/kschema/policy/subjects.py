"""Reviews of `Subject` creates, updates and deletes."""

from __future__ import annotations

from collections.abc import Sequence

from kschema.compat import CompatibilityLevel
from kschema.contracts import review_subject_contract
from kschema.formats import parse_schema
from kschema.model import SchemaSpec, SubjectSpec
from kschema.policy.common import history_violations, ownership_reasons, parsed_history, who_subject
from kschema.policy.inputs import Catalog, Decision, Parser, RegistryFacts

__all__ = ["review_subject"]


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
    who = who_subject(new)
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
    reasons += ownership_reasons(who, new.namespace, new.name, new.format, same_name, registry)
    if reasons:
        return Decision(tuple(reasons))

    if (
        old is not None
        and new.accepted_through is not None
        and (old.accepted_through or 0) < new.accepted_through
    ):
        warnings.append(
            f"{who}: spec.acceptedHistory.throughVersion {new.accepted_through} accepts versions up to "
            f'{new.accepted_through} of subject "{new.name}" as they are; their compatibility is no '
            "longer checked"
        )
    if new.compatibility is CompatibilityLevel.NONE and (
        old is None or old.compatibility is not CompatibilityLevel.NONE
    ):
        warnings.append(
            f'{who}: compatibility NONE turns off compatibility checks for subject "{new.name}"; any new '
            "version is accepted, even one that breaks every consumer"
        )
    waiting = others_catalog.schemas_of(new)
    if waiting and (old is None or old.compatibility is not new.compatibility):
        history, parse_warnings = parsed_history(new, waiting, others_catalog, registry, parse)
        warnings += [f"{who}: {w}" for w in parse_warnings]
        violations = history_violations(new, history, new.compatibility)
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
            f'{who_subject(old)}: subject "{old.name}" is deleted while {len(left)} Schema(s) '
            "still refer to it "
            f"({names}); their versions stop being listed (IDs keep resolving) and they report Ready=False "
            "until they are deleted too",
        ),
    )
