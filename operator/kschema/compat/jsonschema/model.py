"""Confluent's model of a JSON Schema, rebuilt from a parsed schema.

Confluent first loads a schema into the Everit object model, where each JSON object becomes one schema
*class* (string, number, object, array, enum, const, combined, not, ...), several classes at once become
a synthetic `allOf`, and a `type` list becomes an `anyOf`. `Loader` reproduces that model so the rules
see what Confluent's rules see.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import referencing
import referencing.exceptions
from referencing._core import Resolver  # referencing exports Resolver only from here

from kschema.compat.jsonschema.keywords import (
    ARRAY_KEYWORDS,
    KEYWORDS_OF_TYPE,
    NUMBER_KEYWORDS,
    OBJECT_KEYWORDS,
    POSITIONAL,
    STRING_KEYWORDS,
)
from kschema.formats.jsonschema import Dialect, ParsedJsonSchema

__all__ = ["Kind", "Loader", "Node"]

T = TypeVar("T")
_UNSET: Final = object()


def _view(method: Callable[[Node], T]) -> Callable[[Node], T]:
    """Computes a node's keyword view on first use and keeps it in the node."""
    name = method.__name__

    @functools.wraps(method)
    def view(node: Node) -> T:
        views = node._views
        if name in views:
            found: T = views[name]
            return found
        value = views[name] = method(node)
        return value

    return view


class Kind(enum.Enum):
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


@dataclass(eq=False)
class Node:
    """One schema in Confluent's model. Identity matters: comparisons are memoised per node pair."""

    kind: Kind
    json: Any
    loader: Loader = field(repr=False)
    resolver: Resolver[Any] | None = field(default=None, repr=False)
    integer: bool = False  # NUMBER: `type: integer`
    criterion: str = ""  # COMBINED: allOf, anyOf or oneOf
    subschemas: list[Node] = field(default_factory=list)  # COMBINED; NOT keeps its one child here
    synthetic: bool = False  # COMBINED built from one object's keywords (never collapsed as duplicates)
    # Keyword views (`@_view`) computed once: a loader and its nodes live as long as their parsed schema
    # and serve every comparison of it. Callers never change what the views return.
    _views: dict[str, Any] = field(default_factory=dict, repr=False)
    _content_key: Any = field(default=_UNSET, repr=False)
    # OBJECT: what the object rules look up of the properties (`properties.PropertyIndex`), built on
    # first use like the views.
    index: Any = field(default=None, repr=False)

    @property
    def content_key(self) -> str | None:
        """What decides every comparison of this node, when its JSON alone does: no `$ref` anywhere
        below it (a reference's target depends on where the node sits). Two nodes with the same key
        compare the same way with anything, so a comparison is computed once per pair of keys. One
        string (its hash is computed once), never None for a `REFERENCE` node."""
        known = self._content_key
        if known is _UNSET:
            digest, positional = self.loader.digest(self.json)
            known = self._content_key = (
                None
                if positional
                else "\x00".join(
                    (
                        self.loader.dialect.name,
                        self.kind.value,
                        self.criterion,
                        "integer" if self.integer else "",
                        "synthetic" if self.synthetic else "",
                        digest.hex(),
                    )
                )
            )
        found: str | None = known
        return found

    @property
    def is_empty(self) -> bool:
        return self.kind in (Kind.EMPTY, Kind.TRUE)

    def get(self, key: str) -> Any:
        value = self.json
        if type(value) is dict:  # what json.loads makes; the Mapping check below is ten times slower
            return value.get(key)
        return value.get(key) if isinstance(value, Mapping) else None

    def child(self, value: Any) -> Node:
        return self.loader.load(value, self.resolver)

    # Object keywords ------------------------------------------------------------------------------------
    @_view
    def properties(self) -> dict[str, Node]:
        value = self.get("properties")
        if not isinstance(value, Mapping):
            return {}
        return {name: self.child(schema) for name, schema in value.items()}

    @_view
    def required(self) -> set[str]:
        value = self.get("required")
        return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()

    def permits_additional_properties(self) -> bool:
        return self.get("additionalProperties") is not False

    @_view
    def additional_properties_schema(self) -> Node | None:
        value = self.get("additionalProperties")
        return self.child(value) if isinstance(value, Mapping) else None

    @_view
    def pattern_properties(self) -> list[tuple[str, Node]]:
        value = self.get("patternProperties")
        if not isinstance(value, Mapping):
            return []
        return [(pattern, self.child(schema)) for pattern, schema in value.items()]

    @_view
    def property_dependencies(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for keyword in ("dependencies", "dependentRequired"):
            value = self.get(keyword)
            if isinstance(value, Mapping):
                for name, dep in value.items():
                    if isinstance(dep, list):
                        found[name] = {d for d in dep if isinstance(d, str)}
        return found

    @_view
    def schema_dependencies(self) -> dict[str, Node]:
        found: dict[str, Node] = {}
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

    @_view
    def all_items_schema(self) -> Node | None:
        if self.loader.dialect.name == "2020-12" and "prefixItems" in (self.json or {}):
            return None  # with prefixItems, `items` describes the items after the tuple
        value = self.get("items")
        return self.child(value) if isinstance(value, Mapping | bool) else None

    @_view
    def item_schemas(self) -> list[Node]:
        value = self.get(self._tuple_keyword())
        return [self.child(v) for v in value] if isinstance(value, list) else []

    def _additional_items_value(self) -> Any:
        if self.loader.dialect.name == "2020-12":
            return self.get("items") if "prefixItems" in (self.json or {}) else None
        return self.get("additionalItems")

    def permits_additional_items(self) -> bool:
        return self._additional_items_value() is not False

    @_view
    def additional_items_schema(self) -> Node | None:
        value = self._additional_items_value()
        return self.child(value) if isinstance(value, Mapping) else None

    @_view
    def unevaluated_items(self) -> Node | None:
        value = self.get("unevaluatedItems")
        return self.child(value) if isinstance(value, Mapping | bool) else None

    @_view
    def unevaluated_properties(self) -> Node | None:
        value = self.get("unevaluatedProperties")
        return self.child(value) if isinstance(value, Mapping | bool) else None

    # Conditional keywords -------------------------------------------------------------------------------
    def conditional_part(self, keyword: str) -> Node | None:
        """`if`, `then` or `else` of a CONDITIONAL node (None when absent)."""
        value = self.get(keyword)
        return self.child(value) if isinstance(value, Mapping | bool) else None


class Loader:
    """Builds `Node`s from a parsed schema the way Everit's loader builds its schema objects."""

    def __init__(self, parsed: ParsedJsonSchema) -> None:
        self.dialect: Dialect = parsed.dialect
        # Not the parsed schema itself: it keeps this loader (`of`), and a cycle would outlive a cache's
        # eviction until the garbage collector ran.
        self._contents = parsed.contents
        self._resolver = parsed.resolver()
        self._root: Node | None = None
        self._cache: dict[int, Node] = {}
        self._digests: dict[int, tuple[bytes, bool]] = {}
        self._keep: list[Any] = []  # keeps resolved contents alive so their ids stay unique
        # One node per boolean and for "nothing": comparisons are memoised by node identity, so every
        # node must live as long as the loader.
        self._true = Node(Kind.TRUE, True, self)
        self._false = Node(Kind.FALSE, False, self)
        self._nothing = Node(Kind.EMPTY, {}, self)

    @classmethod
    def of(cls, parsed: ParsedJsonSchema) -> Loader:
        """The model of `parsed`, built on first use and kept with it: every later comparison of the same
        parsed schema reuses its nodes instead of rebuilding them."""
        found = parsed.derived.get("compat_model")
        if not isinstance(found, Loader):
            found = parsed.derived["compat_model"] = cls(parsed)
        return found

    @classmethod
    def root_of(cls, parsed: ParsedJsonSchema) -> Node:
        """`of(parsed).root()`, kept with the parsed schema as well: one lookup per comparison."""
        found = parsed.derived.get("compat_root")
        if not isinstance(found, Node):
            found = parsed.derived["compat_root"] = cls.of(parsed).root()
        return found

    def root(self) -> Node:
        if self._root is None:
            self._root = self.load(self._contents, self._resolver)
        return self._root

    def digest(self, value: Any) -> tuple[bytes, bool]:
        """A hash of a JSON value (1, 1.0 and true differ, key order does not) and whether a keyword
        that depends on the schema's position (`$ref`, ...) is anywhere in it. Computed once per object
        and array of the document, so every node's key together costs the document's size."""
        known = self._digests.get(id(value))
        if known is not None:
            return known
        digest = hashlib.blake2b(digest_size=16)
        positional = False
        if isinstance(value, Mapping):
            digest.update(b"{")
            for key in sorted(value):
                child, inner = self.digest(value[key])
                positional = positional or inner or key in POSITIONAL
                data = str(key).encode("utf-8", "surrogatepass")
                digest.update(len(data).to_bytes(8, "big"))
                digest.update(data)
                digest.update(child)
        elif isinstance(value, list):
            digest.update(b"[")
            for item in value:
                child, inner = self.digest(item)
                positional = positional or inner
                digest.update(child)
        else:
            digest.update(json.dumps(value).encode("utf-8", "surrogatepass"))
            return digest.digest(), False  # scalars are cheap and may be shared: not kept
        found = self._digests[id(value)] = (digest.digest(), positional)
        return found

    def load(self, value: Any, resolver: Resolver[Any] | None) -> Node:
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
            node = Node(Kind.EMPTY, value, self, resolver)
        elif len(parts) == 1:
            node = parts[0]
        else:
            node = Node(
                Kind.COMBINED, value, self, resolver, criterion="allOf", subschemas=parts, synthetic=True
            )
        self._cache[id(value)] = node
        return node

    def _extract(self, value: Mapping[str, Any], resolver: Resolver[Any] | None) -> list[Node]:
        def make(kind: Kind, **kwargs: Any) -> Node:
            return Node(kind, value, self, resolver, **kwargs)

        ref = value.get("$ref")
        if isinstance(ref, str):
            reference = make(Kind.REFERENCE)
            # Up to draft-07 the keywords next to `$ref` are ignored; later drafts apply them as well.
            if not self.dialect.at_least_2019:
                return [reference]
            parts = [reference]
        else:
            parts = []
        if isinstance(value.get("enum"), list):
            parts.append(make(Kind.ENUM))
        combined = [k for k in ("allOf", "anyOf", "oneOf") if isinstance(value.get(k), list)]
        for keyword in combined:
            subschemas = [self.load(v, resolver) for v in value[keyword]]
            parts.append(make(Kind.COMBINED, criterion=keyword, subschemas=subschemas))
        if "not" in value:
            parts.append(make(Kind.NOT, subschemas=[self.load(value["not"], resolver)]))
        if "const" in value and self.dialect.name != "draft-04":
            parts.append(make(Kind.CONST))
        declared = value.get("type")
        consumed: set[str] = set()
        if isinstance(declared, str):
            parts.append(self._typed(declared, value, resolver))
            consumed = KEYWORDS_OF_TYPE.get(declared, set())
        elif isinstance(declared, list):
            typed = [self._typed(t, value, resolver) for t in declared if isinstance(t, str)]
            parts.append(make(Kind.COMBINED, criterion="anyOf", subschemas=typed, synthetic=True))
            consumed = set().union(*(KEYWORDS_OF_TYPE.get(t, set()) for t in declared if isinstance(t, str)))
        # Keywords of a type that `type` did not name still apply to values of that type ("sniffed").
        present = set(value) - consumed
        if present & ARRAY_KEYWORDS:
            parts.append(make(Kind.ARRAY))
        if present & OBJECT_KEYWORDS:
            parts.append(make(Kind.OBJECT))
        if present & NUMBER_KEYWORDS:
            parts.append(make(Kind.NUMBER))
        if present & STRING_KEYWORDS:
            parts.append(make(Kind.STRING))
        if self.dialect.name not in ("draft-04", "draft-06") and present & {"if", "then", "else"}:
            parts.append(make(Kind.CONDITIONAL))
        return parts

    def _typed(self, declared: str, value: Mapping[str, Any], resolver: Resolver[Any] | None) -> Node:
        kind = {
            "string": Kind.STRING,
            "integer": Kind.NUMBER,
            "number": Kind.NUMBER,
            "boolean": Kind.BOOLEAN,
            "null": Kind.NULL,
            "array": Kind.ARRAY,
            "object": Kind.OBJECT,
        }.get(declared, Kind.EMPTY)
        return Node(kind, value, self, resolver, integer=declared == "integer")

    def dereference(self, node: Node) -> Node:
        """Follows `$ref` until a schema that is not a bare reference (Confluent's `normalizeSchema`)."""
        hops = 0
        while node.kind is Kind.REFERENCE and node.resolver is not None:
            try:
                resolved = node.resolver.lookup(str(node.get("$ref")))
            except referencing.exceptions.Unresolvable:
                return self._nothing  # parse() refuses dangling references; stay total
            if id(resolved.contents) not in self._cache:
                self._keep.append(resolved.contents)
            node = self.load(resolved.contents, resolved.resolver)
            hops += 1
            if hops > 1000:  # parse() refuses reference-only cycles; this only guards against a bug
                break
        return node
