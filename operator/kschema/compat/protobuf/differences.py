"""Protobuf differences: Confluent's difference type names (`io.confluent.kafka.schemaregistry.protobuf.diff
.Difference.Type`) and which of them are compatible."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMPATIBLE_CHANGES", "Difference"]

# Confluent's compatible difference types (io.confluent.kafka.schemaregistry.protobuf.diff.SchemaDiff),
# plus SYNTAX_VERSION_CHANGED, which Confluent does not check: proto2 and proto3 share the wire format.
COMPATIBLE_CHANGES = frozenset(
    {
        "MESSAGE_ADDED",
        "MESSAGE_MOVED",
        "ENUM_ADDED",
        "ENUM_REMOVED",
        "ENUM_CONST_ADDED",
        "ENUM_CONST_CHANGED",
        "ENUM_CONST_REMOVED",
        "FIELD_ADDED",
        "FIELD_REMOVED",
        "FIELD_NAME_CHANGED",
        "FIELD_STRING_OR_BYTES_LABEL_CHANGED",
        "ONEOF_ADDED",
        "ONEOF_REMOVED",
        "ONEOF_FIELD_ADDED",
        "SYNTAX_VERSION_CHANGED",
    }
)


@dataclass(frozen=True, slots=True)
class Difference:
    """One change between a writer (original) and a reader (update) schema, with Confluent's type name."""

    rule: str
    location: str
    message: str

    @property
    def compatible(self) -> bool:
        return self.rule in COMPATIBLE_CHANGES
