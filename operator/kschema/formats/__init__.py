"""Parsing, canonical forms, fingerprints and payload validation for Avro, JSON Schema and Protobuf."""

from __future__ import annotations

from kschema.formats.base import (
    InvalidSchemaError,
    ParsedSchema,
    Reference,
    ResolvedReference,
    SchemaFormat,
    ValidationIssue,
)

__all__ = [
    "InvalidSchemaError",
    "ParsedSchema",
    "Reference",
    "ResolvedReference",
    "SchemaFormat",
    "ValidationIssue",
    "parse_schema",
]


def parse_schema(
    format: SchemaFormat | str, schema: str, references: tuple[ResolvedReference, ...] = ()
) -> ParsedSchema:
    """Parses and validates `schema`; raises `InvalidSchemaError` naming the location and the reason."""
    try:
        fmt = SchemaFormat(format)
    except ValueError:
        raise InvalidSchemaError(
            f"unknown schema format {format!r}; expected one of AVRO, JSON, PROTOBUF", "format"
        ) from None
    if fmt is SchemaFormat.AVRO:
        from kschema.formats import avro

        return avro.parse(schema, references)
    if fmt is SchemaFormat.JSON:
        from kschema.formats import jsonschema

        return jsonschema.parse(schema, references)
    from kschema.formats import protobuf

    return protobuf.parse(schema, references)
