"""The comparison of two Protobuf schemas: messages and enums by name at every nesting level, fields by
number, message-typed fields by the message they name (imported messages included, compared recursively)."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor_pb2

from kschema.compat.protobuf.differences import Difference
from kschema.compat.protobuf.oneofs import MessageFields, check_membership, compare_oneofs
from kschema.compat.protobuf.types import (
    FDP,
    SCALAR_GROUPS,
    FieldType,
    Label,
    TypeInfo,
    by_name,
    index_types,
    join,
    label_of,
    union,
)
from kschema.compat.shared import SharedTuples
from kschema.formats.budget import spend
from kschema.formats.protobuf import ProtobufSchema

__all__ = ["Comparison"]

# A scalar field as far as its comparison goes: number, name, label, scalar type and enum name.
ScalarFacts = tuple[int, str, Label, int, str]

# The facts of every message's scalar fields, shared (see `SharedTuples`).
_shared_facts: SharedTuples[ScalarFacts] = SharedTuples(20_000)


class Comparison:
    def __init__(self, writer: ProtobufSchema, reader: ProtobufSchema) -> None:
        self.writer = writer
        self.reader = reader
        self.writer_types = index_types(writer)
        self.reader_types = index_types(reader)
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
            nested=False,
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
        *,
        nested: bool = True,
    ) -> None:
        """Compares the messages and enums declared in one scope (a file or a message), by name."""
        old_msgs, old_positions, old_en = _scope(self.writer, nested, old_scope, old_messages, old_enums)
        new_msgs, new_positions, new_en = _scope(self.reader, nested, new_scope, new_messages, new_enums)
        for name in union(old_msgs, new_msgs):
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
                self.compare_messages(join(old_scope, name), join(new_scope, name))
                if old_positions[name] != new_positions[name]:
                    # Confluent: compatible, since message indexes in the wire format refer to the
                    # schema of the writer's ID.
                    self.add("MESSAGE_MOVED", where, f"message {local!r} moved to another position")
        for name in union(old_en, new_en):
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

    def _compare_message_bodies(self, old_info: TypeInfo, new_info: TypeInfo) -> None:
        assert old_info.message is not None
        assert new_info.message is not None
        local = old_info.local_name
        old, old_scalars, old_others = self._fields_of(self.writer, self.writer_types, old_info)
        new, new_scalars, new_others = self._fields_of(self.reader, self.reader_types, new_info)
        moved_in = check_membership(self, local, old, new)
        compare_oneofs(self, old_info, new_info, old, new)

        # Fields outside any oneof with the same number, name, label and scalar type on both sides:
        # `compare_fields` would find nothing, and most fields of two versions of a message are these.
        remaining_old_top = old.top
        if moved_in:
            remaining_old_top = {number: fld for number, fld in old.top.items() if number not in moved_in}
            unchanged = {facts[0] for facts in old_scalars & new_scalars}
            numbers = (remaining_old_top.keys() | new.top.keys()) - unchanged
        else:
            # The same numbers, from the few facts only one side has (a field added, removed or changed)
            # and the fields that are not scalars, without visiting the unchanged ones.
            numbers = {facts[0] for facts in old_scalars ^ new_scalars} | old_others | new_others
        for number in sorted(numbers):
            where = f"/{local}/fields/{number}"
            old_field, new_field = remaining_old_top.get(number), new.top.get(number)
            if new_field is None:
                assert old_field is not None
                if old_field.label == FDP.LABEL_REQUIRED:
                    self.add(
                        "REQUIRED_FIELD_REMOVED",
                        where,
                        f"required field {old_field.name!r} ({number}) was removed",
                    )
                else:
                    self.add("FIELD_REMOVED", where, f"field {old_field.name!r} ({number}) was removed")
            elif old_field is None:
                if new_field.label == FDP.LABEL_REQUIRED:
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

        if not old.oneof_of and not new.oneof_of:
            return  # no field is in a oneof on either side: none moved into, out of or between oneofs
        # Fields that moved into, out of or between oneofs (a renamed oneof included) are compared by
        # number as well.
        for number in sorted(old.all.keys() & new.all.keys()):
            old_oneof, new_oneof = old.oneof_of.get(number), new.oneof_of.get(number)
            if (old_oneof is None and new_oneof is None) or (
                old_oneof is not None and old_oneof == new_oneof
            ):
                continue
            self.compare_fields(
                old.all[number], new.all[number], old_info, new_info, f"/{local}/fields/{number}"
            )

    def _fields_of(
        self, schema: ProtobufSchema, types: dict[str, TypeInfo], info: TypeInfo
    ) -> tuple[MessageFields, frozenset[ScalarFacts], frozenset[int]]:
        """A message's fields, the (number, name, label, scalar type, enum name) of each scalar field
        outside any oneof, and the numbers of its other fields outside any oneof, built once per parsed
        schema."""
        cache: dict[str, tuple[MessageFields, frozenset[ScalarFacts], frozenset[int]]] = (
            schema.derived.setdefault("compat_messages", {})
        )
        found = cache.get(info.full_name)
        if found is None:
            assert info.message is not None
            fields = MessageFields.of(info.message)
            scalars = []
            others = []
            for number, fld in fields.top.items():
                kind = self.field_type(fld, types)
                if kind.kind == "scalar":
                    facts = (number, fld.name, label_of(fld, info.syntax), kind.scalar, kind.name)
                    scalars.append(_shared_facts(facts))
                else:
                    others.append(number)
            found = cache[info.full_name] = (fields, frozenset(scalars), frozenset(others))
        return found

    def compare_fields(
        self,
        old: descriptor_pb2.FieldDescriptorProto,
        new: descriptor_pb2.FieldDescriptorProto,
        old_owner: TypeInfo,
        new_owner: TypeInfo,
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
            label_of(old, old_owner.syntax),
            label_of(new, new_owner.syntax),
            self.field_type(old, self.writer_types),
            self.field_type(new, self.reader_types),
            new.name,
            where,
        )

    def compare_labels_and_types(
        self, old_label: Label, new_label: Label, old: FieldType, new: FieldType, name: str, where: str
    ) -> None:
        if old.kind != new.kind:
            self.add(
                "FIELD_KIND_CHANGED",
                where,
                f"field {name!r} changed from {old.kind} {old.describe()} to {new.kind} {new.describe()}",
            )
            return
        if old.kind == "scalar":
            old_group, new_group = SCALAR_GROUPS.get(old.scalar), SCALAR_GROUPS.get(new.scalar)
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

    def field_type(self, fld: descriptor_pb2.FieldDescriptorProto, types: dict[str, TypeInfo]) -> FieldType:
        if fld.type in (FDP.TYPE_MESSAGE, FDP.TYPE_GROUP):
            name = fld.type_name.lstrip(".")
            info = types.get(name)
            if info is not None and info.is_map_entry and info.message is not None:
                entry = {f.number: f for f in info.message.field}
                if 1 in entry and 2 in entry:
                    return FieldType(
                        "map", key=self.field_type(entry[1], types), value=self.field_type(entry[2], types)
                    )
            return FieldType("message", name=name)
        if fld.type == FDP.TYPE_ENUM:
            return FieldType("scalar", scalar=FDP.TYPE_ENUM, name=fld.type_name.lstrip("."))
        return FieldType("scalar", scalar=fld.type)


_Scope = tuple[
    dict[str, descriptor_pb2.DescriptorProto],
    dict[str, int],
    dict[str, descriptor_pb2.EnumDescriptorProto],
]


def _scope(
    schema: ProtobufSchema,
    nested: bool,
    scope: str,
    messages: Iterable[descriptor_pb2.DescriptorProto],
    enums: Iterable[descriptor_pb2.EnumDescriptorProto],
) -> _Scope:
    """The messages (by name, and their positions) and enums declared in one scope of a schema (its file
    when not `nested`, else the message named `scope`), built once per parsed schema."""
    cache: dict[tuple[bool, str], _Scope] = schema.derived.setdefault("compat_scopes", {})
    found = cache.get((nested, scope))
    if found is None:
        msgs = by_name(messages)
        found = cache[(nested, scope)] = (msgs, {n: i for i, n in enumerate(msgs)}, by_name(enums))
    return found
