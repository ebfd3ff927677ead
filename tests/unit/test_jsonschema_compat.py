"""JSON Schema compatibility rules, one test per rule, in Confluent's reader/writer framing: the writer is
Confluent's *original* schema and the reader its *update*, so a BACKWARD check reads old data with the
new schema."""

from __future__ import annotations

import json
from typing import Any

from kschema.compat import CompatibilityLevel, VersionedSchema, check_compatibility
from kschema.compat.jsonschema import differences, reader_issues
from kschema.formats import Reference, ResolvedReference
from kschema.formats.jsonschema import ParsedJsonSchema, parse

OBJ: dict[str, Any] = {"type": "object"}


def schema(value: Any, references: tuple[ResolvedReference, ...] = ()) -> ParsedJsonSchema:
    return parse(json.dumps(value), references)


def rules(reader: Any, writer: Any) -> list[str]:
    """The incompatible rules found when `reader` reads data written with `writer`."""
    return [i.rule for i in reader_issues(schema(reader), schema(writer))]


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def closed(**properties: Any) -> dict[str, Any]:
    return {**obj(**properties), "additionalProperties": False}


STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}


# Content models -------------------------------------------------------------------------------------


def test_adding_a_property_to_an_open_content_model_breaks_backward() -> None:
    assert rules(reader=obj(a=STRING), writer=OBJ) == ["PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"]


def test_adding_a_property_with_an_empty_schema_to_an_open_content_model_is_compatible() -> None:
    assert rules(reader=obj(a={}), writer=OBJ) == []


def test_removing_a_property_from_an_open_content_model_is_compatible() -> None:
    assert rules(reader=obj(), writer=obj(a=STRING)) == []


def test_removing_a_property_from_a_closed_content_model_breaks_backward() -> None:
    assert rules(reader=closed(a=STRING), writer=closed(a=STRING, b=STRING)) == [
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"
    ]


def test_removing_a_false_property_from_a_closed_content_model_is_compatible() -> None:
    assert rules(reader=closed(a=STRING), writer=closed(a=STRING, b=False)) == []


def test_adding_an_optional_property_to_a_closed_content_model_is_compatible() -> None:
    assert rules(reader=closed(a=STRING, b=STRING), writer=closed(a=STRING)) == []


def test_adding_a_required_property_without_default_to_a_closed_content_model_breaks_backward() -> None:
    reader = {**closed(a=STRING, b=STRING), "required": ["b"]}
    assert rules(reader=reader, writer=closed(a=STRING)) == [
        "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
    ]


def test_adding_a_required_property_with_a_default_to_a_closed_content_model_is_compatible() -> None:
    reader = {**closed(a=STRING, b={"type": "string", "default": "x"}), "required": ["b"]}
    assert rules(reader=reader, writer=closed(a=STRING)) == []


def test_closing_an_open_content_model_breaks_backward() -> None:
    assert rules(reader=closed(a=STRING), writer=obj(a=STRING)) == ["ADDITIONAL_PROPERTIES_REMOVED"]


def test_opening_a_closed_content_model_is_compatible() -> None:
    assert rules(reader=obj(a=STRING), writer=closed(a=STRING)) == []


def test_constraining_additional_properties_breaks_backward() -> None:
    reader = {**obj(a=STRING), "additionalProperties": STRING}
    assert rules(reader=reader, writer=obj(a=STRING)) == ["ADDITIONAL_PROPERTIES_NARROWED"]


def test_adding_a_property_covered_by_the_writers_additional_properties_is_compatible() -> None:
    writer = {**obj(), "additionalProperties": STRING}
    reader = {**obj(a=STRING), "additionalProperties": STRING}
    assert rules(reader=reader, writer=writer) == []


def test_adding_a_property_not_covered_by_the_writers_additional_properties_breaks_backward() -> None:
    writer = {**obj(), "additionalProperties": STRING}
    reader = {**obj(a=INTEGER), "additionalProperties": STRING}
    assert set(rules(reader=reader, writer=writer)) == {
        "TYPE_CHANGED",
        "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    }


def test_removing_a_property_not_covered_by_the_readers_pattern_properties_breaks_backward() -> None:
    reader = {**obj(), "patternProperties": {"^x_": STRING}, "additionalProperties": False}
    writer = {**obj(x_cost=INTEGER), "patternProperties": {"^x_": STRING}, "additionalProperties": False}
    assert "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL" in rules(
        reader=reader, writer=writer
    )


# Required properties --------------------------------------------------------------------------------


def test_making_a_property_required_breaks_backward() -> None:
    assert rules(reader={**obj(a=STRING), "required": ["a"]}, writer=obj(a=STRING)) == [
        "REQUIRED_ATTRIBUTE_ADDED"
    ]


def test_making_a_property_with_a_default_required_is_compatible() -> None:
    with_default = {"type": "string", "default": ""}
    assert rules(reader={**obj(a=with_default), "required": ["a"]}, writer=obj(a=with_default)) == []


def test_making_a_required_property_optional_breaks_forward_only() -> None:
    old = schema({**obj(a=STRING), "required": ["a"]})
    new = schema(obj(a=STRING))
    history = [VersionedSchema(1, old)]
    assert check_compatibility(VersionedSchema(2, new), history, CompatibilityLevel.BACKWARD).compatible
    forward = check_compatibility(VersionedSchema(2, new), history, CompatibilityLevel.FORWARD)
    assert [i.rule for i in forward.incompatibilities] == ["REQUIRED_ATTRIBUTE_ADDED"]
    assert forward.messages[0].endswith("a reader of version 1 cannot read data written with version 2")


# Types ----------------------------------------------------------------------------------------------


def test_widening_integer_to_number_is_compatible_for_a_reader() -> None:
    assert rules(reader={"type": "number"}, writer=INTEGER) == []


def test_narrowing_number_to_integer_breaks_backward() -> None:
    assert rules(reader=INTEGER, writer={"type": "number"}) == ["TYPE_NARROWED"]


def test_changing_a_property_type_breaks_backward_at_that_property() -> None:
    issues = reader_issues(schema(obj(cost=INTEGER)), schema(obj(cost=STRING)))
    assert [(i.location, i.rule) for i in issues] == [("#/properties/cost", "TYPE_CHANGED")]
    assert issues[0].message == "the reader expects a different type than the writer wrote"


def test_a_nullable_union_reads_the_plain_type() -> None:
    assert rules(reader={"type": ["string", "null"]}, writer=STRING) == []


def test_a_plain_type_does_not_read_a_nullable_union() -> None:
    assert rules(reader=STRING, writer={"type": ["string", "null"]}) == ["TYPE_CHANGED"]


# Bounds ---------------------------------------------------------------------------------------------


def test_decreasing_max_length_breaks_backward() -> None:
    issues = reader_issues(
        schema(obj(code={"type": "string", "maxLength": 3})),
        schema(obj(code={"type": "string", "maxLength": 5})),
    )
    assert [(i.location, i.rule) for i in issues] == [("#/properties/code/maxLength", "MAX_LENGTH_DECREASED")]


def test_increasing_max_length_is_compatible() -> None:
    assert rules(reader={"type": "string", "maxLength": 9}, writer={"type": "string", "maxLength": 5}) == []


def test_adding_max_length_breaks_backward() -> None:
    assert rules(reader={"type": "string", "maxLength": 9}, writer=STRING) == ["MAX_LENGTH_ADDED"]


def test_increasing_min_length_breaks_backward() -> None:
    assert rules(reader={"type": "string", "minLength": 2}, writer={"type": "string", "minLength": 1}) == [
        "MIN_LENGTH_INCREASED"
    ]


def test_changing_a_pattern_breaks_backward_and_removing_it_does_not() -> None:
    assert rules(reader={"type": "string", "pattern": "^b"}, writer={"type": "string", "pattern": "^a"}) == [
        "PATTERN_CHANGED"
    ]
    assert rules(reader=STRING, writer={"type": "string", "pattern": "^a"}) == []


def test_lowering_the_maximum_breaks_backward_and_raising_it_does_not() -> None:
    assert rules(reader={"type": "number", "maximum": 5}, writer={"type": "number", "maximum": 10}) == [
        "MAXIMUM_DECREASED"
    ]
    assert rules(reader={"type": "number", "maximum": 50}, writer={"type": "number", "maximum": 10}) == []


def test_raising_the_minimum_breaks_backward() -> None:
    assert rules(reader={"type": "number", "minimum": 1}, writer={"type": "number", "minimum": 0}) == [
        "MINIMUM_INCREASED"
    ]


def test_lowering_the_exclusive_maximum_breaks_backward() -> None:
    reader = {"type": "number", "exclusiveMaximum": 5}
    assert rules(reader=reader, writer={"type": "number", "exclusiveMaximum": 10}) == [
        "EXCLUSIVE_MAXIMUM_DECREASED"
    ]


def test_adding_an_exclusive_minimum_breaks_backward() -> None:
    assert rules(reader={"type": "number", "exclusiveMinimum": 0}, writer={"type": "number"}) == [
        "EXCLUSIVE_MINIMUM_ADDED"
    ]


def test_a_multiple_of_a_multiple_breaks_backward_and_a_divisor_does_not() -> None:
    assert rules(reader={"type": "number", "multipleOf": 4}, writer={"type": "number", "multipleOf": 2}) == [
        "MULTIPLE_OF_EXPANDED"
    ]
    assert rules(reader={"type": "number", "multipleOf": 2}, writer={"type": "number", "multipleOf": 4}) == []


def test_fractional_multiple_of_is_compared_exactly() -> None:
    assert (
        rules(reader={"type": "number", "multipleOf": 0.25}, writer={"type": "number", "multipleOf": 0.5})
        == []
    )
    assert rules(
        reader={"type": "number", "multipleOf": 0.3}, writer={"type": "number", "multipleOf": 0.5}
    ) == ["MULTIPLE_OF_CHANGED"]


def test_raising_min_properties_breaks_backward() -> None:
    assert rules(reader={**OBJ, "minProperties": 2}, writer={**OBJ, "minProperties": 1}) == [
        "MIN_PROPERTIES_INCREASED"
    ]


def test_lowering_max_items_breaks_backward() -> None:
    array = {"type": "array", "items": STRING}
    assert rules(reader={**array, "maxItems": 2}, writer={**array, "maxItems": 3}) == ["MAX_ITEMS_DECREASED"]


def test_requiring_unique_items_breaks_backward() -> None:
    assert rules(reader={"type": "array", "uniqueItems": True}, writer={"type": "array"}) == [
        "UNIQUE_ITEMS_ADDED"
    ]


# Enums and const ------------------------------------------------------------------------------------


def test_narrowing_an_enum_breaks_backward() -> None:
    assert rules(reader={"enum": ["a"]}, writer={"enum": ["a", "b"]}) == ["ENUM_ARRAY_NARROWED"]


def test_extending_an_enum_is_compatible() -> None:
    assert rules(reader={"enum": ["a", "b", "c"]}, writer={"enum": ["a", "b"]}) == []


def test_replacing_enum_values_breaks_backward() -> None:
    assert rules(reader={"enum": ["a", "c"]}, writer={"enum": ["a", "b"]}) == ["ENUM_ARRAY_CHANGED"]


def test_enum_values_of_different_json_types_are_different() -> None:
    assert rules(reader={"enum": [True]}, writer={"enum": [1]}) == ["ENUM_ARRAY_CHANGED"]


def test_changing_a_const_breaks_backward() -> None:
    assert rules(reader={"const": "v2"}, writer={"const": "v1"}) == ["ENUM_ARRAY_CHANGED"]
    assert rules(reader={"const": "v1"}, writer={"const": "v1"}) == []


# Arrays ---------------------------------------------------------------------------------------------


def test_changing_the_items_type_breaks_backward_at_items() -> None:
    issues = reader_issues(
        schema({"type": "array", "items": INTEGER}), schema({"type": "array", "items": STRING})
    )
    assert [(i.location, i.rule) for i in issues] == [("#/items", "TYPE_CHANGED")]


def test_adding_an_items_schema_breaks_backward_and_removing_it_does_not() -> None:
    assert rules(reader={"type": "array", "items": STRING}, writer={"type": "array"}) == ["SCHEMA_ADDED"]
    assert rules(reader={"type": "array"}, writer={"type": "array", "items": STRING}) == []


def test_removing_an_item_from_a_closed_tuple_breaks_backward() -> None:
    draft = "https://json-schema.org/draft/2020-12/schema"
    writer = {"$schema": draft, "type": "array", "prefixItems": [STRING, INTEGER], "items": False}
    reader = {"$schema": draft, "type": "array", "prefixItems": [STRING], "items": False}
    assert rules(reader=reader, writer=writer) == ["ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL"]


def test_adding_a_tuple_item_to_an_open_tuple_breaks_backward_in_draft_07() -> None:
    writer = {"type": "array", "items": [STRING]}
    reader = {"type": "array", "items": [STRING, INTEGER]}
    assert rules(reader=reader, writer=writer) == ["ITEM_ADDED_TO_OPEN_CONTENT_MODEL"]


def test_adding_a_tuple_item_to_a_closed_tuple_is_compatible() -> None:
    writer = {"type": "array", "items": [STRING], "additionalItems": False}
    reader = {"type": "array", "items": [STRING, INTEGER], "additionalItems": False}
    assert rules(reader=reader, writer=writer) == []


# Combined types -------------------------------------------------------------------------------------


def test_adding_an_any_of_alternative_is_compatible() -> None:
    assert (
        rules(reader={"anyOf": [STRING, INTEGER, {"type": "null"}]}, writer={"anyOf": [STRING, INTEGER]})
        == []
    )


def test_removing_an_any_of_alternative_breaks_backward() -> None:
    assert rules(reader={"anyOf": [STRING]}, writer={"anyOf": [STRING, INTEGER]}) == ["SUM_TYPE_NARROWED"]


def test_adding_an_all_of_part_breaks_backward() -> None:
    reader = {"allOf": [obj(a=STRING), {"required": ["a"]}]}
    assert "PRODUCT_TYPE_EXTENDED" in rules(reader=reader, writer={"allOf": [obj(a=STRING)]})


def test_turning_one_of_into_any_of_is_compatible_and_back_is_not() -> None:
    assert rules(reader={"anyOf": [STRING, INTEGER]}, writer={"oneOf": [STRING, INTEGER]}) == []
    assert rules(reader={"oneOf": [STRING, INTEGER]}, writer={"anyOf": [STRING, INTEGER]}) == [
        "COMBINED_TYPE_CHANGED"
    ]


def test_changing_an_alternative_breaks_backward() -> None:
    assert rules(reader={"oneOf": [STRING, {"type": "boolean"}]}, writer={"oneOf": [STRING, INTEGER]}) == [
        "COMBINED_TYPE_SUBSCHEMAS_CHANGED"
    ]


def test_a_type_becoming_one_alternative_of_a_union_is_compatible() -> None:
    assert rules(reader={"oneOf": [STRING, INTEGER]}, writer=STRING) == []


def test_widening_a_not_breaks_backward_and_narrowing_it_does_not() -> None:
    assert rules(reader={"not": {"type": ["string", "integer"]}}, writer={"not": STRING}) == [
        "NOT_TYPE_EXTENDED"
    ]
    assert rules(reader={"not": STRING}, writer={"not": {"type": ["string", "integer"]}}) == []


# Boolean schemas ------------------------------------------------------------------------------------


def test_a_true_reader_reads_anything() -> None:
    assert rules(reader=True, writer=obj(a=STRING)) == []
    assert rules(reader={}, writer=INTEGER) == []


def test_a_false_writer_writes_nothing_any_reader_could_fail_on() -> None:
    assert rules(reader=closed(a=INTEGER), writer=False) == []


def test_a_false_reader_reads_nothing() -> None:
    assert rules(reader=False, writer=True) == ["TYPE_CHANGED"]


def test_an_unconstrained_writer_breaks_a_typed_reader() -> None:
    assert rules(reader=STRING, writer={}) == ["TYPE_CHANGED"]


# Dependencies ---------------------------------------------------------------------------------------


def test_adding_a_property_dependency_breaks_backward_and_removing_it_does_not() -> None:
    with_dependency = {**obj(a=STRING, b=STRING), "dependencies": {"a": ["b"]}}
    assert rules(reader=with_dependency, writer=obj(a=STRING, b=STRING)) == ["DEPENDENCY_ARRAY_ADDED"]
    assert rules(reader=obj(a=STRING, b=STRING), writer=with_dependency) == []


def test_extending_a_property_dependency_breaks_backward() -> None:
    writer = {**obj(a=STRING, b=STRING, c=STRING), "dependencies": {"a": ["b"]}}
    reader = {**obj(a=STRING, b=STRING, c=STRING), "dependencies": {"a": ["b", "c"]}}
    assert rules(reader=reader, writer=writer) == ["DEPENDENCY_ARRAY_EXTENDED"]


def test_adding_a_schema_dependency_breaks_backward() -> None:
    reader = {**obj(a=STRING), "dependencies": {"a": {"required": ["b"]}}}
    assert rules(reader=reader, writer=obj(a=STRING)) == ["DEPENDENCY_SCHEMA_ADDED"]


# References -----------------------------------------------------------------------------------------


def test_a_change_behind_a_local_ref_is_found_at_the_referring_property() -> None:
    def with_cents(cents: Any) -> dict[str, Any]:
        return {**obj(cost={"$ref": "#/definitions/cents"}), "definitions": {"cents": cents}}

    issues = reader_issues(schema(with_cents(INTEGER)), schema(with_cents({"type": "number"})))
    assert [(i.location, i.rule) for i in issues] == [("#/properties/cost", "TYPE_NARROWED")]


def test_a_change_in_a_referenced_schema_is_found() -> None:
    def customer(version: int, name: Any) -> tuple[ResolvedReference, ...]:
        text = json.dumps(obj(name=name))
        return (ResolvedReference(Reference("customer.json", "customer", version), text),)

    order = obj(customer={"$ref": "customer.json"})
    old = schema(order, customer(1, STRING))
    new = schema(order, customer(2, {"type": "string", "maxLength": 10}))
    assert [(i.location, i.rule) for i in reader_issues(new, old)] == [
        ("#/properties/customer/properties/name/maxLength", "MAX_LENGTH_ADDED")
    ]


def test_recursive_schemas_compare_without_looping_and_find_deep_changes() -> None:
    def tree(leaf: Any) -> dict[str, Any]:
        return obj(value=leaf, children={"type": "array", "items": {"$ref": "#"}})

    assert rules(reader=tree(STRING), writer=tree(STRING)) == []
    assert rules(reader=tree(INTEGER), writer=tree({"type": "number"})) == ["TYPE_NARROWED"]


def test_mutually_recursive_definitions_compare_without_looping() -> None:
    definitions = {
        "a": obj(b={"$ref": "#/definitions/b"}),
        "b": obj(a={"$ref": "#/definitions/a"}, n=INTEGER),
    }
    value = {"$ref": "#/definitions/a", "definitions": definitions}
    assert rules(reader=value, writer=value) == []


def test_differences_lists_compatible_changes_too() -> None:
    found = differences(
        schema({"type": "string", "maxLength": 3}), schema({"type": "string", "maxLength": 5})
    )
    assert [(d.type, d.path, d.compatible) for d in found] == [("MAX_LENGTH_INCREASED", "#/maxLength", True)]
