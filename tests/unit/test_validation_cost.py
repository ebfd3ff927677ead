"""Validation against a schema that bounds its own cost (a flat Avro record) skips measuring the payload
and spends the schema's cost instead; a schema whose cost the payload decides (arrays, maps, recursive
types) still has the payload measured, bounded and budgeted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kschema.formats import SchemaFormat, parse_schema
from kschema.formats.budget import TooComplexError, work_budget
from kschema.formats.validation import validate_payload


def _avro(schema: Any) -> Any:
    return parse_schema(SchemaFormat.AVRO, json.dumps(schema))


def _record(*fields: dict[str, Any], name: str = "R") -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields)}


def test_a_flat_record_costs_one_step_per_node_it_names() -> None:
    parsed = _avro(
        _record(
            {"name": "a", "type": "string"},
            {"name": "b", "type": ["null", "long"]},
            {"name": "c", "type": "int"},
        )
    )
    # the record, a, the union and its two branches, c
    assert parsed.validation_cost == 6


@pytest.mark.parametrize(
    "field_type",
    [
        {"type": "array", "items": "string"},
        {"type": "map", "values": "long"},
        ["null", {"type": "array", "items": "int"}],
        ["null", "R"],  # recursive
    ],
    ids=["array", "map", "array-in-union", "recursive"],
)
def test_a_schema_the_payload_can_make_longer_or_deeper_has_no_fixed_cost(field_type: Any) -> None:
    assert _avro(_record({"name": "x", "type": field_type})).validation_cost is None


def test_a_named_type_used_many_times_is_counted_each_time_and_a_huge_count_means_measuring() -> None:
    leaf = _record(*({"name": f"f{i}", "type": "string"} for i in range(10)), name="Leaf")
    twice = _avro(_record({"name": "a", "type": leaf}, {"name": "b", "type": "Leaf"}))
    assert twice.validation_cost == 1 + 2 * 11

    # 10 ** 7 paths through a DAG of named types: past any budget, so the payload decides, as before.
    level: Any = leaf
    for depth in range(7):
        level = _record(
            {"name": "first", "type": level},
            *(
                {"name": f"g{i}", "type": level["name"] if isinstance(level, dict) else level}
                for i in range(9)
            ),
            name=f"L{depth}",
        )
    assert _avro(level).validation_cost is None


def test_a_payload_nested_deeper_than_a_flat_schema_is_invalid_and_not_walked() -> None:
    parsed = _avro(_record({"name": "a", "type": "string"}))
    deep: Any = "x"
    for _ in range(100_000):
        deep = [deep]

    issues = validate_payload(parsed, {"a": deep})

    assert issues
    assert validate_payload(parsed, {"a": "fine", "extra": deep}) == []  # Avro ignores unknown keys


def test_the_schema_cost_is_spent_from_an_outer_budget() -> None:
    parsed = _avro(_record(*({"name": f"f{i}", "type": "string"} for i in range(50))))
    payload = {f"f{i}": "v" for i in range(50)}

    with work_budget("a batch", 51 * 3, 10.0):
        for _ in range(3):
            assert validate_payload(parsed, payload) == []
        with pytest.raises(TooComplexError, match="a batch needs more than 153 steps"):
            validate_payload(parsed, payload)


def test_a_payload_of_a_schema_with_arrays_is_still_measured_and_bounded() -> None:
    parsed = _avro(_record({"name": "xs", "type": {"type": "array", "items": "long"}}))
    nested: Any = [1]
    for _ in range(400):
        nested = [nested]

    assert [i.message for i in validate_payload(parsed, {"xs": nested})] == [
        "payload nests deeper than 256 levels"
    ]
