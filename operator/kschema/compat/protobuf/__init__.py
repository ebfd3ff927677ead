"""Protobuf compatibility, following Confluent Schema Registry's Protobuf checker
(`io.confluent.kafka.schemaregistry.protobuf.diff`).

The writer's main file is compared with the reader's: messages and enums by name (at every nesting level),
fields by number, message-typed fields by the message they name (imported messages included, compared
recursively). Each difference has Confluent's type name as its rule; the ones Confluent deems compatible
(a field removed or renamed, an enum constant added or removed, a message added or moved, ...) are
reported by `differences` but are not reader issues.

The package: `differences` (the rule names and which are compatible), `types` (the type index and field
types), `messages` (the comparison) and `oneofs` (the oneof rules).
"""

from __future__ import annotations

from kschema.compat.protobuf.differences import COMPATIBLE_CHANGES, Difference
from kschema.compat.protobuf.messages import Comparison
from kschema.compat.result import Issue
from kschema.formats import ParsedSchema
from kschema.formats.protobuf import ProtobufSchema, parse

__all__ = ["COMPATIBLE_CHANGES", "Difference", "differences", "reader_issues"]


def reader_issues(reader: ParsedSchema, writer: ParsedSchema) -> list[Issue]:
    """Why a reader with schema `reader` cannot read data written with `writer` (empty when it can)."""
    return [
        Issue(d.location, d.rule, d.message)
        for d in differences(_protobuf(writer), _protobuf(reader))
        if not d.compatible
    ]


def differences(writer: ProtobufSchema, reader: ProtobufSchema) -> list[Difference]:
    """Every difference from `writer` (Confluent's "original") to `reader` (its "update"), compatible ones
    included, without duplicates, in a stable order."""
    found = Comparison(writer, reader).run()
    unique: dict[tuple[str, str], Difference] = {}
    for diff in found:
        unique.setdefault((diff.location, diff.rule), diff)
    return list(unique.values())


def _protobuf(schema: ParsedSchema) -> ProtobufSchema:
    if isinstance(schema, ProtobufSchema):
        return schema
    return parse(schema.raw, schema.references)
