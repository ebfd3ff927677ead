"""The fields a rule can name: a tree of field names and CEL-level types built from a parsed schema, and
the fully qualified field names that Confluent's clients match metadata tag paths against (Avro
`<record full name>.<field>`, JSON Schema `$.<property>`, Protobuf `<message full name>.<field>`)."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kschema.formats import ParsedSchema, SchemaFormat

__all__ = ["FieldKind", "FieldNode", "field_tree"]

# A schema's field tree is walked to this depth; deeper nesting is left unchecked ("any").
MAX_DEPTH = 16
MAX_FIELDS = 10_000


class FieldKind(enum.StrEnum):
    INT = "int"
    DOUBLE = "double"
    STRING = "string"
    BYTES = "bytes"
    BOOL = "bool"
    LIST = "list"
    MAP = "map"
    MESSAGE = "message"
    NULL = "null"
    ANY = "any"  # a union of several types, a reference, or something not modelled: not checked


@dataclass(slots=True)
class FieldNode:
    kind: FieldKind
    full_name: str = ""  # what tag paths match
    fields: dict[str, FieldNode] = field(default_factory=dict)  # for MESSAGE
    open: bool = False  # a MESSAGE whose schema allows fields it does not list (JSON Schema)

    def walk(self, depth: int = 0) -> Iterator[FieldNode]:
        if depth > MAX_DEPTH:
            return
        for child in self.fields.values():
            yield child
            yield from child.walk(depth + 1)


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_FIELDS

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


def field_tree(parsed: ParsedSchema) -> FieldNode:
    """The root message of a schema (Avro's top-level record, JSON Schema's root object, Protobuf's first
    message), or an ANY node when the root is not a record."""
    budget = _Budget()
    if parsed.format is SchemaFormat.AVRO:
        return _avro(getattr(parsed, "root", None), "", 0, budget)
    if parsed.format is SchemaFormat.JSON:
        return _json(getattr(parsed, "contents", None), "$", 0, budget)
    return _protobuf(parsed, budget)


# Avro ---------------------------------------------------------------------------------------------------

_AVRO_PRIMITIVES = {
    "int": FieldKind.INT,
    "long": FieldKind.INT,
    "float": FieldKind.DOUBLE,
    "double": FieldKind.DOUBLE,
    "string": FieldKind.STRING,
    "bytes": FieldKind.BYTES,
    "boolean": FieldKind.BOOL,
    "null": FieldKind.NULL,
}


def _avro(node: Any, full_name: str, depth: int, budget: _Budget) -> FieldNode:
    kind = getattr(node, "kind", None)
    if node is None or depth > MAX_DEPTH or not budget.take():
        return FieldNode(FieldKind.ANY, full_name)
    if kind == "record":
        out = FieldNode(FieldKind.MESSAGE, full_name)
        for f in node.fields:
            out.fields[f.name] = _avro(f.type, f"{node.name}.{f.name}", depth + 1, budget)
        return out
    if kind == "union":
        branches = [b for b in node.branches if getattr(b, "kind", None) != "null"]
        if len(branches) == 1:
            return _avro(branches[0], full_name, depth, budget)
        return FieldNode(FieldKind.ANY, full_name)
    if kind == "enum":
        return FieldNode(FieldKind.STRING, full_name)
    if kind == "fixed":
        return FieldNode(FieldKind.BYTES, full_name)
    if kind == "array":
        return FieldNode(FieldKind.LIST, full_name)
    if kind == "map":
        return FieldNode(FieldKind.MAP, full_name)
    logical = dict(getattr(node, "logical", ()) or ())
    if logical:
        # Logical types reach rules converted (timestamps, decimals, UUIDs): not checked here.
        return FieldNode(FieldKind.ANY, full_name)
    return FieldNode(_AVRO_PRIMITIVES.get(str(kind), FieldKind.ANY), full_name)


# JSON Schema --------------------------------------------------------------------------------------------

_JSON_TYPES = {
    "integer": FieldKind.INT,
    "number": FieldKind.DOUBLE,
    "string": FieldKind.STRING,
    "boolean": FieldKind.BOOL,
    "array": FieldKind.LIST,
    "null": FieldKind.NULL,
}


def _json(node: Any, full_name: str, depth: int, budget: _Budget) -> FieldNode:
    if not isinstance(node, Mapping) or depth > MAX_DEPTH or not budget.take():
        return FieldNode(FieldKind.ANY, full_name)
    declared = node.get("type")
    if isinstance(declared, list):
        types = [t for t in declared if t != "null"]
        declared = types[0] if len(types) == 1 else None
    properties = node.get("properties")
    if declared == "object" or (declared is None and isinstance(properties, Mapping)):
        if not isinstance(properties, Mapping):
            return FieldNode(FieldKind.MAP, full_name)
        out = FieldNode(FieldKind.MESSAGE, full_name, open=node.get("additionalProperties") is not False)
        for name, sub in properties.items():
            out.fields[str(name)] = _json(sub, f"{full_name}.{name}", depth + 1, budget)
        return out
    if isinstance(declared, str) and declared in _JSON_TYPES:
        return FieldNode(_JSON_TYPES[declared], full_name)
    return FieldNode(FieldKind.ANY, full_name)


# Protobuf -----------------------------------------------------------------------------------------------

_PROTO_SCALARS = {
    1: FieldKind.DOUBLE,  # double
    2: FieldKind.DOUBLE,  # float
    3: FieldKind.INT,
    4: FieldKind.INT,
    5: FieldKind.INT,
    6: FieldKind.INT,
    7: FieldKind.INT,
    8: FieldKind.BOOL,
    9: FieldKind.STRING,
    12: FieldKind.BYTES,
    13: FieldKind.INT,
    14: FieldKind.INT,  # enum: an int in CEL
    15: FieldKind.INT,
    16: FieldKind.INT,
    17: FieldKind.INT,
    18: FieldKind.INT,
}


def _protobuf(parsed: ParsedSchema, budget: _Budget) -> FieldNode:
    names = getattr(parsed, "message_names", None)
    pool = getattr(parsed, "pool", None)
    if not names or pool is None:
        return FieldNode(FieldKind.ANY)
    return _proto_message(pool.FindMessageTypeByName(names[0]), "", 0, budget)


def _proto_message(desc: Any, full_name: str, depth: int, budget: _Budget) -> FieldNode:
    if depth > MAX_DEPTH or not budget.take():
        return FieldNode(FieldKind.ANY, full_name)
    if desc.full_name.startswith("google.protobuf."):
        return FieldNode(FieldKind.ANY, full_name)  # well-known types become CEL timestamps, wrappers...
    out = FieldNode(FieldKind.MESSAGE, full_name)
    for f in desc.fields:
        name = f"{desc.full_name}.{f.name}"
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            out.fields[f.name] = FieldNode(FieldKind.MAP, name)
        elif _is_repeated(f):
            out.fields[f.name] = FieldNode(FieldKind.LIST, name)
        elif f.message_type is not None:
            out.fields[f.name] = _proto_message(f.message_type, name, depth + 1, budget)
        else:
            out.fields[f.name] = FieldNode(_PROTO_SCALARS.get(f.type, FieldKind.ANY), name)
    return out


def _is_repeated(f: Any) -> bool:
    is_repeated = getattr(f, "is_repeated", None)
    if is_repeated is not None:
        return bool(is_repeated)
    return bool(f.label == 3)
