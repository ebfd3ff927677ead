"""The admission review of a version's data contract against its schema and its subject's configuration.
Every problem is a sentence naming the rule (or metadata path) and the field, so the webhook and
`kschema check` print the same thing."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import jsonata

from kschema.contracts.cel import check_expression
from kschema.contracts.fields import FieldKind, FieldNode, field_tree
from kschema.contracts.model import Contract, Rule, RuleKind, SubjectContract
from kschema.formats import ParsedSchema

__all__ = ["CHECKED_RULE_TYPES", "ContractReview", "review_contract", "wildcard_match"]

# Executors whose expressions kschema checks. Confluent's clients bring these three in their rules extra.
CHECKED_RULE_TYPES = ("CEL", "CEL_FIELD", "JSONATA")
# Field-level and payload encryption run in the clients but need a KMS and Confluent's DEK registry
# endpoints, which kschema does not serve: a rule that can never run is refused rather than admitted.
_NEEDS_DEK_REGISTRY = ("ENCRYPT", "ENCRYPT_PAYLOAD")


@dataclass(slots=True)
class ContractReview:
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def wildcard_match(text: str, pattern: str) -> bool:
    """Confluent's tag-path matching: '?' one character and '*' any run within a dot-separated name,
    '**' any run across names."""
    out = []
    src = pattern.replace("**.*", "**")
    i = 0
    while i < len(src):
        c = src[i]
        i += 1
        if c == "*":
            if i < len(src) and src[i] == "*":
                out.append(".*")
                i += 1
            else:
                out.append(r"[^.]*")
        elif c == "?":
            out.append(r"[^.]")
        else:
            out.append(re.escape(c))
    return re.fullmatch("".join(out), text) is not None


def _inline_tags(parsed: ParsedSchema) -> set[str]:
    """Tags written in the schema itself (`"confluent:tags": [...]` on Avro fields and JSON Schema
    properties)."""
    try:
        doc = json.loads(parsed.raw)
    except ValueError:
        return set()
    found: set[str] = set()
    todo = [doc]
    budget = 100_000
    while todo and budget > 0:
        budget -= 1
        node = todo.pop()
        if isinstance(node, dict):
            tags = node.get("confluent:tags")
            if isinstance(tags, list):
                found.update(t for t in tags if isinstance(t, str))
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return found


def _field_names(root: FieldNode) -> list[str]:
    return [n.full_name for n in root.walk() if n.full_name]


def review_contract(
    contract: Contract,
    registered: Contract,
    config: SubjectContract,
    parsed: ParsedSchema,
    where: str = "spec",
) -> ContractReview:
    """Reviews the contract a Schema declares (`contract`, for locating messages) and the one it will be
    registered with (`registered`, after the subject's defaults and overrides) against its schema."""
    review = ContractReview()
    metadata = registered.metadata
    rule_set = registered.rule_set
    if (metadata is None or not metadata.tags) and rule_set is None:
        # No tag path and no rule to check against the schema's fields (most versions): the fields are
        # not even listed.
        return _sensitive_warnings(review, registered, where)
    root = field_tree(parsed)
    if metadata is not None and metadata.tags:
        names = _field_names(root)
        for path, _tags in metadata.tags:
            if root.kind is FieldKind.MESSAGE and not any(wildcard_match(n, path) for n in names):
                shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
                review.reasons.append(
                    f"{_where_metadata(contract, config, where)}.tags: path '{path}' names no field of the "
                    f"schema (its fields: {shown or 'none'})"
                )
    _sensitive_warnings(review, registered, where)
    if rule_set is None:
        return review
    tagged = {t for _p, tags in (metadata.tags if metadata else ()) for t in tags} | _inline_tags(parsed)
    group = config.compatibility_group
    for list_name, rules in rule_set.lists():
        for i, rule in enumerate(rules):
            at = f"{_where_rules(contract, config, rule.name, where)}.{list_name}[{i}] (rule '{rule.name}')"
            review.reasons += _rule_problems(rule, at, root, list_name == "migrationRules")
            if rule.tags and rule.type == "CEL_FIELD":
                unused = sorted(set(rule.tags) - tagged)
                if unused:
                    review.warnings.append(
                        f"{at}.tags: no field is tagged {', '.join(unused)}, in the metadata or in the "
                        "schema (confluent:tags); the rule applies to no field"
                    )
            if list_name == "migrationRules" and not rule.disabled:
                if not group:
                    review.reasons.append(
                        f"{at}: a migration rule needs a group to migrate between, but the Subject has no "
                        "spec.compatibilityGroup (set it to a metadata property such as major_version)"
                    )
                elif metadata is None or metadata.property(group) is None:
                    review.reasons.append(
                        f"{at}: a migration rule needs a group to migrate between, but this version has no "
                        f"metadata property '{group}' (the Subject's spec.compatibilityGroup)"
                    )
    return review


def _sensitive_warnings(review: ContractReview, registered: Contract, where: str) -> ContractReview:
    metadata = registered.metadata
    if metadata is not None:
        props = dict(metadata.properties)
        for name in metadata.sensitive:
            if name not in props:
                review.warnings.append(
                    f"{where}.metadata.sensitive: '{name}' is not one of the metadata properties"
                )
    return review


def _where_metadata(contract: Contract, config: SubjectContract, where: str) -> str:
    if contract.metadata is not None and contract.metadata.tags:
        return f"{where}.metadata"
    return f"{where}.metadata (from the Subject's defaultMetadata/overrideMetadata)"


def _where_rules(contract: Contract, config: SubjectContract, name: str, where: str) -> str:
    declared = contract.rule_set
    if declared is not None and any(r.name == name for _k, rules in declared.lists() for r in rules):
        return f"{where}.ruleSet"
    return f"{where}.ruleSet (from the Subject's defaultRuleSet/overrideRuleSet)"


def _rule_problems(rule: Rule, at: str, root: FieldNode, migration: bool) -> Sequence[str]:
    if rule.type in _NEEDS_DEK_REGISTRY:
        return [
            f"{at}.type: {rule.type} rules need a key management service and the DEK registry endpoints, "
            "which kschema does not serve"
        ]
    if rule.type not in CHECKED_RULE_TYPES:
        return [
            f"{at}.type: unknown rule type '{rule.type}'; expected one of {', '.join(CHECKED_RULE_TYPES)}"
        ]
    if not rule.expr:
        return [f"{at}.expr: is required for a {rule.type} rule"]
    if rule.type == "JSONATA":
        problems = []
        if rule.kind is RuleKind.CONDITION:
            problems.append(f"{at}.kind: JSONATA rules transform data; use kind TRANSFORM")
        try:
            jsonata.Jsonata(rule.expr)
        except (jsonata.JException, ValueError, IndexError, RecursionError) as exc:
            problems.append(f"{at}.expr: is not valid JSONata: {exc}")
        return problems
    if rule.type == "CEL_FIELD":
        # `value`, `name`, `typeName`, `tags` and the containing `message` change per field: parse only.
        return [f"{at}.expr: {p}" for p in check_expression(rule.expr, {})]
    # A migration rule reads the other group's data, whose fields this schema does not describe.
    variables = {} if migration or root.kind is not FieldKind.MESSAGE else {"message": root}
    return [f"{at}.expr: {p}" for p in check_expression(rule.expr, variables)]


def review_subject_contract(config: SubjectContract) -> list[str]:
    """A Subject's default and override rule sets, checked without a schema (each version's review then
    checks the merged rules against its own fields): types, expressions that do not parse."""
    problems: list[str] = []
    any_field = FieldNode(FieldKind.ANY)
    for key, rule_set in (
        ("defaultRuleSet", config.default_rule_set),
        ("overrideRuleSet", config.override_rule_set),
    ):
        for list_name, rules in rule_set.lists() if rule_set else ():
            for i, rule in enumerate(rules):
                at = f"spec.{key}.{list_name}[{i}] (rule '{rule.name}')"
                problems += _rule_problems(rule, at, any_field, migration=True)
    return problems
