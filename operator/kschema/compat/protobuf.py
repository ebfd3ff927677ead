"""Protobuf compatibility, following Confluent Schema Registry's Protobuf checker.

The writer's main file is compared with the reader's: messages and enums by name (at every nesting level),
fields by number, message-typed fields by the message they name (imported messages included, compared
recursively). Each difference has Confluent's type name as its rule; the ones Confluent deems compatible
(a field removed or renamed, an enum constant added or removed, a message added or moved, ...) are
reported by `differences` but are not reader issues.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from google.protobuf import descriptor_pb2

from kschema.compat.result import Issue
from kschema.formats import ParsedSchema
from kschema.formats.budget import spend
from kschema.formats.protobuf import ProtobufSchema, parse

__all__ = ["COMPATIBLE_CHANGES", "Difference", "differences", "reader_issues"]

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

_FDP = descriptor_pb2.FieldDescriptorProto

# Scalars that read each other's encoding (protobuf's "Updating a message type" rules, as Confluent groups
# them); an enum reads like int32.
_SCALAR_GROUPS: dict[int, str] = {
    _FDP.TYPE_INT32: "varint",
    _FDP.TYPE_INT64: "varint",
    _FDP.TYPE_UINT32: "varint",
    _FDP.TYPE_UINT64: "varint",
    _FDP.TYPE_BOOL: "varint",
    _FDP.TYPE_ENUM: "varint",
    _FDP.TYPE_SINT32: "zigzag",
    _FDP.TYPE_SINT64: "zigzag",
    _FDP.TYPE_STRING: "length-delimited",
    _FDP.TYPE_BYTES: "length-delimited",
    _FDP.TYPE_FIXED32: "fixed32",
    _FDP.TYPE_SFIXED32: "fixed32",
    _FDP.TYPE_FIXED64: "fixed64",
    _FDP.TYPE_SFIXED64: "fixed64",
    _FDP.TYPE_FLOAT: "float",
    _FDP.TYPE_DOUBLE: "double",
}
_TYPE_NAMES: dict[int, str] = {
    int(value): name.removeprefix("TYPE_").lower() for name, value in _FDP.Type.items()
}

Kind = Literal["scalar", "message", "map"]
Label = Literal["optional", "required", "repeated"] | None


@dataclass(frozen=True, slots=True)
class Difference:
    """One change between a writer (original) and a reader (update) schema, with Confluent's type name."""

    rule: str
    location: str
    message: str

    @property
    def compatible(self) -> bool:
        return self.rule in COMPATIBLE_CHANGES


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
    found = _Comparison(writer, reader).run()
    unique: dict[tuple[str, str], Difference] = {}
    for diff in found:
        unique.setdefault((diff.location, diff.rule), diff)
    return list(unique.values())


def _protobuf(schema: ParsedSchema) -> ProtobufSchema:
    if isinstance(schema, ProtobufSchema):
        return schema
    return parse(schema.raw, schema.references)


# ------------------------------------------------------------------------------------------ type indexes


@dataclass(frozen=True, slots=True)
class _TypeInfo:
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


def _index(schema: ProtobufSchema) -> dict[str, _TypeInfo]:
    types: dict[str, _TypeInfo] = {}
    for fdp in schema.files.values():
        syntax = fdp.syntax or "proto2"
        stack: list[tuple[str, descriptor_pb2.DescriptorProto]] = []
        prefix = fdp.package
        for msg in fdp.message_type:
            stack.append((prefix, msg))
        for enum in fdp.enum_type:
            name = f"{prefix}.{enum.name}" if prefix else enum.name
            types[name] = _TypeInfo(name, fdp.package, fdp.name, None, enum, syntax)
        while stack:
            scope, msg = stack.pop()
            name = f"{scope}.{msg.name}" if scope else msg.name
            types[name] = _TypeInfo(name, fdp.package, fdp.name, msg, None, syntax)
            for enum in msg.enum_type:
                types[f"{name}.{enum.name}"] = _TypeInfo(
                    f"{name}.{enum.name}", fdp.package, fdp.name, None, enum, syntax
                )
            stack.extend((name, nested) for nested in msg.nested_type)
    return types


# ---------------------------------------------------------------------------------------------- comparing


@dataclass(frozen=True, slots=True)
class _FieldType:
    kind: Kind
    scalar: int = 0  # the FieldDescriptorProto type of a scalar or enum
    name: str = ""  # the full name (no leading dot) of a message or enum
    key: _FieldType | None = None
    value: _FieldType | None = None

    def describe(self) -> str:
        if self.kind == "map" and self.key is not None and self.value is not None:
            return f"map<{self.key.describe()}, {self.value.describe()}>"
        if self.name:
            return self.name
        return _TYPE_NAMES.get(self.scalar, "unknown")


class _Comparison:
    def __init__(self, writer: ProtobufSchema, reader: ProtobufSchema) -> None:
        self.writer = writer
        self.reader = reader
        self.writer_types = _index(writer)
        self.reader_types = _index(reader)
        # Message pairs already compared (their differences are in `found`) or being compared: recursive
        # and mutually recursive messages are compared once.
        self.compared: dict[tuple[str, str], bool] = {}
        self.found: list[Difference] = []

    def run(self) -> list[Difference]:
        old, new = self.writer.descriptor, self.reader.descriptor
        if old.package != new.package:
            self.add(
                "PACKAGE_CHANGED",
                "/package",
                f"package changed from {old.package or '(none)'!r} to {new.package or '(none)'!r}",
            )
        old_syntax, new_syntax = old.syntax or "proto2", new.syntax or "proto2"
        if old_syntax != new_syntax:
            self.add("SYNTAX_VERSION_CHANGED", "/syntax", f"syntax changed from {old_syntax} to {new_syntax}")
        self.compare_types(
            old.message_type,
            old.enum_type,
            old.package,
            new.message_type,
            new.enum_type,
            new.package,
            "",
        )
        return self.found

    def add(self, rule: str, location: str, message: str) -> None:
        self.found.append(Difference(rule, location, message))

    def compare_types(
        self,
        old_messages: Iterable[descriptor_pb2.DescriptorProto],
        old_enums: Iterable[descriptor_pb2.EnumDescriptorProto],
        old_scope: str,
        new_messages: Iterable[descriptor_pb2.DescriptorProto],
        new_enums: Iterable[descriptor_pb2.EnumDescriptorProto],
        new_scope: str,
        local_scope: str,
    ) -> None:
        """Compares the messages and enums declared in one scope (a file or a message), by name."""
        old_msgs = _by_name(old_messages)
        new_msgs = _by_name(new_messages)
        old_positions = {name: i for i, name in enumerate(old_msgs)}
        new_positions = {name: i for i, name in enumerate(new_msgs)}
        for name in _union(old_msgs, new_msgs):
            local = f"{local_scope}.{name}" if local_scope else name
            where = f"/{local}"
            old_msg, new_msg = old_msgs.get(name), new_msgs.get(name)
            if old_msg is not None and old_msg.options.map_entry:
                continue  # a map field's synthetic entry type: compared through the map field
            if new_msg is not None and new_msg.options.map_entry:
                continue
            if new_msg is None:
                self.add("MESSAGE_REMOVED", where, f"message {local!r} was removed")
            elif old_msg is None:
                self.add("MESSAGE_ADDED", where, f"message {local!r} was added")
            else:
                self.compare_messages(_join(old_scope, name), _join(new_scope, name))
                if old_positions[name] != new_positions[name]:
                    # Confluent: compatible, since message indexes in the wire format refer to the
                    # schema of the writer's ID.
                    self.add("MESSAGE_MOVED", where, f"message {local!r} moved to another position")
        old_en = _by_name(old_enums)
        new_en = _by_name(new_enums)
        for name in _union(old_en, new_en):
            local = f"{local_scope}.{name}" if local_scope else name
            old_enum, new_enum = old_en.get(name), new_en.get(name)
            if new_enum is None:
                self.add("ENUM_REMOVED", f"/{local}", f"enum {local!r} was removed")
            elif old_enum is None:
                self.add("ENUM_ADDED", f"/{local}", f"enum {local!r} was added")
            else:
                self.compare_enums(old_enum, new_enum, local)

    def compare_enums(
        self, old: descriptor_pb2.EnumDescriptorProto, new: descriptor_pb2.EnumDescriptorProto, local: str
    ) -> None:
        # Aliases share a number; like Confluent, the last name declared for a number counts.
        old_values = {v.number: v.name for v in old.value}
        new_values = {v.number: v.name for v in new.value}
        for number in sorted(old_values.keys() | new_values.keys()):
            where = f"/{local}/values/{number}"
            if number not in new_values:
                self.add(
                    "ENUM_CONST_REMOVED", where, f"enum constant {old_values[number]} = {number} was removed"
                )
            elif number not in old_values:
                self.add(
                    "ENUM_CONST_ADDED", where, f"enum constant {new_values[number]} = {number} was added"
                )
            elif old_values[number] != new_values[number]:
                self.add(
                    "ENUM_CONST_CHANGED",
                    where,
                    f"enum constant {number} was renamed from {old_values[number]} to {new_values[number]}",
                )

    def compare_messages(self, old_full: str, new_full: str) -> bool:
        """Compares two messages (full names); returns whether every difference found is compatible."""
        pair = (old_full, new_full)
        if pair in self.compared:
            return self.compared[pair]
        spend()
        self.compared[pair] = True  # while in progress: a recursive reference adds nothing new
        old_info = self.writer_types[old_full]
        new_info = self.reader_types[new_full]
        assert old_info.message is not None
        assert new_info.message is not None
        start = len(self.found)
        self._compare_message_bodies(old_info, new_info)
        self.compare_types(
            old_info.message.nested_type,
            old_info.message.enum_type,
            old_full,
            new_info.message.nested_type,
            new_info.message.enum_type,
            new_full,
            old_info.local_name,
        )
        compatible = all(d.compatible for d in self.found[start:])
        self.compared[pair] = compatible
        return compatible

    def _compare_message_bodies(self, old_info: _TypeInfo, new_info: _TypeInfo) -> None:
        old, new = old_info.message, new_info.message
        assert old is not None
        assert new is not None
        local = old_info.local_name
        old_oneof_of = _oneof_members(old)
        new_oneof_of = _oneof_members(new)
        old_top = {f.number: f for f in old.field if f.number not in old_oneof_of}
        new_top = {f.number: f for f in new.field if f.number not in new_oneof_of}
        old_all = {f.number: f for f in old.field}
        new_all = {f.number: f for f in new.field}
        old_oneofs = _oneofs(old, old_oneof_of)
        new_oneofs = _oneofs(new, new_oneof_of)

        # Fields moved into a oneof: a oneof may take over at most one field that existed outside any
        # oneof (two would now exclude each other), and not together with fields of an existing oneof.
        remaining_old_top = dict(old_top)
        for oneof_name, numbers in new_oneofs.items():
            moved = [n for n in numbers if n in remaining_old_top]
            existing = [n for n in numbers if n not in old_top and n in old_oneof_of]
            for number in moved:
                del remaining_old_top[number]
            where = f"/{local}/oneofs/{oneof_name}"
            if len(moved) > 1:
                names = ", ".join(repr(old_top[n].name) for n in moved)
                self.add(
                    "MULTIPLE_FIELDS_MOVED_TO_ONEOF",
                    where,
                    f"fields {names} were moved into oneof {oneof_name!r}; data that sets more than one of "
                    "them cannot be read",
                )
            elif len(moved) == 1 and existing:
                self.add(
                    "FIELD_MOVED_TO_EXISTING_ONEOF",
                    where,
                    f"field {old_top[moved[0]].name!r} was moved into oneof {oneof_name!r}, which "
                    "already had fields; data that sets both cannot be read",
                )

        for oneof_name in _union(old_oneofs, new_oneofs):
            where = f"/{local}/oneofs/{oneof_name}"
            if oneof_name not in new_oneofs:
                self.add("ONEOF_REMOVED", where, f"oneof {oneof_name!r} was removed")
            elif oneof_name not in old_oneofs:
                self.add("ONEOF_ADDED", where, f"oneof {oneof_name!r} was added")
            else:
                self._compare_oneof(
                    old_info,
                    new_info,
                    oneof_name,
                    old_oneofs[oneof_name],
                    new_oneofs[oneof_name],
                    old_all,
                    new_all,
                )

        for number in sorted(remaining_old_top.keys() | new_top.keys()):
            where = f"/{local}/fields/{number}"
            old_field, new_field = remaining_old_top.get(number), new_top.get(number)
            if new_field is None:
                assert old_field is not None
                if old_field.label == _FDP.LABEL_REQUIRED:
                    self.add(
                        "REQUIRED_FIELD_REMOVED",
                        where,
                        f"required field {old_field.name!r} ({number}) was removed",
                    )
                else:
                    self.add("FIELD_REMOVED", where, f"field {old_field.name!r} ({number}) was removed")
            elif old_field is None:
                if new_field.label == _FDP.LABEL_REQUIRED:
                    self.add(
                        "REQUIRED_FIELD_ADDED",
                        where,
                        f"required field {new_field.name!r} ({number}) was added; data written without "
                        "it cannot be read",
                    )
                else:
                    self.add("FIELD_ADDED", where, f"field {new_field.name!r} ({number}) was added")
            else:
                self.compare_fields(old_field, new_field, old_info, new_info, where)

        # Fields that moved into, out of or between oneofs are compared by number as well.
        for number in sorted(old_all.keys() & new_all.keys()):
            old_oneof, new_oneof = old_oneof_of.get(number), new_oneof_of.get(number)
            if (old_oneof is None and new_oneof is None) or (
                old_oneof is not None and old_oneof == new_oneof
            ):
                continue
            self.compare_fields(
                old_all[number], new_all[number], old_info, new_info, f"/{local}/fields/{number}"
            )

    def _compare_oneof(
        self,
        old_info: _TypeInfo,
        new_info: _TypeInfo,
        oneof_name: str,
        old_numbers: list[int],
        new_numbers: list[int],
        old_all: dict[int, descriptor_pb2.FieldDescriptorProto],
        new_all: dict[int, descriptor_pb2.FieldDescriptorProto],
    ) -> None:
        local = old_info.local_name
        old_set, new_set = set(old_numbers), set(new_numbers)
        for number in sorted(old_set | new_set):
            where = f"/{local}/oneofs/{oneof_name}/{number}"
            if number not in new_set:
                # A field that left the oneof but still exists elsewhere was relocated, not removed.
                if number not in new_all:
                    self.add(
                        "ONEOF_FIELD_REMOVED",
                        where,
                        f"field {old_all[number].name!r} ({number}) was removed from oneof {oneof_name!r}",
                    )
            elif number not in old_set:
                self.add(
                    "ONEOF_FIELD_ADDED",
                    where,
                    f"field {new_all[number].name!r} ({number}) was added to oneof {oneof_name!r}",
                )
            else:
                self.compare_fields(old_all[number], new_all[number], old_info, new_info, where)

    def compare_fields(
        self,
        old: descriptor_pb2.FieldDescriptorProto,
        new: descriptor_pb2.FieldDescriptorProto,
        old_owner: _TypeInfo,
        new_owner: _TypeInfo,
        where: str,
    ) -> None:
        spend()
        if old.name != new.name:
            self.add(
                "FIELD_NAME_CHANGED",
                where,
                f"field {old.number} was renamed from {old.name!r} to {new.name!r}",
            )
        self.compare_labels_and_types(
            _label(old, old_owner.syntax),
            _label(new, new_owner.syntax),
            self.field_type(old, self.writer_types),
            self.field_type(new, self.reader_types),
            new.name,
            where,
        )

    def compare_labels_and_types(
        self, old_label: Label, new_label: Label, old: _FieldType, new: _FieldType, name: str, where: str
    ) -> None:
        if old.kind != new.kind:
            self.add(
                "FIELD_KIND_CHANGED",
                where,
                f"field {name!r} changed from {old.kind} {old.describe()} to {new.kind} {new.describe()}",
            )
            return
        if old.kind == "scalar":
            old_group, new_group = _SCALAR_GROUPS.get(old.scalar), _SCALAR_GROUPS.get(new.scalar)
            if old_group != new_group:
                self.add(
                    "FIELD_SCALAR_KIND_CHANGED",
                    where,
                    f"field {name!r} changed type from {old.describe()} to {new.describe()}, which is "
                    "encoded differently",
                )
            elif old_label is not None and new_label is not None and old_label != new_label:
                if old_group == "length-delimited":
                    self.add(
                        "FIELD_STRING_OR_BYTES_LABEL_CHANGED",
                        where,
                        f"field {name!r} changed label from {old_label} to {new_label}",
                    )
                else:
                    self.add(
                        "FIELD_NUMERIC_LABEL_CHANGED",
                        where,
                        f"numeric field {name!r} changed label from {old_label} to {new_label}; packed "
                        "and unpacked encodings differ",
                    )
        elif old.kind == "message":
            old_info, new_info = self.writer_types.get(old.name), self.reader_types.get(new.name)
            if old_info is None or new_info is None:
                if old.name != new.name:
                    self.add(
                        "FIELD_NAMED_TYPE_CHANGED",
                        where,
                        f"field {name!r} changed type from {old.name} to {new.name}",
                    )
                return
            if old_info.local_name != new_info.local_name:
                self.add(
                    "FIELD_NAMED_TYPE_CHANGED",
                    where,
                    f"field {name!r} changed type from {old_info.full_name} to {new_info.full_name}",
                )
            elif not self.compare_messages(old_info.full_name, new_info.full_name):
                self.add(
                    "FIELD_NAMED_TYPE_CHANGED",
                    where,
                    f"message type {new_info.full_name} of field {name!r} changed incompatibly",
                )
        elif old.key is not None and new.key is not None and old.value is not None and new.value is not None:
            self.compare_labels_and_types(None, None, old.key, new.key, f"{name} key", where)
            self.compare_labels_and_types(None, None, old.value, new.value, f"{name} value", where)

    def field_type(self, fld: descriptor_pb2.FieldDescriptorProto, types: dict[str, _TypeInfo]) -> _FieldType:
        if fld.type in (_FDP.TYPE_MESSAGE, _FDP.TYPE_GROUP):
            name = fld.type_name.lstrip(".")
            info = types.get(name)
            if info is not None and info.is_map_entry and info.message is not None:
                entry = {f.number: f for f in info.message.field}
                if 1 in entry and 2 in entry:
                    return _FieldType(
                        "map", key=self.field_type(entry[1], types), value=self.field_type(entry[2], types)
                    )
            return _FieldType("message", name=name)
        if fld.type == _FDP.TYPE_ENUM:
            return _FieldType("scalar", scalar=_FDP.TYPE_ENUM, name=fld.type_name.lstrip("."))
        return _FieldType("scalar", scalar=fld.type)


def _label(fld: descriptor_pb2.FieldDescriptorProto, syntax: str) -> Label:
    """The label as Confluent's parser sees it: proto3 fields without a label have none."""
    if fld.label == _FDP.LABEL_REPEATED:
        return "repeated"
    if fld.label == _FDP.LABEL_REQUIRED:
        return "required"
    if syntax == "proto3" and not fld.proto3_optional:
        return None
    return "optional"


def _oneof_members(msg: descriptor_pb2.DescriptorProto) -> dict[int, str]:
    """Field number -> oneof name, for real oneofs (not the synthetic ones of proto3 `optional`)."""
    members: dict[int, str] = {}
    for fld in msg.field:
        if fld.HasField("oneof_index") and not fld.proto3_optional and fld.oneof_index < len(msg.oneof_decl):
            members[fld.number] = msg.oneof_decl[fld.oneof_index].name
    return members


def _oneofs(msg: descriptor_pb2.DescriptorProto, members: dict[int, str]) -> dict[str, list[int]]:
    result: dict[str, list[int]] = {}
    for fld in msg.field:
        if fld.number in members:
            result.setdefault(members[fld.number], []).append(fld.number)
    return result


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)


def _by_name(items: Iterable[_N]) -> dict[str, _N]:
    return {item.name: item for item in items}


def _union(first: Mapping[str, object], second: Mapping[str, object]) -> list[str]:
    return list(first) + [name for name in second if name not in first]


def _join(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name
