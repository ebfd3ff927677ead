"""JSON Schema compatibility rules, following Confluent Schema Registry's JSON Schema checker
(`io.confluent.kafka.schemaregistry.json.diff`).

Confluent compares an *original* schema with an *update* and lists typed differences
(`TYPE_NARROWED`, `PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL`, `MAX_LENGTH_DECREASED`, ...); a change is
incompatible when any difference is outside its set of compatible changes. A BACKWARD check compares
original = the old schema with update = the new one, so in reader/writer terms the original is the
writer and the update is the reader: `reader_issues(reader, writer)` is `compare(writer, reader)`
restricted to the incompatible differences, with the difference type as `Issue.rule`.

Confluent first loads a schema into the Everit object model, where each JSON object becomes one schema
*class* (string, number, object, array, enum, const, combined, not, ...), several classes at once become
a synthetic `allOf`, and a `type` list becomes an `anyOf`. Two schemas of different classes are a
`TYPE_CHANGED` unless the writer accepts nothing (`false`) or the reader accepts everything (`{}`,
`true`). `_Loader` reproduces that model so the rules below see what Confluent's rules see.

Where Confluent's Java code is evidently broken (an exclusive maximum compared with the update's
`maximum`; `multipleOf` compared on integer parts, which divides by zero for fractions) the intended
rule is applied with exact arithmetic.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final

import referencing
import referencing.exceptions
from referencing._core import Resolver  # referencing exports Resolver only from here

from kschema.compat.result import Issue
from kschema.formats.base import ParsedSchema
from kschema.formats.jsonschema import Dialect, ParsedJsonSchema

__all__ = ["COMPATIBLE_CHANGES", "Difference", "differences", "reader_issues"]


class _Kind(enum.Enum):
    EMPTY = "empty"  # {} or an object with no keyword that constrains anything
    TRUE = "true"  # the boolean schema `true` (a kind of empty schema)
    FALSE = "false"
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    NULL = "null"
    OBJECT = "object"
    ARRAY = "array"
    ENUM = "enum"
    CONST = "const"
    COMBINED = "combined"
    NOT = "not"
    CONDITIONAL = "conditional"
    REFERENCE = "reference"


# Confluent's set of compatible difference types; every other type makes a change incompatible.
COMPATIBLE_CHANGES: Final = frozenset(
    {
        "ID_CHANGED",
        "DESCRIPTION_CHANGED",
        "TITLE_CHANGED",
        "DEFAULT_CHANGED",
        "SCHEMA_REMOVED",
        "TYPE_EXTENDED",
        "MAX_LENGTH_INCREASED",
        "MAX_LENGTH_REMOVED",
        "MIN_LENGTH_DECREASED",
        "MIN_LENGTH_REMOVED",
        "PATTERN_REMOVED",
        "MAXIMUM_INCREASED",
        "MAXIMUM_REMOVED",
        "MINIMUM_DECREASED",
        "MINIMUM_REMOVED",
        "EXCLUSIVE_MAXIMUM_INCREASED",
        "EXCLUSIVE_MAXIMUM_REMOVED",
        "EXCLUSIVE_MINIMUM_DECREASED",
        "EXCLUSIVE_MINIMUM_REMOVED",
        "MULTIPLE_OF_REDUCED",
        "MULTIPLE_OF_REMOVED",
        "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED",
        "REQUIRED_ATTRIBUTE_REMOVED",
        "DEPENDENCY_ARRAY_NARROWED",
        "DEPENDENCY_ARRAY_REMOVED",
        "DEPENDENCY_SCHEMA_REMOVED",
        "MAX_PROPERTIES_INCREASED",
        "MAX_PROPERTIES_REMOVED",
        "MIN_PROPERTIES_DECREASED",
        "MIN_PROPERTIES_REMOVED",
        "ADDITIONAL_PROPERTIES_ADDED",
        "ADDITIONAL_PROPERTIES_EXTENDED",
        "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
        "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL",
        "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
        "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
        "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "MAX_ITEMS_INCREASED",
        "MAX_ITEMS_REMOVED",
        "MIN_ITEMS_DECREASED",
        "MIN_ITEMS_REMOVED",
        "UNIQUE_ITEMS_REMOVED",
        "ADDITIONAL_ITEMS_ADDED",
        "ADDITIONAL_ITEMS_EXTENDED",
        "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
        "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL",
        "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
        "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
        "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "ENUM_ARRAY_EXTENDED",
        "COMBINED_TYPE_EXTENDED",
        "PRODUCT_TYPE_NARROWED",
        "SUM_TYPE_EXTENDED",
        "NOT_TYPE_NARROWED",
    }
)

# Human sentences for the incompatible types, in reader/writer terms (the writer is Confluent's original).
_MESSAGES: Final[Mapping[str, str]] = {
    "SCHEMA_ADDED": "the reader constrains a value the writer left unconstrained",
    "TYPE_NARROWED": "the reader accepts only integers where the writer wrote any number",
    "TYPE_CHANGED": "the reader expects a different type than the writer wrote",
    "MAX_LENGTH_ADDED": "the reader adds a maxLength the writer did not have",
    "MAX_LENGTH_DECREASED": "the reader lowers maxLength",
    "MIN_LENGTH_ADDED": "the reader adds a minLength the writer did not have",
    "MIN_LENGTH_INCREASED": "the reader raises minLength",
    "PATTERN_ADDED": "the reader adds a pattern the writer did not have",
    "PATTERN_CHANGED": "the reader changes the pattern",
    "MAXIMUM_ADDED": "the reader adds a maximum the writer did not have",
    "MAXIMUM_DECREASED": "the reader lowers the maximum",
    "MINIMUM_ADDED": "the reader adds a minimum the writer did not have",
    "MINIMUM_INCREASED": "the reader raises the minimum",
    "EXCLUSIVE_MAXIMUM_ADDED": "the reader adds an exclusiveMaximum the writer did not have",
    "EXCLUSIVE_MAXIMUM_DECREASED": "the reader lowers exclusiveMaximum",
    "EXCLUSIVE_MINIMUM_ADDED": "the reader adds an exclusiveMinimum the writer did not have",
    "EXCLUSIVE_MINIMUM_INCREASED": "the reader raises exclusiveMinimum",
    "MULTIPLE_OF_ADDED": "the reader adds a multipleOf the writer did not have",
    "MULTIPLE_OF_EXPANDED": (
        "the reader's multipleOf is a multiple of the writer's, so it accepts fewer numbers"
    ),
    "MULTIPLE_OF_CHANGED": "the reader's multipleOf does not divide the writer's",
    "REQUIRED_ATTRIBUTE_ADDED": "the reader requires a property, without a default, that the writer may omit",
    "DEPENDENCY_ARRAY_ADDED": "the reader adds a property dependency",
    "DEPENDENCY_ARRAY_EXTENDED": "the reader's property dependency requires more properties",
    "DEPENDENCY_ARRAY_CHANGED": "the reader changes a property dependency",
    "DEPENDENCY_SCHEMA_ADDED": "the reader adds a schema dependency",
    "MAX_PROPERTIES_ADDED": "the reader adds maxProperties",
    "MAX_PROPERTIES_DECREASED": "the reader lowers maxProperties",
    "MIN_PROPERTIES_ADDED": "the reader adds minProperties",
    "MIN_PROPERTIES_INCREASED": "the reader raises minProperties",
    "ADDITIONAL_PROPERTIES_REMOVED": "the reader forbids additional properties the writer allowed",
    "ADDITIONAL_PROPERTIES_NARROWED": "the reader constrains additional properties the writer left open",
    "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL": (
        "the reader adds a property that the writer's open content model may have written with any value"
    ),
    "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL": (
        "the reader requires a new property, without a default, that the writer never wrote"
    ),
    "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL": (
        "the reader's closed content model no longer allows a property the writer wrote"
    ),
    "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (
        "the reader removes a property that its additional or pattern properties do not accept"
    ),
    "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (
        "the reader adds a property the writer's additional or pattern properties wrote differently"
    ),
    "MAX_ITEMS_ADDED": "the reader adds maxItems",
    "MAX_ITEMS_DECREASED": "the reader lowers maxItems",
    "MIN_ITEMS_ADDED": "the reader adds minItems",
    "MIN_ITEMS_INCREASED": "the reader raises minItems",
    "MAX_CONTAINS_ADDED": "the reader adds maxContains",
    "MAX_CONTAINS_DECREASED": "the reader lowers maxContains",
    "MIN_CONTAINS_ADDED": "the reader adds minContains",
    "MIN_CONTAINS_INCREASED": "the reader raises minContains",
    "UNIQUE_ITEMS_ADDED": "the reader requires unique items",
    "ADDITIONAL_ITEMS_REMOVED": "the reader forbids additional items the writer allowed",
    "ADDITIONAL_ITEMS_NARROWED": "the reader constrains additional items the writer left open",
    "UNEVALUATED_ITEMS_REMOVED": "the reader forbids unevaluated items the writer allowed",
    "UNEVALUATED_ITEMS_NARROWED": "the reader constrains unevaluated items the writer left open",
    "ITEM_ADDED_TO_OPEN_CONTENT_MODEL": (
        "the reader adds a tuple item that the writer's open content model may have written with any value"
    ),
    "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL": (
        "the reader's closed content model no longer allows a tuple item the writer wrote"
    ),
    "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (
        "the reader removes a tuple item and its additional items do not accept the writer's values"
    ),
    "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (
        "the reader adds a tuple item that the writer's additional items wrote with other values"
    ),
    "ENUM_ARRAY_NARROWED": "the reader's enum lacks values the writer may write",
    "ENUM_ARRAY_CHANGED": "the reader's allowed values differ from the writer's",
    "COMBINED_TYPE_CHANGED": "the reader combines its subschemas differently (allOf, anyOf, oneOf)",
    "PRODUCT_TYPE_EXTENDED": "the reader's allOf has more subschemas",
    "SUM_TYPE_NARROWED": "the reader's anyOf/oneOf has fewer subschemas",
    "COMBINED_TYPE_SUBSCHEMAS_CHANGED": "the reader's subschemas do not each accept one of the writer's",
    "NOT_TYPE_EXTENDED": "the reader's not excludes values the writer may write",
}


@dataclass(frozen=True, slots=True)
class Difference:
    """One Confluent difference: its type and a JSON path (`#/properties/cost/maxLength`)."""

    type: str
    path: str

    @property
    def compatible(self) -> bool:
        return self.type in COMPATIBLE_CHANGES


def reader_issues(reader: ParsedSchema, writer: ParsedSchema) -> list[Issue]:
    """Why `reader` cannot read data written with `writer`: Confluent's incompatible differences."""
    if not isinstance(reader, ParsedJsonSchema) or not isinstance(writer, ParsedJsonSchema):
        return [Issue("", "FORMAT_CHANGED", "both schemas must be JSON Schemas")]
    try:
        found = differences(writer, reader)
    except RecursionError:
        return [Issue("#/", "SCHEMA_TOO_DEEP", "the schemas nest too deeply to compare")]
    issues: list[Issue] = []
    seen: set[Difference] = set()
    for diff in found:
        if diff.compatible or diff in seen:
            continue
        seen.add(diff)
        issues.append(
            Issue(diff.path, diff.type, _MESSAGES.get(diff.type, diff.type.lower().replace("_", " ")))
        )
    return issues


def differences(original: ParsedJsonSchema, update: ParsedJsonSchema) -> list[Difference]:
    """Confluent's `SchemaDiff.compare(original, update)`: every difference, compatible or not."""
    ctx = _Context()
    ctx.compare(_Loader(original).root(), _Loader(update).root())
    return ctx.diffs


# ---------------------------------------------------------------------------------------------------------
# The Everit-like schema model


@dataclass(eq=False)
class _Node:
    """One schema in Confluent's model. Identity matters: comparisons are memoised per node pair."""

    kind: _Kind
    json: Any
    loader: _Loader = field(repr=False)
    resolver: Resolver[Any] | None = field(default=None, repr=False)
    integer: bool = False  # NUMBER: `type: integer`
    criterion: str = ""  # COMBINED: allOf, anyOf or oneOf
    subschemas: list[_Node] = field(default_factory=list)  # COMBINED; NOT keeps its one child here
    synthetic: bool = False  # COMBINED built from one object's keywords (never collapsed as duplicates)

    @property
    def is_empty(self) -> bool:
        return self.kind in (_Kind.EMPTY, _Kind.TRUE)

    def get(self, key: str) -> Any:
        return self.json.get(key) if isinstance(self.json, Mapping) else None

    def child(self, value: Any) -> _Node:
        return self.loader.load(value, self.resolver)

    # Object keywords ------------------------------------------------------------------------------------
    def properties(self) -> dict[str, _Node]:
        value = self.get("properties")
        if not isinstance(value, Mapping):
            return {}
        return {name: self.child(schema) for name, schema in value.items()}

    def required(self) -> set[str]:
        value = self.get("required")
        return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()

    def permits_additional_properties(self) -> bool:
        return self.get("additionalProperties") is not False

    def additional_properties_schema(self) -> _Node | None:
        value = self.get("additionalProperties")
        return self.child(value) if isinstance(value, Mapping) else None

    def pattern_properties(self) -> list[tuple[str, _Node]]:
        value = self.get("patternProperties")
        if not isinstance(value, Mapping):
            return []
        return [(pattern, self.child(schema)) for pattern, schema in value.items()]

    def property_dependencies(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for keyword in ("dependencies", "dependentRequired"):
            value = self.get(keyword)
            if isinstance(value, Mapping):
                for name, dep in value.items():
                    if isinstance(dep, list):
                        found[name] = {d for d in dep if isinstance(d, str)}
        return found

    def schema_dependencies(self) -> dict[str, _Node]:
        found: dict[str, _Node] = {}
        for keyword in ("dependencies", "dependentSchemas"):
            value = self.get(keyword)
            if isinstance(value, Mapping):
                for name, dep in value.items():
                    if isinstance(dep, Mapping | bool):
                        found[name] = self.child(dep)
        return found

    # Array keywords -------------------------------------------------------------------------------------
    def _tuple_keyword(self) -> str:
        return "prefixItems" if self.loader.dialect.name == "2020-12" else "items"

    def all_items_schema(self) -> _Node | None:
        if self.loader.dialect.name == "2020-12" and "prefixItems" in (self.json or {}):
            return None  # with prefixItems, `items` describes the items after the tuple
        value = self.get("items")
        return self.child(value) if isinstance(value, Mapping | bool) else None

    def item_schemas(self) -> list[_Node]:
        value = self.get(self._tuple_keyword())
        return [self.child(v) for v in value] if isinstance(value, list) else []

    def _additional_items_value(self) -> Any:
        if self.loader.dialect.name == "2020-12":
            return self.get("items") if "prefixItems" in (self.json or {}) else None
        return self.get("additionalItems")

    def permits_additional_items(self) -> bool:
        return self._additional_items_value() is not False

    def additional_items_schema(self) -> _Node | None:
        value = self._additional_items_value()
        return self.child(value) if isinstance(value, Mapping) else None

    def unevaluated_items(self) -> _Node | None:
        value = self.get("unevaluatedItems")
        return self.child(value) if isinstance(value, Mapping | bool) else None


class _Loader:
    """Builds `_Node`s from a parsed schema the way Everit's loader builds its schema objects."""

    def __init__(self, parsed: ParsedJsonSchema) -> None:
        self.dialect: Dialect = parsed.dialect
        self._parsed = parsed
        self._cache: dict[int, _Node] = {}
        self._keep: list[Any] = []  # keeps resolved contents alive so their ids stay unique
        # One node per boolean and for "nothing": comparisons are memoised by node identity, so every
        # node must live as long as the loader.
        self._true = _Node(_Kind.TRUE, True, self)
        self._false = _Node(_Kind.FALSE, False, self)
        self._nothing = _Node(_Kind.EMPTY, {}, self)

    def root(self) -> _Node:
        return self.load(self._parsed.contents, self._parsed.resolver())

    def load(self, value: Any, resolver: Resolver[Any] | None) -> _Node:
        if isinstance(value, bool):
            return self._true if value else self._false
        if not isinstance(value, Mapping):
            return self._nothing
        cached = self._cache.get(id(value))
        if cached is not None:
            return cached
        if resolver is not None and isinstance(value.get(self.dialect.id_keyword), str):
            own = value[self.dialect.id_keyword]
            if not own.startswith("#"):
                resource = self.dialect.specification.create_resource(value)
                resolver = resolver.in_subresource(resource)
        parts = self._extract(value, resolver)
        if not parts:
            node = _Node(_Kind.EMPTY, value, self, resolver)
        elif len(parts) == 1:
            node = parts[0]
        else:
            node = _Node(
                _Kind.COMBINED, value, self, resolver, criterion="allOf", subschemas=parts, synthetic=True
            )
        self._cache[id(value)] = node
        return node

    def _extract(self, value: Mapping[str, Any], resolver: Resolver[Any] | None) -> list[_Node]:
        def make(kind: _Kind, **kwargs: Any) -> _Node:
            return _Node(kind, value, self, resolver, **kwargs)

        ref = value.get("$ref")
        if isinstance(ref, str):
            reference = make(_Kind.REFERENCE)
            # Up to draft-07 the keywords next to `$ref` are ignored; later drafts apply them as well.
            if not self.dialect.at_least_2019:
                return [reference]
            parts = [reference]
        else:
            parts = []
        if isinstance(value.get("enum"), list):
            parts.append(make(_Kind.ENUM))
        combined = [k for k in ("allOf", "anyOf", "oneOf") if isinstance(value.get(k), list)]
        for keyword in combined:
            subschemas = [self.load(v, resolver) for v in value[keyword]]
            parts.append(make(_Kind.COMBINED, criterion=keyword, subschemas=subschemas))
        if "not" in value:
            parts.append(make(_Kind.NOT, subschemas=[self.load(value["not"], resolver)]))
        if "const" in value and self.dialect.name != "draft-04":
            parts.append(make(_Kind.CONST))
        declared = value.get("type")
        consumed: set[str] = set()
        if isinstance(declared, str):
            parts.append(self._typed(declared, value, resolver))
            consumed = _KEYWORDS_OF_TYPE.get(declared, set())
        elif isinstance(declared, list):
            typed = [self._typed(t, value, resolver) for t in declared if isinstance(t, str)]
            parts.append(make(_Kind.COMBINED, criterion="anyOf", subschemas=typed, synthetic=True))
            consumed = set().union(*(_KEYWORDS_OF_TYPE.get(t, set()) for t in declared if isinstance(t, str)))
        # Keywords of a type that `type` did not name still apply to values of that type ("sniffed").
        present = set(value) - consumed
        if present & _ARRAY_KEYWORDS:
            parts.append(make(_Kind.ARRAY))
        if present & _OBJECT_KEYWORDS:
            parts.append(make(_Kind.OBJECT))
        if present & _NUMBER_KEYWORDS:
            parts.append(make(_Kind.NUMBER))
        if present & _STRING_KEYWORDS:
            parts.append(make(_Kind.STRING))
        if self.dialect.name not in ("draft-04", "draft-06") and present & {"if", "then", "else"}:
            parts.append(make(_Kind.CONDITIONAL))
        return parts

    def _typed(self, declared: str, value: Mapping[str, Any], resolver: Resolver[Any] | None) -> _Node:
        kind = {
            "string": _Kind.STRING,
            "integer": _Kind.NUMBER,
            "number": _Kind.NUMBER,
            "boolean": _Kind.BOOLEAN,
            "null": _Kind.NULL,
            "array": _Kind.ARRAY,
            "object": _Kind.OBJECT,
        }.get(declared, _Kind.EMPTY)
        return _Node(kind, value, self, resolver, integer=declared == "integer")

    def dereference(self, node: _Node) -> _Node:
        """Follows `$ref` until a schema that is not a bare reference (Confluent's `normalizeSchema`)."""
        hops = 0
        while node.kind is _Kind.REFERENCE and node.resolver is not None:
            try:
                resolved = node.resolver.lookup(str(node.get("$ref")))
            except referencing.exceptions.Unresolvable:
                return self._nothing  # parse() refuses dangling references; stay total
            self._keep.append(resolved.contents)
            node = self.load(resolved.contents, resolved.resolver)
            hops += 1
            if hops > 1000:  # parse() refuses reference-only cycles; this only guards against a bug
                break
        return node


_OBJECT_KEYWORDS: Final = frozenset(
    {
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "dependencies",
        "dependentRequired",
        "dependentSchemas",
        "patternProperties",
        "additionalProperties",
        "propertyNames",
        "unevaluatedProperties",
    }
)
_ARRAY_KEYWORDS: Final = frozenset(
    {
        "items",
        "prefixItems",
        "additionalItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "contains",
        "minContains",
        "maxContains",
        "unevaluatedItems",
    }
)
_NUMBER_KEYWORDS: Final = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)
_STRING_KEYWORDS: Final = frozenset({"minLength", "maxLength", "pattern", "format"})
_KEYWORDS_OF_TYPE: Final[Mapping[str, set[str]]] = {
    "object": set(_OBJECT_KEYWORDS),
    "array": set(_ARRAY_KEYWORDS),
    "integer": set(_NUMBER_KEYWORDS),
    "number": set(_NUMBER_KEYWORDS),
    "string": set(_STRING_KEYWORDS),
}


# ---------------------------------------------------------------------------------------------------------
# The comparison


class _Context:
    """Collects differences under a JSON path. Comparisons of a node pair are memoised (relative to
    the pair) and a pair met again while it is still being compared is a recursive cycle, treated as
    compatible: the rest of the comparison decides."""

    def __init__(
        self,
        memo: dict[tuple[int, int], list[Difference]] | None = None,
        in_progress: set[tuple[int, int]] | None = None,
        path: list[str] | None = None,
    ) -> None:
        self.memo = memo if memo is not None else {}
        self.in_progress = in_progress if in_progress is not None else set()
        self.path: list[str] = list(path or [])
        self.diffs: list[Difference] = []

    def sub(self) -> _Context:
        return _Context(self.memo, self.in_progress, self.path)

    @property
    def compatible(self) -> bool:
        return all(d.compatible for d in self.diffs)

    def add(self, type_: str, *attribute: str) -> None:
        self.diffs.append(Difference(type_, _path_string([*self.path, *attribute])))

    def extend(self, diffs: Iterable[Difference]) -> None:
        self.diffs.extend(diffs)

    def enter(self, *segment: str) -> _PathScope:
        return _PathScope(self, list(segment))

    def compare(self, original: _Node | None, update: _Node | None) -> None:
        if original is None and update is None:
            return
        if original is None:
            self.add("SCHEMA_ADDED")
            return
        if update is None:
            self.add("SCHEMA_REMOVED")
            return
        original = original.loader.dereference(original)
        update = update.loader.dereference(update)
        key = (id(original), id(update))
        cached = self.memo.get(key)
        if cached is None:
            if key in self.in_progress:
                return
            self.in_progress.add(key)
            try:
                pair = _Context(self.memo, self.in_progress)
                pair._compare_nodes(original, update)
                cached = self.memo[key] = list(pair.diffs)
            finally:
                self.in_progress.discard(key)
        prefix = list(self.path)
        for diff in cached:
            self.diffs.append(Difference(diff.type, _rebase(prefix, diff.path)))

    def _compare_nodes(self, original: _Node, update: _Node) -> None:
        if original.kind is not _Kind.COMBINED and update.kind is _Kind.COMBINED:
            if len(update.subschemas) == 1:
                sub = self.sub()
                sub.compare(original, update.subschemas[0])
                if sub.compatible:
                    self.extend(sub.diffs)
                    return
            elif update.criterion in ("anyOf", "oneOf"):
                for subschema in update.subschemas:
                    sub = self.sub()
                    sub.compare(original, subschema)
                    if sub.compatible:
                        self.extend(sub.diffs)
                        self.add("SUM_TYPE_EXTENDED")
                        return
        elif original.kind is _Kind.COMBINED and update.kind is not _Kind.COMBINED:
            if len(original.subschemas) == 1:
                sub = self.sub()
                sub.compare(original.subschemas[0], update)
                if sub.compatible:
                    self.extend(sub.diffs)
                    return
            elif original.criterion == "allOf":
                for subschema in original.subschemas:
                    sub = self.sub()
                    sub.compare(subschema, update)
                    if sub.compatible:
                        self.extend(sub.diffs)
                        self.add("PRODUCT_TYPE_NARROWED")
                        return
        if not _same_class(original, update):
            # A writer that accepts nothing, or a reader that accepts everything, is always compatible.
            if original.kind is not _Kind.FALSE and not update.is_empty:
                self.add("TYPE_CHANGED")
            return
        compare_kind = _BY_KIND.get(original.kind)
        if compare_kind is not None:
            compare_kind(self, original, update)


class _PathScope:
    def __init__(self, ctx: _Context, segment: list[str]) -> None:
        self.ctx = ctx
        self.segment = segment

    def __enter__(self) -> None:
        self.ctx.path.extend(self.segment)

    def __exit__(self, *exc: object) -> None:
        del self.ctx.path[len(self.ctx.path) - len(self.segment) :]


def _same_class(original: _Node, update: _Node) -> bool:
    return original.kind is update.kind


def _path_string(path: list[str]) -> str:
    return "#/" + "/".join(path)


def _rebase(prefix: list[str], relative: str) -> str:
    rest = relative[2:]
    if not prefix:
        return relative
    return _path_string(prefix) + (f"/{rest}" if rest else "")


def _compare_limit(
    ctx: _Context, name: str, original: Any, update: Any, prefix: str, larger_is: str, smaller_is: str
) -> None:
    """ADDED / REMOVED / `larger_is` / `smaller_is` for one numeric keyword."""
    original_value = _number(original)
    update_value = _number(update)
    if original_value == update_value:
        return
    if original_value is None:
        ctx.add(f"{prefix}_ADDED", name)
    elif update_value is None:
        ctx.add(f"{prefix}_REMOVED", name)
    elif original_value < update_value:
        ctx.add(f"{prefix}_{larger_is}", name)
    else:
        ctx.add(f"{prefix}_{smaller_is}", name)


def _number(value: Any) -> Fraction | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def _compare_string(ctx: _Context, original: _Node, update: _Node) -> None:
    _compare_limit(
        ctx,
        "maxLength",
        original.get("maxLength"),
        update.get("maxLength"),
        "MAX_LENGTH",
        "INCREASED",
        "DECREASED",
    )
    _compare_limit(
        ctx,
        "minLength",
        original.get("minLength"),
        update.get("minLength"),
        "MIN_LENGTH",
        "INCREASED",
        "DECREASED",
    )
    original_pattern, update_pattern = original.get("pattern"), update.get("pattern")
    if original_pattern is None and update_pattern is not None:
        ctx.add("PATTERN_ADDED", "pattern")
    elif original_pattern is not None and update_pattern is None:
        ctx.add("PATTERN_REMOVED", "pattern")
    elif original_pattern != update_pattern:
        ctx.add("PATTERN_CHANGED", "pattern")


def _exclusive_limit(node: _Node, keyword: str) -> Any:
    value = node.get(keyword)
    # Draft-04 spells exclusive limits as booleans that modify minimum/maximum; Everit then keeps the
    # limit in minimum/maximum and has no separate exclusive limit to compare.
    return None if isinstance(value, bool) else value


def _compare_number(ctx: _Context, original: _Node, update: _Node) -> None:
    _compare_limit(
        ctx, "maximum", original.get("maximum"), update.get("maximum"), "MAXIMUM", "INCREASED", "DECREASED"
    )
    _compare_limit(
        ctx, "minimum", original.get("minimum"), update.get("minimum"), "MINIMUM", "INCREASED", "DECREASED"
    )
    _compare_limit(
        ctx,
        "exclusiveMaximum",
        _exclusive_limit(original, "exclusiveMaximum"),
        _exclusive_limit(update, "exclusiveMaximum"),
        "EXCLUSIVE_MAXIMUM",
        "INCREASED",
        "DECREASED",
    )
    _compare_limit(
        ctx,
        "exclusiveMinimum",
        _exclusive_limit(original, "exclusiveMinimum"),
        _exclusive_limit(update, "exclusiveMinimum"),
        "EXCLUSIVE_MINIMUM",
        "INCREASED",
        "DECREASED",
    )
    original_multiple, update_multiple = (
        _number(original.get("multipleOf")),
        _number(update.get("multipleOf")),
    )
    if original_multiple != update_multiple:
        if original_multiple is None:
            ctx.add("MULTIPLE_OF_ADDED", "multipleOf")
        elif update_multiple is None:
            ctx.add("MULTIPLE_OF_REMOVED", "multipleOf")
        elif original_multiple and (update_multiple / original_multiple).denominator == 1:
            ctx.add("MULTIPLE_OF_EXPANDED", "multipleOf")
        elif update_multiple and (original_multiple / update_multiple).denominator == 1:
            ctx.add("MULTIPLE_OF_REDUCED", "multipleOf")
        else:
            ctx.add("MULTIPLE_OF_CHANGED", "multipleOf")
    if original.integer != update.integer:
        ctx.add("TYPE_EXTENDED" if original.integer else "TYPE_NARROWED")


def _value_key(value: Any) -> str:
    """JSON equality as Java's JSON values have it: 1, 1.0 and true are three different values."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _compare_enum(ctx: _Context, original: _Node, update: _Node) -> None:
    original_values = {_value_key(v) for v in original.get("enum") or []}
    update_values = {_value_key(v) for v in update.get("enum") or []}
    if original_values == update_values:
        return
    if update_values >= original_values:
        ctx.add("ENUM_ARRAY_EXTENDED", "enum")
    elif original_values >= update_values:
        ctx.add("ENUM_ARRAY_NARROWED", "enum")
    else:
        ctx.add("ENUM_ARRAY_CHANGED", "enum")


def _compare_const(ctx: _Context, original: _Node, update: _Node) -> None:
    if _value_key(original.get("const")) != _value_key(update.get("const")):
        ctx.add("ENUM_ARRAY_CHANGED", "const")


def _compare_not(ctx: _Context, original: _Node, update: _Node) -> None:
    with ctx.enter("not"):
        sub = ctx.sub()
        # What the reader excludes must be excluded by the writer too: compare the other way round.
        sub.compare(update.subschemas[0], original.subschemas[0])
        ctx.add("NOT_TYPE_NARROWED" if sub.compatible else "NOT_TYPE_EXTENDED")


def _compare_combined(ctx: _Context, original: _Node, update: _Node) -> None:
    changed = _compare_criteria(ctx, original, update)
    if changed == "COMBINED_TYPE_CHANGED":
        return
    original_subschemas = _distinct(original)
    update_subschemas = _distinct(update)
    if len(original_subschemas) < len(update_subschemas):
        ctx.add("PRODUCT_TYPE_EXTENDED" if update.criterion == "allOf" else "SUM_TYPE_EXTENDED")
    elif len(original_subschemas) > len(update_subschemas):
        ctx.add("PRODUCT_TYPE_NARROWED" if update.criterion == "allOf" else "SUM_TYPE_NARROWED")
    compatible: dict[int, dict[int, list[Difference]]] = {}
    for i, original_subschema in enumerate(original_subschemas):
        with ctx.enter(original.criterion, str(i)):
            for j, update_subschema in enumerate(update_subschemas):
                sub = ctx.sub()
                sub.compare(original_subschema, update_subschema)
                if sub.compatible:
                    compatible.setdefault(i, {})[j] = sub.diffs
    matching = _maximum_matching(compatible, len(update_subschemas))
    for i, j in matching.items():
        ctx.extend(compatible[i][j])
    if len(matching) < min(len(original_subschemas), len(update_subschemas)):
        ctx.add("COMBINED_TYPE_SUBSCHEMAS_CHANGED")


def _compare_criteria(ctx: _Context, original: _Node, update: _Node) -> str | None:
    if original.criterion == update.criterion:
        return None
    if update.criterion == "anyOf":
        change = "COMBINED_TYPE_EXTENDED"
    elif update.criterion == "oneOf":
        change = "COMBINED_TYPE_EXTENDED" if len(original.subschemas) == 1 else "COMBINED_TYPE_CHANGED"
    elif len(original.subschemas) == 1 and len(update.subschemas) == 1:
        change = "COMBINED_TYPE_EXTENDED"
    else:
        change = "COMBINED_TYPE_CHANGED"
    ctx.add(change)
    return change


def _distinct(node: _Node) -> list[_Node]:
    """The subschemas with duplicates collapsed, as Confluent does with a set of schemas."""
    if node.synthetic:
        return list(node.subschemas)
    seen: set[str] = set()
    result: list[_Node] = []
    for subschema in node.subschemas:
        key = _value_key(subschema.json)
        if key not in seen:
            seen.add(key)
            result.append(subschema)
    return result


def _maximum_matching(edges: Mapping[int, Mapping[int, object]], right_size: int) -> dict[int, int]:
    """A maximum bipartite matching (left index -> right index) by augmenting paths."""
    match_right: dict[int, int] = {}

    def augment(left: int, visited: set[int]) -> bool:
        for right in edges.get(left, {}):
            if right in visited:
                continue
            visited.add(right)
            if right not in match_right or augment(match_right[right], visited):
                match_right[right] = left
                return True
        return False

    for left in edges:
        augment(left, set())
    return {left: right for right, left in match_right.items()}


def _compare_object(ctx: _Context, original: _Node, update: _Node) -> None:
    original_properties, update_properties = original.properties(), update.properties()
    original_required, update_required = original.required(), update.required()
    with ctx.enter("required"):
        for name in original_properties:
            if name not in update_properties:
                continue
            if name in original_required and name not in update_required:
                ctx.add("REQUIRED_ATTRIBUTE_REMOVED", name)
            elif name not in original_required and name in update_required:
                with_default = _has_default(update_properties[name])
                ctx.add(
                    "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED" if with_default else "REQUIRED_ATTRIBUTE_ADDED",
                    name,
                )
    with ctx.enter("properties"):
        for name in _union(original_properties, update_properties):
            with ctx.enter(name):
                _compare_property(
                    ctx, original, update, name, original_properties, update_properties, update_required
                )
    with ctx.enter("dependencies"):
        original_deps, update_deps = original.property_dependencies(), update.property_dependencies()
        for name in _union(original_deps, update_deps):
            with ctx.enter(name):
                before, after = original_deps.get(name), update_deps.get(name)
                if after is None:
                    ctx.add("DEPENDENCY_ARRAY_REMOVED")
                elif before is None:
                    ctx.add("DEPENDENCY_ARRAY_ADDED")
                elif before != after:
                    if after >= before:
                        ctx.add("DEPENDENCY_ARRAY_EXTENDED")
                    elif before >= after:
                        ctx.add("DEPENDENCY_ARRAY_NARROWED")
                    else:
                        ctx.add("DEPENDENCY_ARRAY_CHANGED")
        original_schemas, update_schemas = original.schema_dependencies(), update.schema_dependencies()
        for name in _union(original_schemas, update_schemas):
            with ctx.enter(name):
                if name not in update_schemas:
                    ctx.add("DEPENDENCY_SCHEMA_REMOVED")
                elif name not in original_schemas:
                    ctx.add("DEPENDENCY_SCHEMA_ADDED")
                else:
                    ctx.compare(original_schemas[name], update_schemas[name])
    with ctx.enter("additionalProperties"):
        if original.permits_additional_properties() != update.permits_additional_properties():
            ctx.add(
                "ADDITIONAL_PROPERTIES_ADDED"
                if update.permits_additional_properties()
                else "ADDITIONAL_PROPERTIES_REMOVED"
            )
        else:
            before_schema, after_schema = (
                original.additional_properties_schema(),
                update.additional_properties_schema(),
            )
            if before_schema is None and after_schema is not None:
                ctx.add("ADDITIONAL_PROPERTIES_NARROWED")
            elif after_schema is None and before_schema is not None:
                ctx.add("ADDITIONAL_PROPERTIES_EXTENDED")
            else:
                ctx.compare(before_schema, after_schema)
    _compare_limit(
        ctx,
        "maxProperties",
        original.get("maxProperties"),
        update.get("maxProperties"),
        "MAX_PROPERTIES",
        "INCREASED",
        "DECREASED",
    )
    _compare_limit(
        ctx,
        "minProperties",
        original.get("minProperties"),
        update.get("minProperties"),
        "MIN_PROPERTIES",
        "INCREASED",
        "DECREASED",
    )


def _compare_property(
    ctx: _Context,
    original: _Node,
    update: _Node,
    name: str,
    original_properties: Mapping[str, _Node],
    update_properties: Mapping[str, _Node],
    update_required: set[str],
) -> None:
    before, after = original_properties.get(name), update_properties.get(name)
    if after is None and before is not None:
        # Only the reader's content model matters when it drops a property the writer may write.
        if _is_open_object(update):
            ctx.add("PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL")
            return
        partial = _partial_property_schema(update, name)
        if partial is not None:
            sub = ctx.sub()
            sub.compare(before, partial)
            ctx.extend(sub.diffs)
            ctx.add(
                "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                if sub.compatible
                else "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            )
        elif before.kind is _Kind.FALSE:
            ctx.add("PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL")
        else:
            ctx.add("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL")
    elif before is None and after is not None:
        # Only the writer's content model matters when the reader adds a property.
        if _is_open_object(original):
            ctx.add(
                "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
                if after.is_empty
                else "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
            )
            return
        partial = _partial_property_schema(original, name)
        if partial is not None:
            sub = ctx.sub()
            sub.compare(partial, after)
            ctx.extend(sub.diffs)
            ctx.add(
                "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                if sub.compatible
                else "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            )
        if name in update_required:
            ctx.add(
                "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL"
                if _has_default(after)
                else "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
            )
        else:
            ctx.add("OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL")
    else:
        ctx.compare(before, after)


def _has_default(node: _Node) -> bool:
    return isinstance(node.json, Mapping) and "default" in node.json


def _is_open_object(node: _Node) -> bool:
    return (
        not node.pattern_properties()
        and node.additional_properties_schema() is None
        and node.permits_additional_properties()
    )


def _partial_property_schema(node: _Node, name: str) -> _Node | None:
    for pattern, schema in node.pattern_properties():
        try:
            if re.search(pattern, name):
                return schema
        except re.error:
            continue  # the metaschema checks `pattern`, not patternProperties keys; a bad one matches nothing
    return node.additional_properties_schema()


def _union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """Keys of both, in a stable order so that messages come out in a stable order."""
    return list(dict.fromkeys([*first, *second]))


def _compare_array(ctx: _Context, original: _Node, update: _Node) -> None:
    with ctx.enter("items"):
        ctx.compare(original.all_items_schema(), update.all_items_schema())
    _compare_tuple_items(ctx, original, update)
    with ctx.enter("additionalItems"):
        if original.permits_additional_items() != update.permits_additional_items():
            ctx.add(
                "ADDITIONAL_ITEMS_REMOVED"
                if original.permits_additional_items()
                else "ADDITIONAL_ITEMS_ADDED"
            )
        else:
            before_schema, after_schema = original.additional_items_schema(), update.additional_items_schema()
            if before_schema is None and after_schema is not None:
                ctx.add("ADDITIONAL_ITEMS_NARROWED")
            elif after_schema is None and before_schema is not None:
                ctx.add("ADDITIONAL_ITEMS_EXTENDED")
            else:
                ctx.compare(before_schema, after_schema)
    _compare_unevaluated_items(ctx, original, update)
    _compare_limit(
        ctx,
        "maxItems",
        original.get("maxItems"),
        update.get("maxItems"),
        "MAX_ITEMS",
        "INCREASED",
        "DECREASED",
    )
    _compare_limit(
        ctx,
        "minItems",
        original.get("minItems"),
        update.get("minItems"),
        "MIN_ITEMS",
        "INCREASED",
        "DECREASED",
    )
    if bool(original.get("uniqueItems")) != bool(update.get("uniqueItems")):
        ctx.add(
            "UNIQUE_ITEMS_REMOVED" if original.get("uniqueItems") else "UNIQUE_ITEMS_ADDED", "uniqueItems"
        )
    _compare_limit(
        ctx,
        "maxContains",
        original.get("maxContains"),
        update.get("maxContains"),
        "MAX_CONTAINS",
        "INCREASED",
        "DECREASED",
    )
    _compare_limit(
        ctx,
        "minContains",
        original.get("minContains"),
        update.get("minContains"),
        "MIN_CONTAINS",
        "INCREASED",
        "DECREASED",
    )


def _compare_unevaluated_items(ctx: _Context, original: _Node, update: _Node) -> None:
    before, after = original.unevaluated_items(), update.unevaluated_items()
    if before is None and after is None:
        return
    with ctx.enter("unevaluatedItems"):
        if before is None:
            ctx.add(
                "UNEVALUATED_ITEMS_REMOVED"
                if after is not None and after.kind is _Kind.FALSE
                else "UNEVALUATED_ITEMS_NARROWED"
            )
        elif after is None:
            ctx.add("UNEVALUATED_ITEMS_ADDED" if before.kind is _Kind.FALSE else "UNEVALUATED_ITEMS_EXTENDED")
        elif before.kind is _Kind.FALSE and after.kind is not _Kind.FALSE:
            ctx.add("UNEVALUATED_ITEMS_ADDED")
        elif before.kind is not _Kind.FALSE and after.kind is _Kind.FALSE:
            ctx.add("UNEVALUATED_ITEMS_REMOVED")
        elif before.is_empty and not after.is_empty:
            ctx.add("UNEVALUATED_ITEMS_NARROWED")
        elif not before.is_empty and after.is_empty:
            ctx.add("UNEVALUATED_ITEMS_EXTENDED")
        else:
            ctx.compare(before, after)


def _is_open_array(node: _Node) -> bool:
    if not node.permits_additional_items() or node.additional_items_schema() is not None:
        return False
    unevaluated = node.unevaluated_items()
    return unevaluated is None or unevaluated.is_empty


def _partial_item_schema(node: _Node) -> _Node | None:
    schema = node.additional_items_schema()
    if schema is not None:
        return schema
    unevaluated = node.unevaluated_items()
    if node.permits_additional_items() and unevaluated is not None and unevaluated.kind is not _Kind.FALSE:
        return unevaluated
    return None


def _compare_tuple_items(ctx: _Context, original: _Node, update: _Node) -> None:
    before, after = original.item_schemas(), update.item_schemas()
    for index in range(max(len(before), len(after))):
        with ctx.enter("items", str(index)):
            if index < len(before) and index < len(after):
                ctx.compare(before[index], after[index])
            elif index < len(before):
                _tuple_item_removed(ctx, before[index], update)
            else:
                _tuple_item_added(ctx, after[index], original)


def _tuple_item_removed(ctx: _Context, item: _Node, update: _Node) -> None:
    if _is_open_array(update):
        ctx.add("ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL")
        return
    partial = _partial_item_schema(update)
    if partial is not None:
        sub = ctx.sub()
        sub.compare(item, partial)
        ctx.extend(sub.diffs)
        ctx.add(
            "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            if sub.compatible
            else "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
        )
    elif item.kind is _Kind.FALSE:
        ctx.add("ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL")
    else:
        ctx.add("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL")


def _tuple_item_added(ctx: _Context, item: _Node, original: _Node) -> None:
    if _is_open_array(original):
        ctx.add(
            "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
            if item.is_empty
            else "ITEM_ADDED_TO_OPEN_CONTENT_MODEL"
        )
        return
    partial = _partial_item_schema(original)
    if partial is not None:
        sub = ctx.sub()
        sub.compare(partial, item)
        ctx.extend(sub.diffs)
        ctx.add(
            "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            if sub.compatible
            else "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
        )
    else:
        ctx.add("ITEM_ADDED_TO_CLOSED_CONTENT_MODEL")


_BY_KIND: Final[Mapping[_Kind, Callable[[_Context, _Node, _Node], None]]] = {
    _Kind.STRING: _compare_string,
    _Kind.NUMBER: _compare_number,
    _Kind.ENUM: _compare_enum,
    _Kind.CONST: _compare_const,
    _Kind.COMBINED: _compare_combined,
    _Kind.NOT: _compare_not,
    _Kind.OBJECT: _compare_object,
    _Kind.ARRAY: _compare_array,
}
