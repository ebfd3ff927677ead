"""Avro reader/writer rules, one sentence per rule, plus the named corpus in tests/data/avro/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kschema.compat import CompatibilityLevel, VersionedSchema, check_compatibility, check_reader_writer
from kschema.compat.avro import reader_issues
from kschema.formats.avro import AvroSchema, parse

PAIRS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "data" / "avro" / "compat_pairs.json").read_text()
)


def _p(schema: Any) -> AvroSchema:
    return parse(json.dumps(schema))


def _record(*fields: dict[str, Any], name: str = "Order") -> AvroSchema:
    return _p({"type": "record", "name": name, "fields": list(fields)})


@pytest.mark.parametrize("pair", PAIRS, ids=[p["name"] for p in PAIRS])
def test_named_pair(pair: dict[str, Any]) -> None:
    issues = reader_issues(_p(pair["reader"]), _p(pair["writer"]))
    assert (not issues) is pair["compatible"], issues
    if not pair["compatible"]:
        assert (issues[0].location, issues[0].rule) == (pair["location"], pair["rule"])
        assert issues[0].message


def test_removing_a_field_without_default_breaks_forward() -> None:
    old = _record({"name": "id", "type": "string"}, {"name": "cost", "type": "int"})
    new = _record({"name": "id", "type": "string"})
    result = check_compatibility(
        VersionedSchema(2, new), [VersionedSchema(1, old)], CompatibilityLevel.FORWARD
    )
    assert not result.compatible
    assert result.messages == [
        "/fields/cost: field 'cost' is missing from the writer and has no default in the reader; "
        "a reader of version 1 cannot read data written with version 2"
    ]


def test_removing_a_field_with_default_keeps_full_compatibility() -> None:
    old = _record({"name": "id", "type": "string"}, {"name": "cost", "type": "int", "default": 0})
    new = _record({"name": "id", "type": "string"})
    assert check_compatibility(VersionedSchema(2, new), [VersionedSchema(1, old)], "FULL").compatible


def test_a_transitive_level_finds_the_break_with_an_older_version() -> None:
    v1 = _record({"name": "cost", "type": "int"})
    v2 = _record({"name": "cost", "type": "long"})
    v3 = _record({"name": "cost", "type": "long"})
    history = [VersionedSchema(1, v1), VersionedSchema(2, v2)]
    assert check_compatibility(VersionedSchema(3, v3), history, "FORWARD").compatible
    result = check_compatibility(VersionedSchema(3, v3), history, "FORWARD_TRANSITIVE")
    assert [(i.reader_version, i.writer_version, i.rule) for i in result.incompatibilities] == [
        (1, 3, "TYPE_MISMATCH")
    ]


def test_a_reader_field_matching_two_writer_fields_by_alias_is_ambiguous() -> None:
    reader = _record({"name": "a", "aliases": ["b"], "type": "int"})
    writer = _record({"name": "a", "type": "int"}, {"name": "b", "type": "int"})
    assert [i.rule for i in reader_issues(reader, writer)] == ["AMBIGUOUS_READER_FIELD"]


def test_a_reader_alias_must_name_the_writers_fullname() -> None:
    writer = _p({"type": "record", "name": "Order", "namespace": "a", "fields": []})
    unqualified = _p(
        {"type": "record", "name": "Purchase", "namespace": "b", "aliases": ["Order"], "fields": []}
    )
    qualified = _p(
        {"type": "record", "name": "Purchase", "namespace": "b", "aliases": ["a.Order"], "fields": []}
    )
    assert [i.rule for i in reader_issues(unqualified, writer)] == ["NAME_MISMATCH"]
    assert reader_issues(qualified, writer) == []


def test_mutually_recursive_types_compare_without_looping() -> None:
    def tree(leaf: str) -> AvroSchema:
        return _p(
            {
                "type": "record",
                "name": "A",
                "fields": [
                    {"name": "v", "type": leaf},
                    {
                        "name": "b",
                        "type": [
                            "null",
                            {"type": "record", "name": "B", "fields": [{"name": "a", "type": ["null", "A"]}]},
                        ],
                    },
                ],
            }
        )

    assert reader_issues(tree("long"), tree("int")) == []
    assert [i.location for i in reader_issues(tree("int"), tree("long"))] == ["/fields/v"]


def test_every_issue_of_a_record_is_reported_not_only_the_first() -> None:
    reader = _record(
        {"name": "a", "type": "int"}, {"name": "b", "type": "int"}, {"name": "c", "type": "string"}
    )
    writer = _record({"name": "a", "type": "long"}, {"name": "c", "type": "int"})
    assert [(i.location, i.rule) for i in reader_issues(reader, writer)] == [
        ("/fields/a", "TYPE_MISMATCH"),
        ("/fields/b", "READER_FIELD_MISSING_DEFAULT_VALUE"),
        ("/fields/c", "TYPE_MISMATCH"),
    ]


def test_types_from_references_are_compared_structurally() -> None:
    from kschema.formats import Reference, ResolvedReference

    def with_address(zip_type: str) -> AvroSchema:
        address = {"type": "record", "name": "Address", "fields": [{"name": "zip", "type": zip_type}]}
        ref = ResolvedReference(Reference("address", "address-value", 1), json.dumps(address))
        return parse(
            json.dumps({"type": "record", "name": "Order", "fields": [{"name": "to", "type": "Address"}]}),
            (ref,),
        )

    assert check_reader_writer(with_address("long"), with_address("int")) == []
    assert [i.location for i in check_reader_writer(with_address("int"), with_address("long"))] == [
        "/fields/to/fields/zip"
    ]


def test_rules_refuse_schemas_of_another_format() -> None:
    class NotAvro:
        pass

    with pytest.raises(TypeError):
        reader_issues(NotAvro(), _p("int"))  # type: ignore[arg-type]  # deliberately the wrong type


def test_findings_of_a_record_come_in_the_reader_s_field_order_whatever_their_kind() -> None:
    # Fields both sides hold as the same primitive are skipped in bulk; the others (a changed type, a
    # missing field, a nested record, an aliased field) are still found, in the reader's order.
    nested_writer = {"type": "record", "name": "Inner", "fields": [{"name": "a", "type": "int"}]}
    nested_reader = {"type": "record", "name": "Inner", "fields": [{"name": "a", "type": "string"}]}
    writer = _record(
        {"name": "same", "type": "string"},
        {"name": "changed", "type": "string"},
        {"name": "inner", "type": nested_writer},
        {"name": "old_name", "type": "long"},
    )
    reader = _record(
        {"name": "missing", "type": "long"},
        {"name": "same", "type": "string"},
        {"name": "inner", "type": nested_reader},
        {"name": "changed", "type": "int"},
        {"name": "renamed", "type": "int", "aliases": ["old_name"]},
    )
    issues = reader_issues(reader, writer)
    assert [(i.location, i.rule) for i in issues] == [
        ("/fields/missing", "READER_FIELD_MISSING_DEFAULT_VALUE"),
        ("/fields/inner/fields/a", "TYPE_MISMATCH"),
        ("/fields/changed", "TYPE_MISMATCH"),
        ("/fields/renamed", "TYPE_MISMATCH"),
    ]
