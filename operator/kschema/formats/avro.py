"""Avro: parsing with Apache Avro Java's strictness, a canonical form, fingerprints and payload validation.

The schema is walked once into a small typed model (`AvroType`) that the compatibility rules in
`kschema.compat.avro` use; names are resolved the way Avro's Java parser resolves them (fullnames, the
enclosing namespace, then the null namespace). The walk rejects what Apache Avro Java's `Schema.Parser`
rejects and fastavro lets through (records without `fields`, duplicate field names, field aliases that
collide, invalid names, defaults that do not match their type), then fastavro parses the normalised schema,
so payload validation is fastavro's own.

Canonical form: Avro's Parsing Canonical Form (fullnames, no `namespace`/`doc`, fixed key order, no
whitespace) extended with what changes how data is read or what a value means: field and enum defaults,
aliases (as fullnames, sorted), and logical types with their parameters. Named types defined by references
appear by name only: the references are part of the fingerprint instead.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

import fastavro
import fastavro.schema
import fastavro.validation

from kschema.formats.base import (
    InvalidSchemaError,
    ResolvedReference,
    SchemaFormat,
    ValidationIssue,
    references_key,
)
from kschema.formats.budget import LIMITS

__all__ = [
    "MAX_NESTING",
    "AvroArray",
    "AvroEnum",
    "AvroField",
    "AvroFixed",
    "AvroMap",
    "AvroPrimitive",
    "AvroRecord",
    "AvroSchema",
    "AvroType",
    "AvroUnion",
    "parse",
]

PRIMITIVES: Final = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
# Real schemas nest a few levels; the limit keeps every recursive walk (here, in fastavro and in the
# compatibility rules) far from Python's recursion limit.
MAX_NESTING: Final = 100
# How deep references may refer to references; real chains are short.
MAX_REFERENCE_DEPTH: Final = 32
# Only in the form handed to fastavro, never in canonical text; see `_Emitter`.
_NULL_NAMESPACE: Final = "kschema_null_namespace"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELD_ORDERS: Final = frozenset({"ascending", "descending", "ignore"})
_INT_RANGE: Final = (-(2**31), 2**31 - 1)
_LONG_RANGE: Final = (-(2**63), 2**63 - 1)


@dataclass(eq=False, slots=True)
class AvroPrimitive:
    kind: str
    logical: tuple[tuple[str, Any], ...] = ()


@dataclass(eq=False, slots=True)
class AvroField:
    name: str
    type: AvroType
    aliases: tuple[str, ...]
    has_default: bool
    default: Any = None


@dataclass(eq=False, slots=True)
class AvroRecord:
    name: str  # fullname
    aliases: tuple[str, ...]  # fullnames
    fields: list[AvroField] = field(default_factory=list)
    by_name: dict[str, AvroField] = field(default_factory=dict)
    kind: str = "record"
    # What the compatibility checker derives from the finished record once (`kschema.compat.avro`).
    derived: Any = field(default=None, repr=False)

    @property
    def short_name(self) -> str:
        return self.name.rpartition(".")[2]


@dataclass(eq=False, slots=True)
class AvroEnum:
    name: str
    aliases: tuple[str, ...]
    symbols: tuple[str, ...]
    default: str | None
    kind: str = "enum"

    @property
    def short_name(self) -> str:
        return self.name.rpartition(".")[2]


@dataclass(eq=False, slots=True)
class AvroFixed:
    name: str
    aliases: tuple[str, ...]
    size: int
    logical: tuple[tuple[str, Any], ...] = ()
    kind: str = "fixed"

    @property
    def short_name(self) -> str:
        return self.name.rpartition(".")[2]


@dataclass(eq=False, slots=True)
class AvroArray:
    items: AvroType
    kind: str = "array"


@dataclass(eq=False, slots=True)
class AvroMap:
    values: AvroType
    kind: str = "map"


@dataclass(eq=False, slots=True)
class AvroUnion:
    branches: tuple[AvroType, ...]
    kind: str = "union"


AvroNamed: TypeAlias = AvroRecord | AvroEnum | AvroFixed
AvroType: TypeAlias = AvroPrimitive | AvroRecord | AvroEnum | AvroFixed | AvroArray | AvroMap | AvroUnion


@dataclass(frozen=True, slots=True)
class AvroSchema:
    """A parsed Avro schema. `root` is the typed model the compatibility rules walk; `fastavro_schema` is
    the same schema parsed by fastavro (self-contained: referenced named types are inlined)."""

    raw: str
    canonical: str
    fingerprint: str
    references: tuple[ResolvedReference, ...]
    root: AvroType
    fastavro_schema: Any = field(repr=False, compare=False)
    validation_cost: int | None = field(default=None, compare=False)
    """The most steps validating any payload can take, when the schema bounds it (see `_validation_cost`)."""

    @property
    def format(self) -> SchemaFormat:
        return SchemaFormat.AVRO

    def validate(self, payload: Any) -> list[ValidationIssue]:
        """Checks a payload given as fastavro reads and writes it (dicts for records, lists, str, bytes,
        numbers, None; a union value as the plain value or fastavro's `(name, value)` tuple)."""
        try:
            fastavro.validation.validate(payload, self.fastavro_schema, raise_errors=True)
        except fastavro.validation.ValidationError as exc:
            return [_validation_issue(error) for error in exc.errors]
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
            # fastavro's logical-type writers raise these for values they cannot convert (a str for a
            # timestamp, a float for a decimal): that is a payload that does not conform.
            return [ValidationIssue("", f"value cannot be encoded: {exc}")]
        except RecursionError:
            return [ValidationIssue("", "payload nests too deeply to validate")]
        return []


def parse(schema: str, references: tuple[ResolvedReference, ...] = ()) -> AvroSchema:
    """Parses an Avro schema (JSON text); named types from `references` (and their own references, depth
    first) are defined before it. Raises `InvalidSchemaError` with a JSON-pointer location."""
    try:
        return _parse(schema, references)
    except InvalidSchemaError:
        raise
    except RecursionError:
        raise InvalidSchemaError(f"schema nests deeper than {MAX_NESTING} levels") from None
    except UnicodeError:
        raise InvalidSchemaError("schema is not valid UTF-8 text (it holds unpaired surrogates)") from None
    except (fastavro.schema.SchemaParseException, fastavro.schema.UnknownType) as exc:
        # What fastavro documents it raises for a bad schema. Nothing broader is caught: anything else
        # is a bug or an infrastructure failure, and must not be reported as a bad schema for ever.
        raise InvalidSchemaError(f"fastavro rejected the schema: {exc}") from None


def resolved_text(schema: AvroSchema) -> str:
    """The schema with the named types of its references written out at their first use (Confluent's
    `format=resolved`), as compact JSON in the canonical key order."""
    return _Emitter(done=set()).emit(schema.root)


def _parse(schema: str, references: tuple[ResolvedReference, ...]) -> AvroSchema:
    if not isinstance(schema, str):
        raise InvalidSchemaError(f"schema must be text, not {type(schema).__name__}")
    # Surrogate escapes (bytes that were not UTF-8) would otherwise surface later, when hashing.
    schema.encode("utf-8")
    names: dict[str, AvroNamed] = {}
    referenced: list[AvroNamed] = []
    _load_references(references, names, referenced, ancestry=(), seen=set(), depth=0)
    walker = _Walker(names)
    root = walker.walk(_load_json(schema, ""), "", "", 0)

    canonical = _Emitter(done={n.name for n in referenced}).emit(root)
    digest = hashlib.sha256(canonical.encode("utf-8"))
    if references:
        digest.update(json.dumps(references_key(references), sort_keys=True, separators=(",", ":")).encode())
    # fastavro gets a self-contained schema: referenced types are written out at their first use.
    all_names = list(names)
    mixed = any("." in n for n in all_names) and any("." not in n for n in all_names)
    fastavro_form = json.loads(_Emitter(done=set(), fastavro=True, rename_null_namespace=mixed).emit(root))
    parsed = fastavro.parse_schema(fastavro_form)
    cost = _validation_cost(root)
    return AvroSchema(schema, canonical, digest.hexdigest(), references, root, parsed, cost)


class _PayloadDecides(Exception):
    pass


def _validation_cost(root: AvroType) -> int | None:
    """The most values fastavro's validation of any payload can look at, when the schema alone bounds
    it: fastavro visits only the fields, union branches and named types the schema names (extra keys of
    a payload are never looked at, and a payload nested deeper than the schema fails at its first value
    of the wrong type). None when an array or a map (whose length the payload chooses) or a recursive
    named type (whose depth it chooses) lets the payload decide, and when the count is past the
    validation budget (a type used over and over): then the payload, which is always smaller than that,
    is measured instead. Parsing bounds the schema's nesting."""
    on_path: set[int] = set()
    known: dict[int, int] = {}

    def walk(node: AvroType) -> int:
        if isinstance(node, AvroArray | AvroMap):
            raise _PayloadDecides
        if isinstance(node, AvroUnion):
            return 1 + sum(walk(branch) for branch in node.branches)
        if isinstance(node, AvroRecord):
            if id(node) in known:
                return known[id(node)]
            if id(node) in on_path:
                raise _PayloadDecides
            on_path.add(id(node))
            try:
                cost = known[id(node)] = 1 + sum(walk(f.type) for f in node.fields)
            finally:
                on_path.discard(id(node))
            return cost
        return 1  # primitives, enums and fixed

    try:
        cost = walk(root)
    except _PayloadDecides:
        return None
    return cost if cost <= LIMITS.validate_steps else None


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSchemaError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", where
        ) from None
    except RecursionError:
        raise InvalidSchemaError(f"schema nests deeper than {MAX_NESTING} levels", where) from None


def _load_references(
    references: Sequence[ResolvedReference],
    names: dict[str, AvroNamed],
    referenced: list[AvroNamed],
    ancestry: tuple[tuple[str, int], ...],
    seen: set[tuple[str, int]],
    depth: int,
) -> None:
    """Defines the named types of `references` in `names`, each reference's own references first. The
    same subject version reached twice (a diamond) is loaded once; one that refers back to itself is a
    cycle."""
    if depth > MAX_REFERENCE_DEPTH:
        raise InvalidSchemaError(f"references nest deeper than {MAX_REFERENCE_DEPTH} levels", "references")
    for index, ref in enumerate(references):
        key = (ref.reference.subject, ref.reference.version)
        where = f"references/{index}"
        if key in ancestry:
            raise InvalidSchemaError(
                f"reference cycle: {ref.reference.subject} version {ref.reference.version} refers back to "
                "itself",
                where,
            )
        if key in seen:
            continue
        try:
            _load_references(ref.references, names, referenced, (*ancestry, key), seen, depth + 1)
            before = set(names)
            if not isinstance(ref.schema, str):
                raise InvalidSchemaError("reference schema must be text")
            ref.schema.encode("utf-8")
            _Walker(names).walk(_load_json(ref.schema, ""), "", "", 0)
            referenced.extend(names[n] for n in names if n not in before)
        except InvalidSchemaError as exc:
            inner = exc.location
            sep = "/" if inner and not inner.startswith("/") else ""
            raise InvalidSchemaError(
                f"in reference {ref.reference.name!r}: {exc.reason}", f"{where}{sep}{inner}"
            ) from None
        seen.add(key)


def _fullname(name: Any, namespace: Any, enclosing: str, where: str) -> tuple[str, str]:
    """(fullname, namespace) of a named type definition, per the Avro specification."""
    if not isinstance(name, str) or not name:
        raise InvalidSchemaError("a named type needs a non-empty string 'name'", f"{where}/name")
    if namespace is not None and not isinstance(namespace, str):
        raise InvalidSchemaError("'namespace' must be a string", f"{where}/namespace")
    if "." in name:
        space, _, _ = name.rpartition(".")
        full = name
    else:
        space = enclosing if namespace is None else namespace
        full = f"{space}.{name}" if space else name
    for part in full.split("."):
        if not _NAME.fullmatch(part):
            raise InvalidSchemaError(
                f"invalid name {full!r}: each part must match [A-Za-z_][A-Za-z0-9_]*", f"{where}/name"
            )
    if full in PRIMITIVES:
        raise InvalidSchemaError(f"{full!r} is a primitive type and cannot be redefined", f"{where}/name")
    return full, space


def _aliases(value: Any, namespace: str, where: str, *, qualify: bool) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(a, str) and a for a in value):
        raise InvalidSchemaError("'aliases' must be a list of non-empty strings", f"{where}/aliases")
    if not qualify:
        return tuple(value)
    return tuple(a if "." in a or not namespace else f"{namespace}.{a}" for a in value)


def _logical(
    node: Mapping[str, Any], base: str, where: str, size: int | None = None
) -> tuple[tuple[str, Any], ...]:
    logical = node.get("logicalType")
    if logical is None:
        return ()
    if not isinstance(logical, str):
        raise InvalidSchemaError("'logicalType' must be a string", f"{where}/logicalType")
    if logical != "decimal":
        return (("logicalType", logical),)
    precision, scale = node.get("precision"), node.get("scale", 0)
    if not isinstance(precision, int) or isinstance(precision, bool) or precision <= 0:
        raise InvalidSchemaError("decimal 'precision' must be a positive integer", f"{where}/precision")
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 0:
        raise InvalidSchemaError("decimal 'scale' must be a non-negative integer", f"{where}/scale")
    if scale > precision:
        raise InvalidSchemaError("decimal 'scale' cannot exceed 'precision'", f"{where}/scale")
    if size is not None and precision > math.floor(math.log10(2) * (8 * size - 1)):
        raise InvalidSchemaError(
            f"decimal precision {precision} does not fit in a fixed of {size} bytes", f"{where}/precision"
        )
    return (("logicalType", "decimal"), ("precision", precision), ("scale", scale))


class _Walker:
    """Turns schema JSON into the typed model, checking it like Apache Avro Java's parser."""

    def __init__(self, names: dict[str, AvroNamed]) -> None:
        self.names = names

    def walk(self, node: Any, namespace: str, where: str, depth: int) -> AvroType:
        if depth > MAX_NESTING:
            raise InvalidSchemaError(f"schema nests deeper than {MAX_NESTING} levels", where)
        if isinstance(node, str):
            return self._named_or_primitive(node, namespace, where)
        if isinstance(node, list):
            return self._union(node, namespace, where, depth)
        if not isinstance(node, dict):
            raise InvalidSchemaError(
                f"a schema is a type name, an object or a union array, not {json.dumps(node)[:40]}", where
            )
        kind = node.get("type")
        if kind is None:
            raise InvalidSchemaError("missing 'type'", where)
        if isinstance(kind, (dict, list)):
            return self.walk(kind, namespace, f"{where}/type", depth + 1)
        if not isinstance(kind, str):
            raise InvalidSchemaError("'type' must be a string, an object or an array", f"{where}/type")
        if kind in PRIMITIVES:
            return AvroPrimitive(kind, _logical(node, kind, where))
        if kind in ("record", "error"):
            return self._record(node, namespace, where, depth)
        if kind == "enum":
            return self._enum(node, namespace, where)
        if kind == "fixed":
            return self._fixed(node, namespace, where)
        if kind == "array":
            if "items" not in node:
                raise InvalidSchemaError("array needs 'items'", where)
            return AvroArray(self.walk(node["items"], namespace, f"{where}/items", depth + 1))
        if kind == "map":
            if "values" not in node:
                raise InvalidSchemaError("map needs 'values'", where)
            return AvroMap(self.walk(node["values"], namespace, f"{where}/values", depth + 1))
        # {"type": "com.acme.Address"} refers to a named type, as Avro Java accepts.
        return self._named_or_primitive(kind, namespace, f"{where}/type")

    def _named_or_primitive(self, name: str, namespace: str, where: str) -> AvroType:
        if name in PRIMITIVES:
            return AvroPrimitive(name)
        candidates = [name] if "." in name else [f"{namespace}.{name}" if namespace else name, name]
        for candidate in candidates:
            found = self.names.get(candidate)
            if found is not None:
                return found
        raise InvalidSchemaError(f"unknown type {name!r} (not defined before use nor in a reference)", where)

    def _define(self, named: AvroNamed, where: str) -> None:
        if named.name in self.names:
            raise InvalidSchemaError(f"named type {named.name!r} is defined twice", f"{where}/name")
        self.names[named.name] = named

    def _union(self, node: list[Any], namespace: str, where: str, depth: int) -> AvroUnion:
        branches: list[AvroType] = []
        keys: set[str] = set()
        for index, item in enumerate(node):
            branch = self.walk(item, namespace, f"{where}/{index}", depth + 1)
            if isinstance(branch, AvroUnion):
                raise InvalidSchemaError("a union cannot directly contain another union", f"{where}/{index}")
            key = branch.name if isinstance(branch, (AvroRecord, AvroEnum, AvroFixed)) else branch.kind
            if key in keys:
                raise InvalidSchemaError(f"union contains {key!r} more than once", f"{where}/{index}")
            keys.add(key)
            branches.append(branch)
        return AvroUnion(tuple(branches))

    def _record(self, node: Mapping[str, Any], namespace: str, where: str, depth: int) -> AvroRecord:
        full, space = _fullname(node.get("name"), node.get("namespace"), namespace, where)
        record = AvroRecord(full, _aliases(node.get("aliases"), space, where, qualify=True))
        self._define(record, where)
        fields = node.get("fields")
        if not isinstance(fields, list):
            raise InvalidSchemaError("record needs a 'fields' array", f"{where}/fields")
        taken: dict[str, str] = {}
        for index, raw in enumerate(fields):
            at = f"{where}/fields/{index}"
            if not isinstance(raw, dict):
                raise InvalidSchemaError("a field must be an object", at)
            name = raw.get("name")
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise InvalidSchemaError(
                    "a field needs a 'name' matching [A-Za-z_][A-Za-z0-9_]*", f"{at}/name"
                )
            if "type" not in raw:
                raise InvalidSchemaError(f"field {name!r} has no 'type'", at)
            order = raw.get("order", "ascending")
            if order not in _FIELD_ORDERS:
                raise InvalidSchemaError("'order' must be ascending, descending or ignore", f"{at}/order")
            aliases = _aliases(raw.get("aliases"), space, at, qualify=False)
            for label in (name, *aliases):
                if label in taken:
                    raise InvalidSchemaError(
                        f"field name or alias {label!r} is already used by field {taken[label]!r}", at
                    )
                taken[label] = name
            ftype = self.walk(raw["type"], space, f"{at}/type", depth + 1)
            has_default = "default" in raw
            default = raw.get("default")
            if has_default:
                problem = _default_problem(ftype, default, depth)
                if problem:
                    raise InvalidSchemaError(
                        f"invalid default for field {name!r}: {problem}", f"{at}/default"
                    )
            avro_field = AvroField(name, ftype, aliases, has_default, default)
            record.fields.append(avro_field)
            record.by_name[name] = avro_field
        return record

    def _enum(self, node: Mapping[str, Any], namespace: str, where: str) -> AvroEnum:
        full, space = _fullname(node.get("name"), node.get("namespace"), namespace, where)
        symbols = node.get("symbols")
        if not isinstance(symbols, list):
            raise InvalidSchemaError("enum needs a 'symbols' array", f"{where}/symbols")
        for index, symbol in enumerate(symbols):
            if not isinstance(symbol, str) or not _NAME.fullmatch(symbol):
                raise InvalidSchemaError(
                    "an enum symbol must match [A-Za-z_][A-Za-z0-9_]*", f"{where}/symbols/{index}"
                )
        if len(set(symbols)) != len(symbols):
            raise InvalidSchemaError("enum symbols must be unique", f"{where}/symbols")
        default = node.get("default")
        if default is not None and default not in symbols:
            raise InvalidSchemaError(
                f"enum default {default!r} is not one of the symbols", f"{where}/default"
            )
        enum = AvroEnum(
            full, _aliases(node.get("aliases"), space, where, qualify=True), tuple(symbols), default
        )
        self._define(enum, where)
        return enum

    def _fixed(self, node: Mapping[str, Any], namespace: str, where: str) -> AvroFixed:
        full, space = _fullname(node.get("name"), node.get("namespace"), namespace, where)
        size = node.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidSchemaError("fixed needs a non-negative integer 'size'", f"{where}/size")
        fixed = AvroFixed(
            full,
            _aliases(node.get("aliases"), space, where, qualify=True),
            size,
            _logical(node, "fixed", where, size),
        )
        self._define(fixed, where)
        return fixed


def _is_int(value: Any, bounds: tuple[int, int]) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and bounds[0] <= value <= bounds[1]


def _default_problem(avro_type: AvroType, value: Any, depth: int) -> str:
    """Why `value` is not a valid default for `avro_type` ("" when it is), as Avro Java's default check."""
    if depth > MAX_NESTING:
        return "default nests too deeply"
    if isinstance(avro_type, AvroPrimitive):
        kind = avro_type.kind
        ok = {
            "null": value is None,
            "boolean": isinstance(value, bool),
            "int": _is_int(value, _INT_RANGE),
            "long": _is_int(value, _LONG_RANGE),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "double": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bytes": isinstance(value, str),
            "string": isinstance(value, str),
        }[kind]
        return "" if ok else f"{json.dumps(value)[:40]} is not a {kind}"
    if isinstance(avro_type, AvroEnum):
        if isinstance(value, str) and value in avro_type.symbols:
            return ""
        return f"{json.dumps(value)[:40]} is not a symbol of {avro_type.name}"
    if isinstance(avro_type, AvroFixed):
        return "" if isinstance(value, str) else f"{json.dumps(value)[:40]} is not a string"
    if isinstance(avro_type, AvroArray):
        if not isinstance(value, list):
            return f"{json.dumps(value)[:40]} is not an array"
        return next((p for p in (_default_problem(avro_type.items, v, depth + 1) for v in value) if p), "")
    if isinstance(avro_type, AvroMap):
        if not isinstance(value, dict):
            return f"{json.dumps(value)[:40]} is not an object"
        return next(
            (p for p in (_default_problem(avro_type.values, v, depth + 1) for v in value.values()) if p), ""
        )
    if isinstance(avro_type, AvroUnion):
        # Avro 1.12 accepts a default that matches any branch, as fastavro does.
        if any(not _default_problem(b, value, depth + 1) for b in avro_type.branches):
            return ""
        return f"{json.dumps(value)[:40]} matches no branch of the union"
    if not isinstance(value, dict):
        return f"{json.dumps(value)[:40]} is not an object"
    for f in avro_type.fields:
        if f.name in value:
            problem = _default_problem(f.type, value[f.name], depth + 1)
            if problem:
                return f"{f.name}: {problem}"
        elif not f.has_default:
            return f"missing value for field {f.name!r}"
    return ""


class _Emitter:
    """Writes the model as compact JSON text in Parsing Canonical Form key order, with defaults, aliases
    and logical types kept. Named types in `done` (those defined by references) are written by name."""

    def __init__(
        self, done: set[str], *, fastavro: bool = False, rename_null_namespace: bool = False
    ) -> None:
        self.done = set(done)
        # fastavro resolves an unqualified name against the enclosing namespace, so the form written for
        # it names every namespace explicitly, and a type in the null namespace used inside a namespaced
        # one (which a dotless name cannot reach there) gets a reserved namespace of its own.
        self.fastavro = fastavro
        self.rename_null_namespace = rename_null_namespace

    def _name(self, name: str) -> str:
        if self.rename_null_namespace and "." not in name:
            return f"{_NULL_NAMESPACE}.{name}"
        return name

    def emit(self, avro_type: AvroType) -> str:
        return "".join(self._parts(avro_type))

    def _parts(self, t: AvroType) -> Iterator[str]:
        if isinstance(t, AvroPrimitive):
            if not t.logical:
                yield _dump(t.kind)
                return
            yield '{"type":' + _dump(t.kind)
            yield from _extras(t.logical)
            yield "}"
        elif isinstance(t, AvroUnion):
            yield "["
            for index, branch in enumerate(t.branches):
                if index:
                    yield ","
                yield from self._parts(branch)
            yield "]"
        elif isinstance(t, AvroArray):
            yield '{"type":"array","items":'
            yield from self._parts(t.items)
            yield "}"
        elif isinstance(t, AvroMap):
            yield '{"type":"map","values":'
            yield from self._parts(t.values)
            yield "}"
        elif t.name in self.done:
            yield _dump(self._name(t.name))
        else:
            self.done.add(t.name)
            yield '{"name":' + _dump(self._name(t.name)) + ',"type":' + _dump(t.kind)
            if self.fastavro:
                yield ',"namespace":' + _dump(self._name(t.name).rpartition(".")[0])
            if isinstance(t, AvroRecord):
                yield ',"fields":['
                for index, f in enumerate(t.fields):
                    yield ("," if index else "") + '{"name":' + _dump(f.name) + ',"type":'
                    yield from self._parts(f.type)
                    extras: list[tuple[str, Any]] = []
                    if f.has_default:
                        extras.append(("default", f.default))
                    if f.aliases:
                        extras.append(("aliases", sorted(f.aliases)))
                    yield from _extras(tuple(extras))
                    yield "}"
                yield "]"
            elif isinstance(t, AvroEnum):
                yield ',"symbols":' + _dump(list(t.symbols))
                if t.default is not None:
                    yield ',"default":' + _dump(t.default)
            else:
                yield ',"size":' + _dump(t.size)
                yield from _extras(t.logical)
            if t.aliases:
                yield ',"aliases":' + _dump(sorted(t.aliases))
            yield "}"


def _dump(value: Any) -> str:
    if type(value) is str and value.isprintable() and '"' not in value and "\\" not in value:
        # What json.dumps writes for a string with nothing to escape (no quote, backslash or control
        # character), without its overhead: a canonical form names every field and type this way.
        return f'"{value}"'
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _extras(pairs: tuple[tuple[str, Any], ...]) -> Iterator[str]:
    for key, value in pairs:
        yield "," + _dump(key) + ":" + _dump(value)


def _validation_issue(error: Any) -> ValidationIssue:
    location = str(getattr(error, "field", "") or "").replace(f"{_NULL_NAMESPACE}.", "")
    expected = _describe(getattr(error, "schema", None))
    datum = getattr(error, "datum", None)
    shown = repr(datum)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ValidationIssue(location, f"expected {expected}, got {type(datum).__name__} {shown}")


def _describe(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "one of " + ", ".join(_describe(s) for s in schema)
    if isinstance(schema, dict):
        name = schema.get("name")
        kind = schema.get("type")
        logical = schema.get("logicalType")
        if name:
            return f"{kind} {name}"
        return f"{kind} ({logical})" if logical else str(kind)
    return str(schema)
