"""JSON Schema records between two versions, where most properties stay the same: an equal property of
a kind compared by its own keywords is not compared at all, every other one is, and the differences come
out in the same order (the original's properties, then the update's new ones)."""

from __future__ import annotations

import json
from typing import Any

from kschema.compat.jsonschema import differences
from kschema.formats.budget import work_budget
from kschema.formats.jsonschema import ParsedJsonSchema, parse

STRING: dict[str, Any] = {"type": "string"}


def schema(value: Any) -> ParsedJsonSchema:
    return parse(json.dumps(value))


def record(**changed: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {f"f{i}": {"type": "string", "maxLength": 10 + i} for i in range(50)}
    properties.update(changed)
    return {"type": "object", "properties": {k: v for k, v in properties.items() if v is not None}}


def found(original: Any, update: Any) -> list[tuple[str, str]]:
    return [(d.type, d.path) for d in differences(schema(original), schema(update))]


def test_equal_properties_of_plain_kinds_cost_no_comparison() -> None:
    # The two roots and the one changed property: two steps, however many properties are equal.
    with work_budget("the check", 2, 10.0):
        assert found(record(), record(f7={"type": "integer"})) == [("TYPE_CHANGED", "#/properties/f7")]


def test_equal_properties_that_compare_subschemas_are_still_compared() -> None:
    # `not` reports a difference even between equal contents (Confluent's rule), so it is compared.
    excluded = {"not": {"type": "integer"}}
    assert found(record(n=excluded), record(n=excluded)) == [("NOT_TYPE_NARROWED", "#/properties/n/not")]


def test_differences_follow_the_original_order_then_the_new_properties() -> None:
    original = record(f3={"type": "integer"}, f1={"type": "integer"}, n={"not": STRING})
    update = record(f9=None, z={"type": "string"}, a={"type": "string"}, n={"not": STRING})
    assert found(original, update) == [
        ("TYPE_CHANGED", "#/properties/f1"),
        ("TYPE_CHANGED", "#/properties/f3"),
        ("PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL", "#/properties/f9"),
        ("NOT_TYPE_NARROWED", "#/properties/n/not"),
        ("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", "#/properties/z"),
        ("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", "#/properties/a"),
    ]


def test_required_changes_follow_the_original_order() -> None:
    original = {**record(), "required": ["f4", "f2"]}
    update = {**record(f1={"type": "string", "default": "x"}), "required": ["f2", "f1", "f30"]}
    assert found(original, update) == [
        ("REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED", "#/required/f1"),
        ("REQUIRED_ATTRIBUTE_REMOVED", "#/required/f4"),
        ("REQUIRED_ATTRIBUTE_ADDED", "#/required/f30"),
        ("MAX_LENGTH_REMOVED", "#/properties/f1/maxLength"),
    ]
