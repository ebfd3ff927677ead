"""An object node's properties as the object rules look them up, built once per node: a parsed schema's
model (and so this index) lives as long as the schema and serves every comparison of it.

Between two versions of a record most properties are unchanged. A property whose kind is compared by its
own keywords only (a string, a number, an enum, ...) finds no difference with a property of the same
content: every keyword it has is equal. Such properties are entries `content key + NUL + name`, so one
set difference of two objects' entries finds the properties to visit, without a loop over the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from kschema.compat.jsonschema.keywords import OBJECT_KEYWORDS
from kschema.compat.jsonschema.model import Kind, Node

__all__ = ["SELF_EQUAL_KINDS", "PropertyIndex", "is_open_object", "property_index"]

# Kinds whose comparison with a node of the same content finds no difference: their rules compare the two
# nodes' own keywords (limits, pattern, multipleOf, the integer flag, enum, const), which are then equal.
# Combinations, `not`, conditions, objects and arrays compare subschemas (`not` always reports one
# difference, even between equal contents), so properties of those kinds are always compared.
SELF_EQUAL_KINDS: Final = frozenset(
    {
        Kind.EMPTY,
        Kind.TRUE,
        Kind.FALSE,
        Kind.STRING,
        Kind.NUMBER,
        Kind.BOOLEAN,
        Kind.NULL,
        Kind.ENUM,
        Kind.CONST,
    }
)
_OBJECT_KEYWORDS_BUT_PROPERTIES: Final = OBJECT_KEYWORDS - {"properties"}


class PropertyIndex:
    """One object node's properties: each by name with its content key and position; the entries of
    those whose kind is in `SELF_EQUAL_KINDS` (with the name of each entry), the names of the others in
    declaration order; the required names; whether `properties` is the only object keyword; and, once
    asked, whether the content model is fully open. Never changed once built."""

    __slots__ = (
        "_open",
        "entries",
        "keys",
        "names",
        "nodes",
        "only_properties",
        "others",
        "positions",
        "required",
    )

    def __init__(self, node: Node) -> None:
        self.nodes: dict[str, Node] = node.properties()
        self.keys: dict[str, str | None] = {}
        self.names: dict[str, str] = {}
        others: list[str] = []
        for name, child in self.nodes.items():
            key = self.keys[name] = child.content_key
            if key is not None and child.kind in SELF_EQUAL_KINDS:
                # A content key has a fixed number of NULs, so the entry tells its key and name apart.
                self.names[f"{key}\x00{name}"] = name
            else:
                others.append(name)
        self.entries: frozenset[str] = frozenset(self.names)
        self.others: tuple[str, ...] = tuple(others)
        self.positions: dict[str, int] = {name: i for i, name in enumerate(self.nodes)}
        self.required: frozenset[str] = frozenset(node.required())
        value = node.json
        self.only_properties: bool = not (
            isinstance(value, Mapping) and _OBJECT_KEYWORDS_BUT_PROPERTIES.intersection(value)
        )
        self._open: bool | None = None

    def is_open(self, node: Node) -> bool:
        """`is_open_object(node)` for the node of this index, computed on first use."""
        found = self._open
        if found is None:
            found = self._open = is_open_object(node)
        return found


def property_index(node: Node) -> PropertyIndex:
    """The node's `PropertyIndex`, built on first use and kept in the node."""
    found = node.index
    if found is None:
        found = node.index = PropertyIndex(node)
    index: PropertyIndex = found
    return index


def is_open_object(node: Node) -> bool:
    """Fully open: no patternProperties, additionalProperties absent or `true`, and no unevaluatedProperties
    other than an empty schema."""
    if node.pattern_properties() or node.additional_properties_schema() is not None:
        return False
    if not node.permits_additional_properties():
        return False
    if node.get("additionalProperties") is True:
        return True  # every property is evaluated, so unevaluatedProperties never applies
    unevaluated = node.unevaluated_properties()
    return unevaluated is None or unevaluated.is_empty
