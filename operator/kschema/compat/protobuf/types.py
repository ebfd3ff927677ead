"""What the Protobuf rules compare: every message and enum of a schema's files by full name, field types as
Confluent's parser sees them, and scalar encodings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from google.protobuf import descriptor_pb2

from kschema.formats.protobuf import ProtobufSchema

__all__ = [
    "FDP",
    "SCALAR_GROUPS",
    "FieldType",
    "Kind",
    "Label",
    "TypeInfo",
    "by_name",
    "index_types",
    "join",
    "label_of",
    "union",
]

FDP = descriptor_pb2.FieldDescriptorProto

# Scalars that read each other's encoding (protobuf's "Updating a message type" rules, as Confluent groups
# them); an enum reads like int32.
SCALAR_GROUPS: dict[int, str] = {
    FDP.TYPE_INT32: "varint",
    FDP.TYPE_INT64: "varint",
    FDP.TYPE_UINT32: "varint",
    FDP.TYPE_UINT64: "varint",
    FDP.TYPE_BOOL: "varint",
    FDP.TYPE_ENUM: "varint",
    FDP.TYPE_SINT32: "zigzag",
    FDP.TYPE_SINT64: "zigzag",
    FDP.TYPE_STRING: "length-delimited",
    FDP.TYPE_BYTES: "length-delimited",
    FDP.TYPE_FIXED32: "fixed32",
    FDP.TYPE_SFIXED32: "fixed32",
    FDP.TYPE_FIXED64: "fixed64",
    FDP.TYPE_SFIXED64: "fixed64",
    FDP.TYPE_FLOAT: "float",
    FDP.TYPE_DOUBLE: "double",
}
TYPE_NAMES: dict[int, str] = {
    int(value): name.removeprefix("TYPE_").lower() for name, value in FDP.Type.items()
}

Kind = Literal["scalar", "message", "map"]
Label = Literal["optional", "required", "repeated"] | None


@dataclass(frozen=True, slots=True)
class TypeInfo:
    full_name: str  # without the leading dot
    package: str
    file: str
    message: descriptor_pb2.DescriptorProto | None
    enum: descriptor_pb2.EnumDescriptorProto | None
    syntax: str

    @property
    def local_name(self) -> str:
        """The name inside its package, e.g. `Order.Item`."""
        if self.package and self.full_name.startswith(self.package + "."):
            return self.full_name[len(self.package) + 1 :]
        return self.full_name

    @property
    def is_map_entry(self) -> bool:
        return self.message is not None and self.message.options.map_entry


def index_types(schema: ProtobufSchema) -> dict[str, TypeInfo]:
    """Every message and enum of the schema's files by full name; built once per parsed schema."""
    found = schema.derived.get("compat_types")
    if found is None:
        found = schema.derived["compat_types"] = _index_types(schema)
    types: dict[str, TypeInfo] = found
    return types


def _index_types(schema: ProtobufSchema) -> dict[str, TypeInfo]:
    types: dict[str, TypeInfo] = {}
    for fdp in schema.files.values():
        syntax = fdp.syntax or "proto2"
        stack: list[tuple[str, descriptor_pb2.DescriptorProto]] = []
        prefix = fdp.package
        for msg in fdp.message_type:
            stack.append((prefix, msg))
        for enum in fdp.enum_type:
            name = f"{prefix}.{enum.name}" if prefix else enum.name
            types[name] = TypeInfo(name, fdp.package, fdp.name, None, enum, syntax)
        while stack:
            scope, msg = stack.pop()
            name = f"{scope}.{msg.name}" if scope else msg.name
            types[name] = TypeInfo(name, fdp.package, fdp.name, msg, None, syntax)
            for enum in msg.enum_type:
                types[f"{name}.{enum.name}"] = TypeInfo(
                    f"{name}.{enum.name}", fdp.package, fdp.name, None, enum, syntax
                )
            stack.extend((name, nested) for nested in msg.nested_type)
    return types


@dataclass(frozen=True, slots=True)
class FieldType:
    kind: Kind
    scalar: int = 0  # the FieldDescriptorProto type of a scalar or enum
    name: str = ""  # the full name (no leading dot) of a message or enum
    key: FieldType | None = None
    value: FieldType | None = None

    def describe(self) -> str:
        if self.kind == "map" and self.key is not None and self.value is not None:
            return f"map<{self.key.describe()}, {self.value.describe()}>"
        if self.name:
            return self.name
        return TYPE_NAMES.get(self.scalar, "unknown")


def label_of(fld: descriptor_pb2.FieldDescriptorProto, syntax: str) -> Label:
    """The label as Confluent's parser sees it: proto3 fields without a label have none."""
    if fld.label == FDP.LABEL_REPEATED:
        return "repeated"
    if fld.label == FDP.LABEL_REQUIRED:
        return "required"
    if syntax == "proto3" and not fld.proto3_optional:
        return None
    return "optional"


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)


def by_name(items: Iterable[_N]) -> dict[str, _N]:
    return {item.name: item for item in items}


def union(first: Mapping[str, object], second: Mapping[str, object]) -> list[str]:
    return list(first) + [name for name in second if name not in first]


def join(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name
