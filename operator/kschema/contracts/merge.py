"""Confluent's merge of a subject's default and override metadata and rule sets into a new version.

At registration Confluent computes `merge(merge(default, specific), override)`, where `specific` is the
version's own metadata (or rule set) or, when it declares none, the previous version's. Metadata merges
key by key: tag paths and properties of the later one replace the earlier ones, sensitive names are
united. Rule sets merge list by list: a later rule replaces an earlier rule of the same name, which keeps
its position removed and the later rules are appended.
"""

from __future__ import annotations

from kschema.contracts.model import Contract, Metadata, Rule, RuleSet, SubjectContract

__all__ = ["group_of", "merge_metadata", "merge_rule_sets", "registered_contract", "registered_contracts"]


def _merge_pairs(
    old: tuple[tuple[str, object], ...], new: tuple[tuple[str, object], ...]
) -> tuple[tuple[str, object], ...]:
    if not old:
        return new
    if not new:
        return old
    merged = dict(old)
    merged.update(new)
    return tuple(sorted(merged.items()))


def merge_metadata(old: Metadata | None, new: Metadata | None) -> Metadata | None:
    if old is None:
        return new
    if new is None:
        return old
    return Metadata(
        tags=_merge_pairs(old.tags, new.tags),  # type: ignore[arg-type]
        properties=_merge_pairs(old.properties, new.properties),  # type: ignore[arg-type]
        sensitive=tuple(sorted(set(old.sensitive) | set(new.sensitive))),
    )


def _merge_rules(old: tuple[Rule, ...], new: tuple[Rule, ...]) -> tuple[Rule, ...]:
    if not old:
        return new
    if not new:
        return old
    names = {r.name for r in new}
    return (*(r for r in old if r.name not in names), *new)


def merge_rule_sets(old: RuleSet | None, new: RuleSet | None) -> RuleSet | None:
    if old is None:
        return new
    if new is None:
        return old
    return RuleSet(
        migration_rules=_merge_rules(old.migration_rules, new.migration_rules),
        domain_rules=_merge_rules(old.domain_rules, new.domain_rules),
        encoding_rules=_merge_rules(old.encoding_rules, new.encoding_rules),
    )


def registered_contract(
    config: SubjectContract, declared: Contract, previous: Contract | None = None
) -> Contract:
    """The metadata and rule set a version is registered with: what it declares (or, for a part it does
    not declare, what the previous version was registered with), between the subject's defaults and its
    overrides."""
    specific_metadata = declared.metadata
    if specific_metadata is None and previous is not None:
        specific_metadata = previous.metadata
    specific_rules = declared.rule_set
    if specific_rules is None and previous is not None:
        specific_rules = previous.rule_set
    return Contract(
        merge_metadata(merge_metadata(config.default_metadata, specific_metadata), config.override_metadata),
        merge_rule_sets(merge_rule_sets(config.default_rule_set, specific_rules), config.override_rule_set),
    )


def registered_contracts(
    config: SubjectContract, declared: list[tuple[int, Contract]]
) -> dict[int, Contract]:
    """What each declared version of a subject is registered with, computed in version order so a version
    that declares no metadata (or rules) inherits its predecessor's, as Confluent does at registration."""
    found: dict[int, Contract] = {}
    previous: Contract | None = None
    for version, contract in sorted(declared, key=lambda pair: pair[0]):
        previous = found[version] = registered_contract(config, contract, previous)
    return found


def group_of(config: SubjectContract, contract: Contract) -> str | None:
    """The compatibility group a registered version belongs to: the value of the Subject's
    `compatibilityGroup` metadata property (None when the Subject has no group or the version no value)."""
    if not config.compatibility_group or contract.metadata is None:
        return None
    return contract.metadata.property(config.compatibility_group)
