"""Protobuf parsing with real protoc: errors with locations, references, well-known and Google common types,
base64 descriptors, the canonical rendering, fingerprints and payload validation."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.protobuf import descriptor_pb2

from kschema.formats import InvalidSchemaError, Reference, ResolvedReference, SchemaFormat, parse_schema
from kschema.formats import protobuf as pb

ORDER = """\
syntax = "proto3";
package shop;

import "google/protobuf/timestamp.proto";

// An order as the shop writes it.
message Order {
  string id = 1;
  google.protobuf.Timestamp placed_at = 2;
  map<string, int32> quantities = 3;
  optional string note = 4;
  oneof payment {
    string card = 5;
    string voucher = 6;
  }
  Status status = 7;
  enum Status {
    UNKNOWN = 0;
    PAID = 1;
  }
}
"""

ADDRESS = 'syntax = "proto3";\npackage common;\nmessage Address {\n  string city = 1;\n}\n'


def ref(name: str, schema: str, subject: str = "", version: int = 1) -> ResolvedReference:
    return ResolvedReference(Reference(name, subject or name, version), schema)


def test_a_valid_schema_parses_through_the_format_dispatch() -> None:
    parsed = parse_schema(SchemaFormat.PROTOBUF, ORDER)
    assert parsed.format is SchemaFormat.PROTOBUF
    assert parsed.raw == ORDER
    assert isinstance(parsed, pb.ProtobufSchema)
    assert parsed.message_names == ["shop.Order"]


def test_an_undefined_type_is_refused_with_protocs_message_and_location() -> None:
    with pytest.raises(InvalidSchemaError) as caught:
        pb.parse('syntax = "proto3";\nmessage A {\n  strin x = 1;\n}\n')
    assert caught.value.location == "schema.proto:3:3"
    assert caught.value.reason == '"strin" is not defined.'


def test_field_number_zero_is_refused() -> None:
    with pytest.raises(InvalidSchemaError, match="Field numbers must be positive integers") as caught:
        pb.parse('syntax = "proto3";\nmessage A { int32 y = 0; }\n')
    assert caught.value.location == "schema.proto:2:23"


def test_a_syntax_error_names_the_line_and_column() -> None:
    with pytest.raises(InvalidSchemaError) as caught:
        pb.parse('syntax = "proto3";\n\nmessage A {\n  string x = 1\n}\n')
    assert caught.value.location.startswith("schema.proto:5:")


def test_an_empty_schema_is_refused() -> None:
    with pytest.raises(InvalidSchemaError, match="empty"):
        pb.parse("  \n")


def test_protoc_errors_do_not_leak_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InvalidSchemaError):
        pb.parse('syntax = "proto3";\nmessage A { strin x = 1; }\n')
    pb.parse('syntax = "proto3";\nimport "google/protobuf/timestamp.proto";\nmessage B { string y = 1; }\n')
    captured = capfd.readouterr()
    assert "strin" not in captured.err
    assert "unused" not in captured.err


def test_well_known_types_resolve_without_references() -> None:
    parsed = pb.parse(ORDER)
    assert "google/protobuf/timestamp.proto" in parsed.files
    assert parsed.references == ()


def test_google_common_types_resolve_without_references() -> None:
    parsed = pb.parse(
        'syntax = "proto3";\nimport "google/type/postal_address.proto";\n'
        "message Customer { google.type.PostalAddress address = 1; }\n"
    )
    assert "google/type/postal_address.proto" in parsed.files


def test_other_googleapis_files_are_not_importable() -> None:
    with pytest.raises(InvalidSchemaError, match=r"google/rpc/status\.proto"):
        pb.parse('syntax = "proto3";\nimport "google/rpc/status.proto";\nmessage A { string x = 1; }\n')


def test_a_reference_is_imported_by_its_name() -> None:
    schema = (
        'syntax = "proto3";\nimport "common/address.proto";\nmessage Order { common.Address ship_to = 1; }\n'
    )
    parsed = pb.parse(schema, (ref("common/address.proto", ADDRESS, "address", 3),))
    assert parsed.origins == {"common/address.proto": ("address", 3)}
    assert "common/address.proto" in parsed.files


def test_nested_references_are_imported_too() -> None:
    city = 'syntax = "proto3";\npackage geo;\nmessage City { string name = 1; }\n'
    address = (
        'syntax = "proto3";\npackage common;\nimport "geo/city.proto";\n'
        "message Address { geo.City city = 1; }\n"
    )
    nested = ResolvedReference(
        Reference("common/address.proto", "address", 1), address, (ref("geo/city.proto", city),)
    )
    schema = 'syntax = "proto3";\nimport "common/address.proto";\nmessage Order { common.Address to = 1; }\n'
    parsed = pb.parse(schema, (nested,))
    assert {"geo/city.proto", "common/address.proto", "schema.proto"} <= set(parsed.files)


def test_a_missing_import_is_refused_at_the_import_line() -> None:
    with pytest.raises(InvalidSchemaError) as caught:
        pb.parse('syntax = "proto3";\nimport "common/address.proto";\nmessage A { common.Address a = 1; }\n')
    assert caught.value.location == "schema.proto:2:1"
    assert "common/address.proto" in caught.value.reason


def test_an_error_inside_a_reference_names_the_reference_file() -> None:
    broken = 'syntax = "proto3";\nmessage Address { strin city = 1; }\n'
    schema = 'syntax = "proto3";\nimport "address.proto";\nmessage A { Address a = 1; }\n'
    with pytest.raises(InvalidSchemaError) as caught:
        pb.parse(schema, (ref("address.proto", broken),))
    assert caught.value.location == "address.proto:2:19"


def test_an_import_cycle_between_references_is_refused() -> None:
    a = 'syntax = "proto3";\nimport "b.proto";\nmessage A { B b = 1; }\n'
    b = 'syntax = "proto3";\nimport "a.proto";\nmessage B { A a = 1; }\n'
    schema = 'syntax = "proto3";\nimport "a.proto";\nmessage M { A a = 1; }\n'
    with pytest.raises(InvalidSchemaError, match="recursively imports itself"):
        pb.parse(schema, (ref("a.proto", a), ref("b.proto", b)))


@pytest.mark.parametrize(
    "name", ["../etc/passwd.proto", "/abs.proto", "a//b.proto", "", "schema.proto", "a\\b.proto"]
)
def test_a_reference_name_that_is_not_a_relative_import_path_is_refused(name: str) -> None:
    with pytest.raises(InvalidSchemaError) as caught:
        pb.parse(ORDER, (ref(name, ADDRESS, "s"),))
    assert caught.value.location == "references/0/name"


def test_the_same_reference_name_with_two_texts_is_refused() -> None:
    other = ADDRESS.replace("city", "town")
    with pytest.raises(InvalidSchemaError, match="twice"):
        pb.parse(ORDER, (ref("a.proto", ADDRESS), ref("a.proto", other)))


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(InvalidSchemaError, match="UTF-8"):
        pb.parse('syntax = "proto3";\nmessage A { string x = 1; } // \udcff\n')


def test_an_oversized_schema_is_refused_before_protoc_runs() -> None:
    with pytest.raises(InvalidSchemaError, match="limit"):
        pb.parse("//" + "x" * pb.MAX_SCHEMA_BYTES)


def test_comments_and_formatting_do_not_change_the_canonical_form_or_fingerprint() -> None:
    compact = (
        'syntax="proto3";package shop;import "google/protobuf/timestamp.proto";message Order{string id=1;'
        ".google.protobuf.Timestamp placed_at=2;map<string,int32> quantities=3;optional string note=4;"
        "oneof payment{string card=5;string voucher=6;}.shop.Order.Status status=7;"
        "enum Status{UNKNOWN=0;PAID=1;}}"
    )
    assert pb.parse(compact).canonical == pb.parse(ORDER).canonical
    assert pb.parse(compact).fingerprint == pb.parse(ORDER).fingerprint


def test_option_order_does_not_change_the_canonical_form() -> None:
    first = (
        'syntax = "proto3";\noption java_package = "a";\noption optimize_for = SPEED;\n'
        "message A { int32 x = 1 [deprecated = true, json_name = 'ex']; }\n"
    )
    second = (
        'syntax = "proto3";\noption optimize_for = SPEED;\noption java_package = "a";\n'
        'message A { int32 x = 1 [json_name="ex", deprecated=true]; }\n'
    )
    assert pb.parse(first).canonical == pb.parse(second).canonical


def test_a_different_schema_has_a_different_fingerprint() -> None:
    assert (
        pb.parse(ORDER).fingerprint
        != pb.parse(ORDER.replace("string id = 1", "string ident = 1")).fingerprint
    )


def test_the_references_are_part_of_the_fingerprint() -> None:
    schema = (
        'syntax = "proto3";\nimport "common/address.proto";\nmessage Order { common.Address ship_to = 1; }\n'
    )
    one = pb.parse(schema, (ref("common/address.proto", ADDRESS, "address", 1),))
    two = pb.parse(schema, (ref("common/address.proto", ADDRESS, "address", 2),))
    assert one.canonical == two.canonical
    assert one.fingerprint != two.fingerprint


def test_the_canonical_form_compiles_back_to_the_same_canonical_form() -> None:
    proto2 = """\
syntax = "proto2";
package legacy;
message Old {
  required int32 id = 1;
  optional string name = 2 [default = "a \\"quoted\\" name"];
  optional bytes blob = 3 [default = "\\001\\002"];
  repeated int32 values = 4 [packed = true];
  optional group Result = 5 {
    optional string url = 6;
  }
  extensions 100 to max;
  reserved 7 to 9;
  reserved "gone";
}
extend Old {
  optional int32 extra = 100;
}
service Lookup {
  rpc Find (Old) returns (stream Old);
}
"""
    for text in (ORDER, proto2):
        canonical = pb.parse(text).canonical
        assert pb.parse(canonical).canonical == canonical


def test_custom_options_are_rendered_by_name_in_sorted_order() -> None:
    schema = """\
syntax = "proto3";
package pkg;
import "google/protobuf/descriptor.proto";
extend google.protobuf.FieldOptions {
  string b_opt = 50002;
  string a_opt = 50003;
}
message Foo {
  string x = 1 [(b_opt) = "b", (a_opt) = "a"];
}
"""
    canonical = pb.parse(schema).canonical
    assert 'string x = 1 [(.pkg.a_opt) = "a", (.pkg.b_opt) = "b"];' in canonical


def test_a_base64_descriptor_is_accepted_and_matches_the_same_schema_as_text() -> None:
    text = pb.parse(ORDER)
    encoded = pb.to_serialized(text)
    from_descriptor = pb.parse(encoded)
    assert from_descriptor.raw == encoded
    assert from_descriptor.canonical == text.canonical
    assert from_descriptor.fingerprint == text.fingerprint


def test_a_confluent_client_descriptor_parses() -> None:
    # What Karapace's REST test registers: messages.proto with Key and Dog.
    encoded = (
        "Cg5tZXNzYWdlcy5wcm90byIRCgNLZXkSCgoCaWQYASABKAUiMQoDRG9nEgwKBG5hbWUYASABKAkSDgoGd2VpZ2h0GAIgASgFEg"
        "wKBHRveXMYBCADKAliBnByb3RvMw=="
    )
    parsed = pb.parse(encoded)
    assert parsed.message_names == ["Key", "Dog"]
    assert "repeated string toys = 4;" in pb.from_serialized(encoded)


def test_a_base64_descriptor_with_references_resolves_its_imports() -> None:
    schema = (
        'syntax = "proto3";\nimport "common/address.proto";\nmessage Order { common.Address ship_to = 1; }\n'
    )
    refs = (ref("common/address.proto", ADDRESS),)
    encoded = pb.to_serialized(pb.parse(schema, refs))
    assert pb.parse(encoded, refs).canonical == pb.parse(schema, refs).canonical
    with pytest.raises(InvalidSchemaError, match=r"common/address\.proto"):
        pb.parse(encoded)


def test_a_base64_reference_is_imported_like_text() -> None:
    encoded_address = pb.to_serialized(pb.parse(ADDRESS))
    schema = (
        'syntax = "proto3";\nimport "common/address.proto";\nmessage Order { common.Address ship_to = 1; }\n'
    )
    parsed = pb.parse(schema, (ref("common/address.proto", encoded_address),))
    assert "common/address.proto" in parsed.files


def test_a_malformed_descriptor_is_refused() -> None:
    fdp = descriptor_pb2.FileDescriptorProto(name="x.proto", syntax="proto3")
    msg = fdp.message_type.add(name="A")
    msg.field.add(
        name="b", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE, type_name=".Missing"
    )
    with pytest.raises(InvalidSchemaError):
        pb.parse(base64.b64encode(fdp.SerializeToString()).decode())


def test_a_word_that_happens_to_be_base64_is_treated_as_proto_text() -> None:
    with pytest.raises(InvalidSchemaError) as caught:
        pb.parse("message")
    assert caught.value.location.startswith("schema.proto:")


def test_the_serialized_form_is_the_main_file_descriptor() -> None:
    fdp = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(pb.to_serialized(pb.parse(ORDER))))
    assert fdp.package == "shop"
    assert [m.name for m in fdp.message_type] == ["Order"]
    assert list(fdp.dependency) == ["google/protobuf/timestamp.proto"]


def test_a_conforming_payload_validates_against_the_first_message() -> None:
    parsed = pb.parse(ORDER)
    payload = {"id": "o-1", "placedAt": "2024-05-01T10:00:00Z", "quantities": {"apple": 3}, "status": "PAID"}
    assert parsed.validate(payload) == []


def test_a_payload_with_a_wrong_type_names_the_field() -> None:
    issues = pb.parse(ORDER).validate({"id": 5})
    assert len(issues) == 1
    assert issues[0].location == "/id"


def test_a_payload_with_an_unknown_field_is_refused() -> None:
    issues = pb.parse(ORDER).validate({"id": "o-1", "colour": "red"})
    assert issues
    assert "colour" in issues[0].message


def test_a_payload_validates_against_a_named_message() -> None:
    parsed = pb.parse(
        'syntax = "proto3";\npackage p;\nmessage A { string a = 1; }\nmessage B { int32 b = 1; }\n'
    )
    assert pb.validate_message(parsed, {"b": 3}, "B") == []
    assert pb.validate_message(parsed, {"b": "x"}, "p.B")
    assert pb.validate_message(parsed, {}, "Nope")[0].message == "the schema has no message named 'Nope'"


def test_a_payload_that_is_not_an_object_is_refused() -> None:
    assert pb.parse(ORDER).validate([1, 2])


def test_parsing_the_same_text_twice_reuses_the_compiled_descriptors() -> None:
    assert pb.parse(ORDER).compiled is pb.parse(ORDER).compiled


def test_concurrent_parses_from_threads_each_get_their_own_errors() -> None:
    def outcome(index: int) -> str:
        text = f'syntax = "proto3";\nmessage M{index} {{ Undefined{index} x = 1; }}\n'
        if index % 2:
            text = f'syntax = "proto3";\nmessage M{index} {{ string x = 1; }}\n'
        try:
            return pb.parse(text).message_names[0]
        except InvalidSchemaError as exc:
            return exc.reason

    with ThreadPoolExecutor(max_workers=4) as executor:
        results = list(executor.map(outcome, range(16)))
    for index, result in enumerate(results):
        expected = f"M{index}" if index % 2 else f'"Undefined{index}" is not defined.'
        assert result == expected
