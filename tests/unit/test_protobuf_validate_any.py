"""Payload validation of messages holding `google.protobuf.Any`: the `@type` URLs name types of the schema
itself, found in the schema's own descriptor pool (which the parser is given only for such messages)."""

from __future__ import annotations

from kschema.formats import SchemaFormat, parse_schema

SCHEMA = """
syntax = "proto3";
package shop;

import "google/protobuf/any.proto";

message Envelope {
  string id = 1;
  Wrapper wrapper = 2;
}

message Wrapper {
  google.protobuf.Any detail = 1;
}

message Refund {
  int64 cents = 1;
}
"""


def test_an_any_naming_a_type_of_the_schema_is_parsed_with_the_schemas_pool() -> None:
    parsed = parse_schema(SchemaFormat.PROTOBUF, SCHEMA)
    refund = {"@type": "type.googleapis.com/shop.Refund", "cents": "125"}

    assert parsed.validate({"id": "e-1", "wrapper": {"detail": refund}}) == []
    assert parsed.validate({"id": "e-1", "wrapper": {"detail": {**refund, "cents": "many"}}}) != []
    unknown = {"@type": "type.googleapis.com/shop.Nothing", "x": 1}
    assert parsed.validate({"id": "e-1", "wrapper": {"detail": unknown}}) != []


def test_a_message_without_any_validates_the_same() -> None:
    parsed = parse_schema(
        SchemaFormat.PROTOBUF, 'syntax = "proto3";\nmessage Refund {\n  int64 cents = 1;\n}\n'
    )

    assert parsed.validate({"cents": "125"}) == []
    assert [i.location for i in parsed.validate({"cents": "many"})] != []
    assert parsed.validate({"cents": 1, "unknown": 2}) != []
