"""JSON Schema: parsing against the declared dialect's metaschema, `$ref` resolution through Confluent-style
references, canonical form, fingerprint and payload validation.

Confluent Schema Registry reads schemas without `$schema` as draft-07, so kschema does too. Draft-04, -06,
-07, 2019-09 and 2020-12 are accepted; each schema (and each referenced schema) is checked against its own
dialect's metaschema by the `jsonschema` library, and every `$ref` must resolve, through the `referencing`
library, to a definition in the schema or to one of the provided references (looked up by the reference
`name`, a URL or a file name, as Confluent does). Nothing is ever fetched over the network.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final
from urllib.parse import urljoin

import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema import exceptions as jsonschema_exceptions
from jsonschema import validators
from jsonschema.protocols import Validator
from referencing._core import Resolver  # referencing exports Resolver only from here

from kschema.formats import metaschema
from kschema.formats.base import (
    InvalidSchemaError,
    ResolvedReference,
    SchemaFormat,
    ValidationIssue,
    references_key,
)
from kschema.formats.budget import current_budget

__all__ = [
    "DEFAULT_DIALECT",
    "MAX_NESTING_DEPTH",
    "MAX_SCHEMA_BYTES",
    "Dialect",
    "ParsedJsonSchema",
    "iter_subschemas",
    "parse",
]

# Schemas travel inside Kubernetes objects (etcd refuses objects over about 1.5 MB) and Kafka records
# (1 MB by default), so a larger schema is a mistake, and refusing it early keeps parsing time bounded.
MAX_SCHEMA_BYTES: Final = 1024 * 1024
# JSON nesting depth (objects and arrays). One schema level takes two JSON levels (`properties` then the
# property name), so this allows 64 nested schema levels, far beyond real contracts, while keeping the
# recursive compatibility rules and the validator well inside Python's recursion limit.
MAX_NESTING_DEPTH: Final = 128


@dataclass(frozen=True, slots=True)
class Dialect:
    """A JSON Schema draft: its name, `jsonschema` validator class and `referencing` specification."""

    name: str
    uri: str
    validator: type[Validator]
    specification: referencing.Specification[Any]

    @property
    def id_keyword(self) -> str:
        return "id" if self.name == "draft-04" else "$id"

    @property
    def at_least_2019(self) -> bool:
        return self.name in ("2019-09", "2020-12")


_DIALECTS: Final = {
    d.uri: d
    for d in (
        Dialect(
            "draft-04",
            "http://json-schema.org/draft-04/schema",
            validators.Draft4Validator,
            referencing.jsonschema.DRAFT4,
        ),
        Dialect(
            "draft-06",
            "http://json-schema.org/draft-06/schema",
            validators.Draft6Validator,
            referencing.jsonschema.DRAFT6,
        ),
        Dialect(
            "draft-07",
            "http://json-schema.org/draft-07/schema",
            validators.Draft7Validator,
            referencing.jsonschema.DRAFT7,
        ),
        Dialect(
            "2019-09",
            "https://json-schema.org/draft/2019-09/schema",
            validators.Draft201909Validator,
            referencing.jsonschema.DRAFT201909,
        ),
        Dialect(
            "2020-12",
            "https://json-schema.org/draft/2020-12/schema",
            validators.Draft202012Validator,
            referencing.jsonschema.DRAFT202012,
        ),
    )
}
DEFAULT_DIALECT: Final = _DIALECTS["http://json-schema.org/draft-07/schema"]

# Keywords whose value is one subschema, a list of subschemas, or a map of name to subschema.
_SINGLE: Final = frozenset(
    {
        "additionalItems",
        "additionalProperties",
        "contains",
        "propertyNames",
        "if",
        "then",
        "else",
        "not",
        "unevaluatedItems",
        "unevaluatedProperties",
        "contentSchema",
    }
)
_LIST: Final = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_MAP: Final = frozenset({"properties", "patternProperties", "definitions", "$defs", "dependentSchemas"})
# Keywords that apply their subschemas to the same instance: a cycle through only these (and `$ref`)
# never consumes any of the payload and would recurse forever when validating.
_IN_PLACE: Final = frozenset({"allOf", "anyOf", "oneOf", "not", "if", "then", "else"})


def dialect_of(contents: Any, location: str = "") -> Dialect:
    """The dialect a schema declares with `$schema` (draft-07 when it declares none)."""
    if not isinstance(contents, Mapping) or "$schema" not in contents:
        return DEFAULT_DIALECT
    declared = contents["$schema"]
    if not isinstance(declared, str):
        raise InvalidSchemaError(
            "$schema must be a string naming a JSON Schema dialect", f"{location}/$schema"
        )
    key = declared.rstrip("#")
    dialect = _DIALECTS.get(key) or _DIALECTS.get(key.replace("https://", "http://", 1))
    if dialect is None:
        dialect = _DIALECTS.get(key.replace("http://", "https://", 1))
    if dialect is None:
        known = ", ".join(sorted(_DIALECTS))
        raise InvalidSchemaError(
            f"unsupported $schema {declared!r}; expected one of {known}", f"{location}/$schema"
        )
    return dialect


@dataclass(frozen=True, slots=True)
class ParsedJsonSchema:
    """A JSON Schema that parsed, passed its dialect's metaschema and whose references all resolve."""

    raw: str
    canonical: str
    fingerprint: str
    references: tuple[ResolvedReference, ...]
    contents: Any
    dialect: Dialect
    registry: referencing.Registry[Any] = field(repr=False, compare=False)
    _validator: Validator = field(repr=False, compare=False)
    # What other layers compute from this schema once and reuse for its lifetime (the compatibility
    # checker's model of it); a parsed schema never changes, so neither does anything derived from it.
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def format(self) -> SchemaFormat:
        return SchemaFormat.JSON

    @property
    def validation_cost(self) -> int | None:
        return None  # the payload decides how much work validation is: it is measured first

    def resolver(self) -> Resolver[Any]:
        """A resolver rooted at this schema, for following `$ref` the way the validator does."""
        return self.registry.resolver(base_uri=_own_id(self.contents, self.dialect))

    def validate(self, payload: Any) -> list[ValidationIssue]:
        """Checks a decoded JSON payload with the validator compiled once at parse time."""
        try:
            errors = sorted(self._validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
            return [ValidationIssue(_pointer(e.absolute_path), e.message) for e in errors]
        except RecursionError:
            return [ValidationIssue("", "payload nests too deeply to check against this recursive schema")]
        except referencing.exceptions.Unresolvable as exc:  # a `$dynamicRef` the parse-time check cannot see
            return [ValidationIssue("", f"schema reference {exc} cannot be resolved")]


def parse(schema: str, references: tuple[ResolvedReference, ...] = ()) -> ParsedJsonSchema:
    """Parses `schema` (JSON text) with its references; raises `InvalidSchemaError` naming where and why."""
    try:
        return _parse(schema, references)
    except InvalidSchemaError:
        raise
    except RecursionError:
        raise InvalidSchemaError(f"schema nests deeper than {MAX_NESTING_DEPTH} levels") from None
    except (jsonschema_exceptions.SchemaError, referencing.exceptions.Unresolvable) as exc:
        # Both are caught where they are located below; this is the last line for any path not covered.
        # Nothing broader is caught: anything else is a bug or an infrastructure failure, not a bad schema.
        raise InvalidSchemaError(str(exc).splitlines()[0]) from None


def _parse(schema: str, references: tuple[ResolvedReference, ...]) -> ParsedJsonSchema:
    contents = _load_json(schema, "")
    dialect = _check_against_metaschema(contents, "")
    registry: referencing.Registry[Any] = referencing.Registry()
    roots: list[tuple[str, Any, Dialect]] = [("", contents, dialect)]
    for name, ref_contents, ref_dialect in _flatten_references(references):
        resource = ref_dialect.specification.create_resource(ref_contents)
        registry = registry.with_resource(name, resource)
        own = _own_id(ref_contents, ref_dialect)
        if own and own != name:
            registry = registry.with_resource(own, resource)
        root_id = _own_id(contents, dialect)
        if root_id:
            # A relative `$ref` in a schema with an `$id` resolves against that `$id`.
            joined = urljoin(root_id, name)
            if joined != name:
                registry = registry.with_resource(joined, resource)
        roots.append((f"references/{name}", ref_contents, ref_dialect))
    root_resource = dialect.specification.create_resource(contents)
    registry = registry.with_resource(_own_id(contents, dialect), root_resource)
    if _own_id(contents, dialect):
        registry = registry.with_resource("", root_resource)
    registry = registry.crawl()
    _check_references(roots, registry)

    canonical = canonical_json(contents)
    try:
        encoded = canonical.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidSchemaError(
            f"schema is not valid UTF-8: an escape such as \\ud800 leaves an unpaired surrogate "
            f"({canonical[max(exc.start - 20, 0) : exc.start]!r} precedes it)"
        ) from None
    digest = hashlib.sha256(encoded)
    digest.update(b"\x00")
    digest.update(canonical_json(references_key(references)).encode("utf-8"))
    validator = _budgeted(dialect.validator)(
        contents, registry=registry, format_checker=dialect.validator.FORMAT_CHECKER
    )
    return ParsedJsonSchema(
        raw=schema,
        canonical=canonical,
        fingerprint=digest.hexdigest(),
        references=references,
        contents=contents,
        dialect=dialect,
        registry=registry,
        _validator=validator,
    )


@cache
def _budgeted(validator: type[Validator]) -> type[Validator]:
    """The dialect's validator with every keyword spending one step of the current work budget: a
    schema whose `allOf`/`$ref` DAG applies itself exponentially often to one value is stopped with
    `TooComplexError` instead of running for ever."""

    def counting(keyword: Callable[..., Any]) -> Callable[..., Any]:
        def apply(validator: Validator, value: Any, instance: Any, schema: Any) -> Any:
            budget = current_budget()  # `spend()` written out: this runs for every keyword applied
            if budget is not None:
                budget.spend()
            return keyword(validator, value, instance, schema)

        return apply

    counted = {name: counting(fn) for name, fn in validator.VALIDATORS.items()}
    extended: type[Validator] = validators.extend(validator, counted)  # type: ignore[no-untyped-call]
    return extended


def canonical_json(value: Any) -> str:
    """Normalised JSON: sorted keys, compact separators, non-ASCII kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _load_json(text: str, location: str) -> Any:
    where = location or "schema"
    if not isinstance(text, str):
        raise InvalidSchemaError(f"expected JSON text, got {type(text).__name__}", location)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidSchemaError(
            f"{where} is not valid UTF-8: unpaired surrogate at character {exc.start}", location
        ) from None
    if size > MAX_SCHEMA_BYTES:
        raise InvalidSchemaError(f"{where} is {size} bytes; the limit is {MAX_SCHEMA_BYTES} bytes", location)
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidSchemaError(
            f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", location
        ) from None
    except RecursionError:
        raise InvalidSchemaError(f"{where} nests deeper than {MAX_NESTING_DEPTH} levels", location) from None
    except ValueError as exc:
        raise InvalidSchemaError(f"{where} is not valid JSON: {exc}", location) from None
    depth, pointer = _max_depth(value)
    if depth > MAX_NESTING_DEPTH:
        raise InvalidSchemaError(
            f"{where} nests {depth} levels deep; the limit is {MAX_NESTING_DEPTH}", f"{location}{pointer}"
        )
    if not isinstance(value, dict | bool):
        raise InvalidSchemaError(
            f"a JSON Schema must be an object or a boolean, not {type(value).__name__}", location
        )
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _max_depth(value: Any) -> tuple[int, str]:
    """The deepest nesting in `value` and a pointer to where it is, without recursion."""
    deepest, where = 0, ""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, pointer = stack.pop()
        if isinstance(node, dict):
            items: Iterator[tuple[str, Any]] = iter(node.items())
        elif isinstance(node, list):
            items = ((str(i), v) for i, v in enumerate(node))
        else:
            continue
        if depth > deepest:
            deepest, where = depth, pointer
            if deepest > MAX_NESTING_DEPTH:
                break
        stack.extend((child, depth + 1, f"{pointer}/{_escape(key)}") for key, child in items)
    return deepest, where


def _check_against_metaschema(contents: Any, location: str) -> Dialect:
    dialect = dialect_of(contents, location)
    validator = validators.validator_for(contents, default=dialect.validator)
    try:
        metaschema.check_schema(validator, contents)
    except jsonschema_exceptions.SchemaError as exc:
        raise InvalidSchemaError(
            f"not a valid {dialect.name} JSON Schema: {_short(exc.message)}",
            f"{location}{_pointer(exc.absolute_path)}",
        ) from None
    return dialect


def _flatten_references(
    references: Sequence[ResolvedReference],
) -> list[tuple[str, Any, Dialect]]:
    """Every reference, nested ones included, parsed and checked; the first one with a name wins."""
    found: dict[str, tuple[Any, Dialect]] = {}
    stack = [(r, "references") for r in reversed(references)]
    while stack:
        ref, prefix = stack.pop()
        name = ref.reference.name
        location = f"{prefix}/{_escape(name)}"
        if not name:
            raise InvalidSchemaError("a reference needs a name (the URL or file name used in $ref)", prefix)
        if name in found:
            continue
        contents = _load_json(ref.schema, location)
        found[name] = (contents, _check_against_metaschema(contents, location))
        stack.extend((r, f"{location}/references") for r in reversed(ref.references))
    return [(name, contents, dialect) for name, (contents, dialect) in found.items()]


def iter_subschemas(contents: Any) -> Iterator[tuple[str, str, Any]]:
    """Yields (keyword, pointer suffix, subschema) for each direct subschema of a schema object."""
    if not isinstance(contents, Mapping):
        return
    for key, value in contents.items():
        if key in _SINGLE or (key == "items" and isinstance(value, dict | bool)):
            if isinstance(value, dict | bool):
                yield key, f"/{key}", value
        elif key in _LIST or (key == "items" and isinstance(value, list)):
            if isinstance(value, list):
                for index, item in enumerate(value):
                    yield key, f"/{key}/{index}", item
        elif (key in _MAP or key == "dependencies") and isinstance(value, Mapping):
            for name, item in value.items():
                if isinstance(item, dict | bool):
                    yield key, f"/{key}/{_escape(name)}", item


def _check_references(roots: list[tuple[str, Any, Dialect]], registry: referencing.Registry[Any]) -> None:
    """Every `$ref` must resolve, and no cycle of `$ref` and in-place keywords (`allOf`, `not`, ...) may
    lead back to where it started: such a schema never constrains anything and recurses forever."""
    in_place: dict[int, list[int]] = {}
    where: dict[int, str] = {}
    for location, contents, dialect in roots:
        base_resolver = registry.resolver(base_uri=_own_id(contents, dialect))
        stack: list[tuple[Any, str, Resolver[Any], Dialect]] = [(contents, location, base_resolver, dialect)]
        while stack:
            node, pointer, resolver, node_dialect = stack.pop()
            if not isinstance(node, Mapping):
                continue
            if "$schema" in node and node is not contents:
                node_dialect = dialect_of(node, pointer)
            own = _own_id(node, node_dialect)
            if own and node is not contents:
                resolver = resolver.in_subresource(node_dialect.specification.create_resource(node))
            where.setdefault(id(node), pointer or "/")
            successors = in_place.setdefault(id(node), [])
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    target = resolver.lookup(ref).contents
                except referencing.exceptions.Unresolvable:
                    raise InvalidSchemaError(
                        f"$ref {ref!r} points at neither a definition in this schema nor a provided "
                        "reference (references are matched by their name)",
                        f"{pointer}/$ref",
                    ) from None
                if isinstance(target, Mapping):
                    successors.append(id(target))
            for keyword in ("$dynamicRef", "$recursiveRef"):
                # Resolved when validating, against the dynamic scope; still, only what this schema and
                # its references define may be named, never a URL to fetch.
                dynamic = node.get(keyword)
                if not isinstance(dynamic, str):
                    continue
                if keyword == "$recursiveRef" and dynamic != "#":
                    raise InvalidSchemaError(
                        f'$recursiveRef must be "#" (got {dynamic!r}); it cannot name another document',
                        f"{pointer}/{keyword}",
                    )
                try:
                    resolver.lookup(dynamic)
                except referencing.exceptions.Unresolvable:
                    raise InvalidSchemaError(
                        f"{keyword} {dynamic!r} points at neither a definition in this schema nor a "
                        "provided reference (references are matched by their name)",
                        f"{pointer}/{keyword}",
                    ) from None
            for keyword, suffix, child in iter_subschemas(node):
                if keyword in _IN_PLACE and isinstance(child, Mapping):
                    successors.append(id(child))
                stack.append((child, f"{pointer}{suffix}", resolver, node_dialect))
    cycle_at = _find_cycle(in_place)
    if cycle_at is not None:
        raise InvalidSchemaError(
            "$ref cycle: this schema refers back to itself without describing any part of the data",
            where.get(cycle_at, ""),
        )


def _find_cycle(graph: Mapping[int, list[int]]) -> int | None:
    """A node on a cycle of `graph`, found by an iterative depth-first search, or None."""
    done: set[int] = set()
    for start in graph:
        if start in done:
            continue
        on_path: set[int] = {start}
        stack: list[tuple[int, Iterator[int]]] = [(start, iter(graph.get(start, ())))]
        while stack:
            node, successors = stack[-1]
            advanced = False
            for nxt in successors:
                if nxt in on_path:
                    return nxt
                if nxt not in done:
                    on_path.add(nxt)
                    stack.append((nxt, iter(graph.get(nxt, ()))))
                    advanced = True
                    break
            if not advanced:
                stack.pop()
                on_path.discard(node)
                done.add(node)
    return None


def _own_id(contents: Any, dialect: Dialect) -> str:
    if not isinstance(contents, Mapping):
        return ""
    value = contents.get(dialect.id_keyword)
    if not isinstance(value, str) or value.startswith("#"):
        return ""
    return value.rstrip("#")


def _escape(token: Any) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _pointer(path: Sequence[Any] | Any) -> str:
    return "".join(f"/{_escape(p)}" for p in path)


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else f"{message[:limit]}..."
