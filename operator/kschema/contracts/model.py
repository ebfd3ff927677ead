"""Data contracts in Confluent's shape: a version's `metadata` (tags, properties, sensitive) and `ruleSet`
(domain, migration and encoding rules), parsed from JSON with errors that name the field, and written back
exactly as Confluent Schema Registry serves them (empty parts left out, maps and sets sorted, a rule's
`kind` defaulting to TRANSFORM and its `mode` to WRITEREAD)."""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kschema.formats.base import pickled_by_fields

__all__ = [
    "MAX_EXPR_CHARS",
    "MAX_RULES",
    "ContractError",
    "Metadata",
    "Rule",
    "RuleKind",
    "RuleMode",
    "RuleSet",
    "contract_fingerprint",
    "metadata_from_json",
    "rule_set_from_json",
]

# Bounds: a contract is reviewed at admission and its rules run on the validate endpoint, so nothing in it
# may be large enough to make either slow.
MAX_RULES = 64  # per list (domain, migration, encoding)
MAX_EXPR_CHARS = 4096
MAX_NAME_CHARS = 128
MAX_PARAMS = 32
MAX_STRING_CHARS = 1024
MAX_TAGS = 64
MAX_PROPERTIES = 64
MAX_TAG_PATHS = 128

_RULE_NAME = re.compile(r"[^\W\d]\w*")  # Confluent: a letter or '_', then letters, digits or '_'
_ACTIONS_BUILT_IN = ("NONE", "ERROR", "DLQ")


class ContractError(ValueError):
    """A contract field that is missing or wrong; `field` is its path, e.g. `spec.ruleSet.domainRules[0]`."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class RuleKind(enum.StrEnum):
    CONDITION = "CONDITION"
    TRANSFORM = "TRANSFORM"


class RuleMode(enum.StrEnum):
    UPGRADE = "UPGRADE"
    DOWNGRADE = "DOWNGRADE"
    UPDOWN = "UPDOWN"
    WRITE = "WRITE"
    READ = "READ"
    WRITEREAD = "WRITEREAD"

    @property
    def is_migration(self) -> bool:
        return self in (RuleMode.UPGRADE, RuleMode.DOWNGRADE, RuleMode.UPDOWN)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    type: str
    kind: RuleKind = RuleKind.TRANSFORM
    mode: RuleMode = RuleMode.WRITEREAD
    doc: str | None = None
    tags: tuple[str, ...] = ()  # sorted, unique
    params: tuple[tuple[str, str], ...] = ()  # sorted by key
    expr: str | None = None
    on_success: str | None = None
    on_failure: str | None = None
    disabled: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.doc:
            out["doc"] = self.doc
        out["kind"] = self.kind.value
        out["mode"] = self.mode.value
        out["type"] = self.type
        if self.tags:
            out["tags"] = list(self.tags)
        if self.params:
            out["params"] = dict(self.params)
        if self.expr:
            out["expr"] = self.expr
        if self.on_success:
            out["onSuccess"] = self.on_success
        if self.on_failure:
            out["onFailure"] = self.on_failure
        out["disabled"] = self.disabled
        return out


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class RuleSet:
    migration_rules: tuple[Rule, ...] = ()
    domain_rules: tuple[Rule, ...] = ()
    encoding_rules: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.migration_rules or self.domain_rules or self.encoding_rules)

    def lists(self) -> tuple[tuple[str, tuple[Rule, ...]], ...]:
        return (
            ("migrationRules", self.migration_rules),
            ("domainRules", self.domain_rules),
            ("encodingRules", self.encoding_rules),
        )

    def to_json(self) -> dict[str, Any]:
        return {key: [r.to_json() for r in rules] for key, rules in self.lists() if rules}


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Metadata:
    tags: tuple[tuple[str, tuple[str, ...]], ...] = ()  # path -> sorted tags, sorted by path
    properties: tuple[tuple[str, str], ...] = ()  # sorted by key
    sensitive: tuple[str, ...] = ()  # sorted, unique

    def __bool__(self) -> bool:
        return bool(self.tags or self.properties or self.sensitive)

    def property(self, key: str) -> str | None:
        return dict(self.properties).get(key)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.tags:
            out["tags"] = {path: list(tags) for path, tags in self.tags}
        if self.properties:
            out["properties"] = dict(self.properties)
        if self.sensitive:
            out["sensitive"] = list(self.sensitive)
        return out


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Contract:
    """What a version carries beside its schema text."""

    metadata: Metadata | None = None
    rule_set: RuleSet | None = None

    def __bool__(self) -> bool:
        return bool(self.metadata) or bool(self.rule_set)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.metadata:
            out["metadata"] = self.metadata.to_json()
        if self.rule_set:
            out["ruleSet"] = self.rule_set.to_json()
        return out


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SubjectContract:
    """A subject's contract configuration, Confluent's `/config/{subject}` fields."""

    compatibility_group: str | None = None
    default_metadata: Metadata | None = None
    override_metadata: Metadata | None = None
    default_rule_set: RuleSet | None = None
    override_rule_set: RuleSet | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.compatibility_group:
            out["compatibilityGroup"] = self.compatibility_group
        for key, value in (
            ("defaultMetadata", self.default_metadata),
            ("overrideMetadata", self.override_metadata),
            ("defaultRuleSet", self.default_rule_set),
            ("overrideRuleSet", self.override_rule_set),
        ):
            if value:
                out[key] = value.to_json()
        return out


# Parsing ------------------------------------------------------------------------------------------------


def _bounded_string(value: Any, where: str, *, limit: int = MAX_STRING_CHARS, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ContractError(where, f"must be a string, got {type(value).__name__}")
    if not value and not empty:
        raise ContractError(where, "must not be empty")
    if len(value) > limit:
        raise ContractError(where, f"is {len(value)} characters long; the limit is {limit}")
    if "\x00" in value:
        raise ContractError(where, "must not contain NUL characters")
    return value


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ContractError(where, f"must be an object, got {type(value).__name__}")
    return value


def _string_set(value: Any, where: str, limit: int) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ContractError(where, f"must be a list of strings, got {type(value).__name__}")
    if len(value) > limit:
        raise ContractError(where, f"has {len(value)} entries; the limit is {limit}")
    return tuple(sorted({_bounded_string(v, f"{where}[{i}]") for i, v in enumerate(value)}))


def _string_map(value: Any, where: str, limit: int) -> tuple[tuple[str, str], ...]:
    found = _object(value, where)
    if len(found) > limit:
        raise ContractError(where, f"has {len(found)} entries; the limit is {limit}")
    return tuple(
        sorted(
            (_bounded_string(k, f"{where} key"), _bounded_string(v, f"{where}.{k}", empty=True))
            for k, v in found.items()
        )
    )


def _unknown_keys(found: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    extra = sorted(set(found) - set(known))
    if extra:
        raise ContractError(where, f"unknown field {extra[0]!r}; expected {', '.join(known)}")


def metadata_from_json(raw: Any, where: str) -> Metadata | None:
    """Parses Confluent's `metadata` object (None stays None: "not declared" differs from empty)."""
    if raw is None:
        return None
    found = _object(raw, where)
    _unknown_keys(found, ("tags", "properties", "sensitive"), where)
    tags_raw = _object(found.get("tags") or {}, f"{where}.tags")
    if len(tags_raw) > MAX_TAG_PATHS:
        raise ContractError(f"{where}.tags", f"has {len(tags_raw)} paths; the limit is {MAX_TAG_PATHS}")
    tags = tuple(
        sorted(
            (
                _bounded_string(path, f"{where}.tags key"),
                _string_set(values, f"{where}.tags.{path}", MAX_TAGS),
            )
            for path, values in tags_raw.items()
        )
    )
    return Metadata(
        tags=tags,
        properties=_string_map(found.get("properties") or {}, f"{where}.properties", MAX_PROPERTIES),
        sensitive=_string_set(found.get("sensitive") or [], f"{where}.sensitive", MAX_PROPERTIES),
    )


_RULE_KEYS = (
    "name",
    "doc",
    "kind",
    "mode",
    "type",
    "tags",
    "params",
    "expr",
    "onSuccess",
    "onFailure",
    "disabled",
)


def _action(value: Any, where: str, mode: RuleMode) -> str | None:
    if value is None:
        return None
    text = _bounded_string(value, where, limit=MAX_NAME_CHARS)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 2 or (len(parts) == 2 and mode not in (RuleMode.WRITEREAD, RuleMode.UPDOWN)):
        raise ContractError(
            where,
            f"{text!r}: a pair of actions ('write action,read action') is only allowed for WRITEREAD and "
            "UPDOWN rules",
        )
    for part in parts:
        if part.upper() not in _ACTIONS_BUILT_IN:
            raise ContractError(
                where, f"unknown action {part!r}; expected one of {', '.join(_ACTIONS_BUILT_IN)}"
            )
    return text


def rule_from_json(raw: Any, where: str) -> Rule:
    found = _object(raw, where)
    _unknown_keys(found, _RULE_KEYS, where)
    name = found.get("name")
    if not isinstance(name, str) or not name:
        raise ContractError(f"{where}.name", "is required")
    name = _bounded_string(name, f"{where}.name", limit=MAX_NAME_CHARS)
    if not _RULE_NAME.fullmatch(name):
        raise ContractError(
            f"{where}.name", f"{name!r} must start with a letter or '_' and hold only letters, digits and '_'"
        )
    where = f"{where} (rule {name!r})"
    kind_raw, mode_raw = found.get("kind"), found.get("mode")
    try:
        kind = RuleKind(kind_raw) if kind_raw is not None else RuleKind.TRANSFORM
    except ValueError:
        raise ContractError(
            f"{where}.kind", f"unknown rule kind {kind_raw!r}; expected one of {', '.join(RuleKind)}"
        ) from None
    try:
        mode = RuleMode(mode_raw) if mode_raw is not None else RuleMode.WRITEREAD
    except ValueError:
        raise ContractError(
            f"{where}.mode", f"unknown rule mode {mode_raw!r}; expected one of {', '.join(RuleMode)}"
        ) from None
    rule_type = found.get("type")
    if rule_type is None or rule_type == "":
        raise ContractError(f"{where}.type", "is required")
    rule_type = _bounded_string(rule_type, f"{where}.type", limit=MAX_NAME_CHARS)
    expr = found.get("expr")
    if expr is not None:
        expr = _bounded_string(expr, f"{where}.expr", limit=MAX_EXPR_CHARS, empty=True)
    doc = found.get("doc")
    if doc is not None:
        doc = _bounded_string(doc, f"{where}.doc", empty=True)
    disabled = found.get("disabled", False)
    if not isinstance(disabled, bool):
        raise ContractError(f"{where}.disabled", f"must be true or false, got {disabled!r}")
    return Rule(
        name=name,
        type=rule_type,
        kind=kind,
        mode=mode,
        doc=doc or None,
        tags=_string_set(found.get("tags") or [], f"{where}.tags", MAX_TAGS),
        params=_string_map(found.get("params") or {}, f"{where}.params", MAX_PARAMS),
        expr=expr or None,
        on_success=_action(found.get("onSuccess"), f"{where}.onSuccess", mode),
        on_failure=_action(found.get("onFailure"), f"{where}.onFailure", mode),
        disabled=disabled,
    )


def rule_set_from_json(raw: Any, where: str) -> RuleSet | None:
    """Parses Confluent's `ruleSet` object: rule shapes, kinds, modes per list, duplicate names and bounds.
    What a rule *means* (its expression, its fields) is checked against the schema by `review_contract`."""
    if raw is None:
        return None
    found = _object(raw, where)
    _unknown_keys(found, ("migrationRules", "domainRules", "encodingRules"), where)
    lists: dict[str, tuple[Rule, ...]] = {}
    for key in ("migrationRules", "domainRules", "encodingRules"):
        items = found.get(key) or []
        if not isinstance(items, list):
            raise ContractError(f"{where}.{key}", f"must be a list of rules, got {type(items).__name__}")
        if len(items) > MAX_RULES:
            raise ContractError(f"{where}.{key}", f"has {len(items)} rules; the limit is {MAX_RULES}")
        rules = [rule_from_json(item, f"{where}.{key}[{i}]") for i, item in enumerate(items)]
        seen: set[str] = set()
        for i, rule in enumerate(rules):
            at = f"{where}.{key}[{i}] (rule {rule.name!r})"
            if rule.name in seen:
                raise ContractError(f"{at}.name", f"duplicate rule name {rule.name!r} in {key}")
            seen.add(rule.name)
            if key == "migrationRules" and not rule.mode.is_migration:
                raise ContractError(
                    f"{at}.mode", f"migration rules can only be UPGRADE, DOWNGRADE or UPDOWN, not {rule.mode}"
                )
            if key != "migrationRules" and rule.mode.is_migration:
                raise ContractError(
                    f"{at}.mode", f"{key} can only be WRITE, READ or WRITEREAD, not {rule.mode}"
                )
        lists[key] = tuple(rules)
    return RuleSet(
        migration_rules=lists["migrationRules"],
        domain_rules=lists["domainRules"],
        encoding_rules=lists["encodingRules"],
    )


def contract_fingerprint(schema_fingerprint: str, contract: Contract) -> str:
    """The identity of a version's content: Confluent gives a schema with other metadata or rules another
    ID, so the contract is part of it. Without a contract the schema's own fingerprint is kept."""
    if not contract:
        return schema_fingerprint
    blob = json.dumps(contract.to_json(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{schema_fingerprint}\n{blob}".encode()).hexdigest()


def contract_from_json(raw: Any, where: str = "") -> Contract:
    """The `{"metadata", "ruleSet"}` pair as stored beside a schema."""
    if raw is None:
        return Contract()
    found = _object(raw, where or "contract")
    prefix = f"{where}." if where else ""
    return Contract(
        metadata_from_json(found.get("metadata"), f"{prefix}metadata"),
        rule_set_from_json(found.get("ruleSet"), f"{prefix}ruleSet"),
    )
