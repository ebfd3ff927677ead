"""Evaluates one record of the compatibility conformance corpus (tests/data/conformance/*.jsonl) with
kschema's own parsers and rules, so tests, the `kschema compat --cases` batch mode and benchmarks share one
reading of the record format."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kschema.compat.checker import VersionedSchema, check_compatibility, check_reader_writer
from kschema.compat.levels import CompatibilityLevel
from kschema.formats import (
    InvalidSchemaError,
    ParsedSchema,
    Reference,
    ResolvedReference,
    SchemaFormat,
    parse_schema,
)

__all__ = [
    "CaseVerdict",
    "evaluate_case",
    "expected_verdict",
    "parse_field",
    "resolved_references",
    "schema_text",
]


@dataclass(frozen=True)
class CaseVerdict:
    """What kschema answers for one record: `compatible` is None when a schema did not parse, and then
    `messages` holds the parser's located error."""

    id: str
    compatible: bool | None
    messages: list[str]


def expected_verdict(record: Mapping[str, Any]) -> bool:
    """What the record's source asserts for the stated check."""
    return bool(record["expected_compatible"])


def schema_text(fmt: SchemaFormat, value: Any) -> str:
    """The schema text of a record field: Avro and JSON Schema records hold JSON values, Protobuf ones
    hold `.proto` text (or a base64 descriptor) as a string."""
    if fmt is SchemaFormat.PROTOBUF and isinstance(value, str):
        return value
    return json.dumps(value)


def resolved_references(value: Any) -> tuple[ResolvedReference, ...]:
    """Turns a record's `references_*` value (a list of {name, schema, subject, version, references?},
    or that list as a JSON string, or null) into resolved references, nested ones included."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list):
        raise InvalidSchemaError("references must be a list", "references")
    result: list[ResolvedReference] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise InvalidSchemaError("a reference needs a string 'name'", f"references/{index}")
        schema = item.get("schema")
        if schema is None:
            if _is_built_in(item["name"]):
                continue  # the bundled file of that name is used, as Confluent does
            raise InvalidSchemaError(
                f"reference {item['name']!r} has no schema text, and no built-in file has that name",
                f"references/{index}/schema",
            )
        if not isinstance(schema, str):
            schema = json.dumps(schema)
        # Confluent's "latest" version is -1; corpus records always name one, but be explicit about it.
        version = item.get("version", -1)
        result.append(
            ResolvedReference(
                Reference(item["name"], str(item.get("subject", item["name"])), int(version)),
                schema,
                resolved_references(item.get("references")),
            )
        )
    return tuple(result)


def _is_built_in(name: str) -> bool:
    """Whether an import path names a file every Protobuf schema can import without a reference."""
    from kschema.formats.protobuf.protoc import is_known_import

    return is_known_import(name)


def evaluate_case(record: Mapping[str, Any]) -> CaseVerdict:
    """Runs the record's check: for `kind == "pair"` whether `reader_or_new` reads data written with
    `writer_or_old`; for `kind == "level"` the registry check of `reader_or_new` against
    `previous_schemas` (oldest first) at `level`."""
    case_id = str(record.get("id", ""))
    try:
        fmt = SchemaFormat(record["format"])
        new = parse_field(fmt, record["reader_or_new"], record.get("references_new"), "reader_or_new")
        if record["kind"] == "pair":
            old = parse_field(fmt, record["writer_or_old"], record.get("references_old"), "writer_or_old")
            issues = check_reader_writer(new, old)
            messages = [f"{i.location}: {i.message}" if i.location else i.message for i in issues]
            return CaseVerdict(case_id, not issues, messages)
        previous: Sequence[Any] = record.get("previous_schemas") or [record["writer_or_old"]]
        previous_refs: Sequence[Any] = record.get("references_previous") or [None] * len(previous)
        if len(previous_refs) != len(previous):
            raise InvalidSchemaError(
                "references_previous must have one entry per previous schema", "references_previous"
            )
        history = [
            VersionedSchema(
                number,
                parse_field(fmt, schema, refs, f"previous_schemas/{number - 1}"),
            )
            for number, (schema, refs) in enumerate(zip(previous, previous_refs, strict=True), start=1)
        ]
        result = check_compatibility(VersionedSchema(None, new), history, CompatibilityLevel(record["level"]))
        return CaseVerdict(case_id, result.compatible, result.messages)
    except InvalidSchemaError as exc:
        return CaseVerdict(case_id, None, [str(exc)])


def parse_field(fmt: SchemaFormat, value: Any, references: Any, where: str) -> ParsedSchema:
    """Parses one schema field of a record (`where` names it in errors) with its references."""
    try:
        return parse_schema(fmt, schema_text(fmt, value), resolved_references(references))
    except InvalidSchemaError as exc:
        location = f"{where}{'/' if exc.location and not exc.location.startswith('/') else ''}"
        raise InvalidSchemaError(exc.reason, f"{location}{exc.location}") from None
