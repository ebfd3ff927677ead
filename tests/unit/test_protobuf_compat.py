"""Protobuf compatibility rules (Confluent's checker): one test per difference type, with references and
recursive messages."""

from __future__ import annotations

from kschema.compat import CompatibilityLevel, VersionedSchema, check_compatibility
from kschema.compat.protobuf import differences, reader_issues
from kschema.formats import Reference, ResolvedReference
from kschema.formats import protobuf as pb


def schema(
    body: str, package: str = "shop", syntax: str = "proto3", refs: tuple[ResolvedReference, ...] = ()
) -> pb.ProtobufSchema:
    head = f'syntax = "{syntax}";\n' + (f"package {package};\n" if package else "")
    return pb.parse(head + body, refs)


def rules(reader: pb.ProtobufSchema, writer: pb.ProtobufSchema) -> list[str]:
    return [issue.rule for issue in reader_issues(reader, writer)]


def all_rules(writer: pb.ProtobufSchema, reader: pb.ProtobufSchema) -> list[str]:
    return [d.rule for d in differences(writer, reader)]


def test_an_identical_schema_has_no_differences() -> None:
    s = schema("message Order { string id = 1; }")
    assert differences(s, s) == []


def test_adding_a_field_is_compatible() -> None:
    old = schema("message Order { string id = 1; }")
    new = schema("message Order { string id = 1; int64 total = 2; }")
    assert rules(new, old) == []
    assert all_rules(old, new) == ["FIELD_ADDED"]


def test_removing_a_field_is_compatible_as_in_confluent() -> None:
    old = schema("message Order { string id = 1; int64 total = 2; }")
    new = schema("message Order { string id = 1; }")
    assert rules(new, old) == []
    assert all_rules(old, new) == ["FIELD_REMOVED"]


def test_renaming_a_field_is_compatible() -> None:
    old = schema("message Order { string id = 1; }")
    new = schema("message Order { string order_id = 1; }")
    assert rules(new, old) == []
    assert all_rules(old, new) == ["FIELD_NAME_CHANGED"]


def test_renumbering_a_field_is_a_removal_and_an_addition() -> None:
    old = schema("message Order { string id = 1; }")
    new = schema("message Order { string id = 2; }")
    assert sorted(all_rules(old, new)) == ["FIELD_ADDED", "FIELD_REMOVED"]
    assert rules(new, old) == []


def test_removing_a_message_breaks_readers() -> None:
    old = schema("message Order { string id = 1; }\nmessage Item { string sku = 1; }")
    new = schema("message Order { string id = 1; }")
    issues = reader_issues(new, old)
    assert [(i.rule, i.location) for i in issues] == [("MESSAGE_REMOVED", "/Item")]


def test_renaming_a_message_breaks_readers() -> None:
    assert rules(
        schema("message Human { string name = 1; }"), schema("message Person { string name = 1; }")
    ) == ["MESSAGE_REMOVED"]


def test_reordering_messages_is_compatible() -> None:
    old = schema("message A { int32 a = 1; }\nmessage B { int32 b = 1; }")
    new = schema("message B { int32 b = 1; }\nmessage A { int32 a = 1; }")
    assert rules(new, old) == []
    assert "MESSAGE_MOVED" in all_rules(old, new)


def test_changing_a_scalar_to_a_message_changes_the_kind() -> None:
    old = schema("message Order { string id = 1; }")
    new = schema("message Id { string v = 1; }\nmessage Order { Id id = 1; }")
    issues = reader_issues(new, old)
    assert [(i.rule, i.location) for i in issues] == [("FIELD_KIND_CHANGED", "/Order/fields/1")]


def test_changing_int32_to_string_changes_the_scalar_kind() -> None:
    old = schema("message Person { int32 age = 2; }")
    new = schema("message Person { string age = 2; }")
    issues = reader_issues(new, old)
    assert [i.rule for i in issues] == ["FIELD_SCALAR_KIND_CHANGED"]
    assert issues[0].location == "/Person/fields/2"
    assert "int32" in issues[0].message
    assert "string" in issues[0].message


def test_scalars_of_one_wire_group_read_each_other() -> None:
    groups = [
        ["int32", "uint32", "int64", "uint64", "bool"],
        ["sint32", "sint64"],
        ["fixed32", "sfixed32"],
        ["fixed64", "sfixed64"],
        ["string", "bytes"],
    ]
    for group in groups:
        for a in group:
            for b in group:
                assert (
                    rules(schema(f"message M {{ {b} x = 1; }}"), schema(f"message M {{ {a} x = 1; }}")) == []
                )


def test_scalars_of_different_wire_groups_do_not_read_each_other() -> None:
    for a, b in [
        ("int32", "sint32"),
        ("fixed32", "fixed64"),
        ("float", "double"),
        ("int64", "fixed64"),
        ("bytes", "int32"),
    ]:
        assert rules(schema(f"message M {{ {b} x = 1; }}"), schema(f"message M {{ {a} x = 1; }}")) == [
            "FIELD_SCALAR_KIND_CHANGED"
        ]


def test_an_enum_reads_like_int32() -> None:
    old = schema("message M { int32 color = 1; }")
    new = schema("message M { enum Color { RED = 0; } Color color = 1; }")
    assert rules(new, old) == []
    assert rules(old, new) == []


def test_adding_and_removing_enum_constants_is_compatible() -> None:
    old = schema("enum Color { RED = 0; GREEN = 1; }\nmessage M { Color c = 1; }")
    new = schema("enum Color { RED = 0; BLUE = 2; }\nmessage M { Color c = 1; }")
    assert rules(new, old) == []
    assert sorted(all_rules(old, new)) == ["ENUM_CONST_ADDED", "ENUM_CONST_REMOVED"]


def test_renaming_an_enum_constant_is_compatible() -> None:
    old = schema("enum Color { RED = 0; }")
    new = schema("enum Color { CRIMSON = 0; }")
    assert all_rules(old, new) == ["ENUM_CONST_CHANGED"]
    assert rules(new, old) == []


def test_changing_a_message_field_to_another_message_changes_the_named_type() -> None:
    old = schema("message A { string a = 1; }\nmessage B { string a = 1; }\nmessage M { A x = 1; }")
    new = schema("message A { string a = 1; }\nmessage B { string a = 1; }\nmessage M { B x = 1; }")
    assert rules(new, old) == ["FIELD_NAMED_TYPE_CHANGED"]


def test_an_incompatible_change_inside_a_nested_message_is_found_through_the_field() -> None:
    old = schema("message M { message V { string s = 1; } V v = 1; }")
    new = schema("message M { message V { int32 s = 1; } V v = 1; }")
    issues = reader_issues(new, old)
    assert ("FIELD_SCALAR_KIND_CHANGED", "/M.V/fields/1") in [(i.rule, i.location) for i in issues]
    assert ("FIELD_NAMED_TYPE_CHANGED", "/M/fields/1") in [(i.rule, i.location) for i in issues]


def test_changing_the_package_breaks_readers() -> None:
    old = schema("message M { string s = 1; }", package="a1")
    new = schema("message M { string s = 1; }", package="a2")
    issues = reader_issues(new, old)
    assert [(i.rule, i.location) for i in issues] == [("PACKAGE_CHANGED", "/package")]


def test_changing_the_syntax_is_reported_but_compatible() -> None:
    old = schema("message M { optional string s = 1; }", syntax="proto2")
    new = schema("message M { optional string s = 1; }", syntax="proto3")
    assert all_rules(old, new) == ["SYNTAX_VERSION_CHANGED"]
    assert rules(new, old) == []


def test_adding_a_required_field_breaks_readers() -> None:
    old = schema("message M { optional string a = 1; }", syntax="proto2")
    new = schema("message M { optional string a = 1; required int32 b = 2; }", syntax="proto2")
    assert rules(new, old) == ["REQUIRED_FIELD_ADDED"]


def test_removing_a_required_field_breaks_readers() -> None:
    old = schema("message M { optional string a = 1; required int32 b = 2; }", syntax="proto2")
    new = schema("message M { optional string a = 1; }", syntax="proto2")
    assert rules(new, old) == ["REQUIRED_FIELD_REMOVED"]


def test_changing_the_label_of_a_numeric_field_breaks_readers() -> None:
    old = schema("message M { optional int32 a = 1; }", syntax="proto2")
    new = schema("message M { repeated int32 a = 1; }", syntax="proto2")
    assert rules(new, old) == ["FIELD_NUMERIC_LABEL_CHANGED"]


def test_changing_the_label_of_a_string_field_is_compatible() -> None:
    old = schema("message M { optional string a = 1; }")
    new = schema("message M { repeated string a = 1; }")
    assert rules(new, old) == []
    assert all_rules(old, new) == ["FIELD_STRING_OR_BYTES_LABEL_CHANGED"]


def test_removing_a_field_from_a_oneof_breaks_readers() -> None:
    old = schema("message G { oneof item { string a = 1; string b = 2; int32 id = 3; } }")
    new = schema("message G { oneof item { string a = 1; string b = 2; } }")
    issues = reader_issues(new, old)
    assert [(i.rule, i.location) for i in issues] == [("ONEOF_FIELD_REMOVED", "/G/oneofs/item/3")]


def test_moving_one_field_into_a_new_oneof_is_compatible() -> None:
    old = schema("message G { string name = 1; string foo = 2; }")
    new = schema("message G { string name = 1; oneof o { string foo = 2; int32 bar = 3; } }")
    assert rules(new, old) == []
    assert "ONEOF_ADDED" in all_rules(old, new)


def test_moving_two_fields_into_one_oneof_breaks_readers() -> None:
    old = schema("message G { string name = 1; string reg_name = 2; }")
    new = schema("message G { oneof reg { string name = 1; string reg_name = 2; int32 id = 3; } }")
    issues = reader_issues(new, old)
    assert [(i.rule, i.location) for i in issues] == [("MULTIPLE_FIELDS_MOVED_TO_ONEOF", "/G/oneofs/reg")]


def test_moving_a_field_into_an_existing_oneof_breaks_readers() -> None:
    old = schema("message G { string a = 1; oneof o { string b = 2; } }")
    new = schema("message G { oneof p { string a = 1; string b = 2; } }")
    assert "FIELD_MOVED_TO_EXISTING_ONEOF" in rules(new, old)


def test_a_field_moved_out_of_a_oneof_keeps_its_type_checked() -> None:
    old = schema("message G { oneof o { string a = 1; int32 b = 2; } }")
    new = schema("message G { int64 a = 1; oneof o { int32 b = 2; } }")
    assert rules(new, old) == ["FIELD_SCALAR_KIND_CHANGED"]


def test_changing_a_map_value_type_breaks_readers() -> None:
    old = schema("message Goods { map<string, int32> items = 2; }")
    new = schema("message Goods { map<string, string> items = 2; }")
    assert rules(new, old) == ["FIELD_SCALAR_KIND_CHANGED"]


def test_a_map_and_a_repeated_message_are_different_kinds() -> None:
    old = schema("message Goods { map<string, int32> items = 2; }")
    new = schema("message Item { string k = 1; }\nmessage Goods { repeated Item items = 2; }")
    assert rules(new, old) == ["FIELD_KIND_CHANGED"]


def test_recursive_messages_are_compared_once() -> None:
    old = schema(
        "message Node { string v = 1; repeated Node children = 2; Tree owner = 3; }\n"
        "message Tree { Node root = 1; }"
    )
    new = schema(
        "message Node { int32 v = 1; repeated Node children = 2; Tree owner = 3; }\n"
        "message Tree { Node root = 1; }"
    )
    found = reader_issues(new, old)
    assert ("FIELD_SCALAR_KIND_CHANGED", "/Node/fields/1") in [(i.rule, i.location) for i in found]
    assert len(found) == len({(i.rule, i.location) for i in found})


def ref(name: str, text: str, subject: str, version: int = 1) -> ResolvedReference:
    return ResolvedReference(Reference(name, subject, version), text)


def test_an_incompatible_change_in_an_imported_message_breaks_readers() -> None:
    main = 'import "{file}";\nmessage T {{ a1.container.Hint hint = 1; }}'
    old_ref = 'syntax = "proto3";\npackage a1;\nmessage container { message Hint { string s = 1; } }\n'
    new_ref = old_ref.replace("string s", "int32 s")
    old = schema(main.format(file="c1.proto"), "a1", refs=(ref("c1.proto", old_ref, "c1"),))
    new = schema(main.format(file="c2.proto"), "a1", refs=(ref("c2.proto", new_ref, "c2"),))
    found = [(i.rule, i.location) for i in reader_issues(new, old)]
    assert ("FIELD_SCALAR_KIND_CHANGED", "/container.Hint/fields/1") in found
    assert ("FIELD_NAMED_TYPE_CHANGED", "/T/fields/1") in found


def test_the_same_imported_message_from_another_file_is_compatible() -> None:
    main = 'import "{file}";\nmessage T {{ a1.container.Hint hint = 1; }}'
    text = 'syntax = "proto3";\npackage a1;\nmessage container { message Hint { string s = 1; } }\n'
    old = schema(main.format(file="c1.proto"), "a1", refs=(ref("c1.proto", text, "c1"),))
    new = schema(main.format(file="c2.proto"), "a1", refs=(ref("c2.proto", text, "c2"),))
    assert rules(new, old) == []


def test_a_well_known_type_field_changed_to_another_breaks_readers() -> None:
    imports = 'import "google/protobuf/timestamp.proto";\nimport "google/protobuf/duration.proto";\n'
    old = schema(imports + "message M { google.protobuf.Timestamp at = 1; }")
    new = schema(imports + "message M { google.protobuf.Duration at = 1; }")
    assert rules(new, old) == ["FIELD_NAMED_TYPE_CHANGED"]


def test_full_compatibility_checks_both_directions() -> None:
    old = schema("message M { string a = 1; }")
    new = schema("message M { string a = 1; oneof o { int32 b = 2; } }")
    result = check_compatibility(
        VersionedSchema(None, new), [VersionedSchema(1, old)], CompatibilityLevel.FULL
    )
    assert result.compatible
    narrower = schema("message M { oneof o { string a = 1; int32 b = 2; } }")
    forward = check_compatibility(
        VersionedSchema(None, narrower), [VersionedSchema(1, old)], CompatibilityLevel.FORWARD
    )
    assert forward.compatible
    both = schema("message M { string a = 1; int32 b = 2; }")
    result = check_compatibility(
        VersionedSchema(None, both), [VersionedSchema(1, narrower)], CompatibilityLevel.FORWARD
    )
    assert [i.rule for i in result.incompatibilities] == ["MULTIPLE_FIELDS_MOVED_TO_ONEOF"]
    assert "a reader of version 1 cannot read data written with the new schema" in result.messages[0]


def test_the_changed_fields_of_a_large_message_are_reported_in_field_order() -> None:
    # Most fields unchanged (skipped in bulk); the changed ones, whatever the change, still reported.
    fields = [f"string f{i} = {i};" for i in range(1, 41)]
    changed = list(fields)
    changed[4] = "string renamed = 5;"  # name
    changed[9] = "int64 f10 = 10;"  # scalar kind
    changed[19] = "Item f20 = 20;"  # scalar to message
    changed[29] = "bytes f30 = 30;"  # same encoding, another type
    del changed[34]  # f35 removed
    changed.append("Item f41 = 41;")  # a message field added
    old = schema("message Order { " + " ".join(fields) + " }")
    new = schema("message Order { " + " ".join(changed) + " }\nmessage Item { string id = 1; }")
    found = [(d.rule, d.location) for d in differences(old, new)]
    assert found == [
        ("FIELD_NAME_CHANGED", "/Order/fields/5"),
        ("FIELD_SCALAR_KIND_CHANGED", "/Order/fields/10"),
        ("FIELD_KIND_CHANGED", "/Order/fields/20"),
        ("FIELD_REMOVED", "/Order/fields/35"),
        ("FIELD_ADDED", "/Order/fields/41"),
        ("MESSAGE_ADDED", "/Item"),
    ]
