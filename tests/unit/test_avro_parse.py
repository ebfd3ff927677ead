"""Avro parsing: canonical form, fingerprints, references, strictness and payload validation."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import fastavro.schema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kschema.formats import InvalidSchemaError, Reference, ResolvedReference, SchemaFormat, parse_schema
from kschema.formats.avro import AvroSchema, parse

CORPUS = Path(__file__).parents[1] / "data" / "conformance" / "avro.jsonl"

ORDER = {
    "type": "record",
    "name": "Order",
    "namespace": "com.acme",
    "doc": "An order.",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "cost", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
    ],
}


def _ref(name: str, schema: dict[str, Any], *refs: ResolvedReference, version: int = 1) -> ResolvedReference:
    return ResolvedReference(Reference(name, f"{name}-value", version), json.dumps(schema), refs)


def test_whitespace_and_key_order_do_not_change_the_canonical_form() -> None:
    compact = parse(json.dumps(ORDER, separators=(",", ":")))
    spaced = parse(json.dumps(dict(reversed(list(ORDER.items()))), indent=4))
    assert compact.canonical == spaced.canonical
    assert compact.fingerprint == spaced.fingerprint


def test_a_primitive_written_as_an_object_has_the_same_canonical_form_as_its_name() -> None:
    a = parse(
        json.dumps({"type": "record", "name": "R", "fields": [{"name": "x", "type": {"type": "string"}}]})
    )
    b = parse(json.dumps({"type": "record", "name": "R", "fields": [{"name": "x", "type": "string"}]}))
    assert a.canonical == b.canonical


def test_a_namespace_spelled_inline_or_as_an_attribute_gives_the_same_canonical_form() -> None:
    inline = parse(json.dumps({"type": "fixed", "name": "com.acme.Hash", "size": 16}))
    attribute = parse(json.dumps({"type": "fixed", "name": "Hash", "namespace": "com.acme", "size": 16}))
    assert inline.canonical == attribute.canonical == '{"name":"com.acme.Hash","type":"fixed","size":16}'


def test_docs_are_dropped_but_defaults_aliases_and_logical_types_are_kept() -> None:
    canonical = parse(json.dumps({**ORDER, "aliases": ["Purchase"]})).canonical
    assert "An order." not in canonical
    assert '"default":null' in canonical
    assert '"logicalType":"decimal","precision":9,"scale":2' in canonical
    assert '"aliases":["com.acme.Purchase"]' in canonical


def test_changing_a_default_changes_the_fingerprint() -> None:
    changed = json.loads(json.dumps(ORDER))
    changed["fields"][2]["default"] = "none"
    changed["fields"][2]["type"] = ["string", "null"]
    assert parse(json.dumps(ORDER)).fingerprint != parse(json.dumps(changed)).fingerprint


def test_the_fingerprint_of_a_schema_without_references_is_the_sha256_of_its_canonical_form() -> None:
    import hashlib

    parsed = parse('"long"')
    assert parsed.canonical == '"long"'
    assert parsed.fingerprint == hashlib.sha256(b'"long"').hexdigest()


def test_the_same_text_with_different_references_has_a_different_fingerprint() -> None:
    address = {"type": "record", "name": "Address", "fields": [{"name": "city", "type": "string"}]}
    text = json.dumps({"type": "array", "items": "Address"})
    v1 = parse(text, (_ref("address", address, version=1),))
    v2 = parse(text, (_ref("address", address, version=2),))
    assert v1.canonical == v2.canonical == '{"type":"array","items":"Address"}'
    assert v1.fingerprint != v2.fingerprint


def test_stripping_the_kept_attributes_gives_fastavros_parsing_canonical_form() -> None:
    checked = 0
    for line in CORPUS.read_text().splitlines():
        record = json.loads(line)
        for value in (record["reader_or_new"], record["writer_or_old"]):
            if record.get("references_new") is not None:
                continue
            try:
                ours = parse(json.dumps(value))
            except InvalidSchemaError:
                continue
            assert _strip(json.loads(ours.canonical)) == fastavro.schema.to_parsing_canonical_form(value)
            checked += 1
    assert checked > 1000


def _strip(node: Any) -> str:
    if isinstance(node, list):
        return "[" + ",".join(_strip(n) for n in node) + "]"
    if isinstance(node, str):
        return json.dumps(node)
    if set(node) - {"type", "logicalType", "precision", "scale"} == set():
        return json.dumps(node["type"])
    parts = []
    for key, value in node.items():
        if key in ("default", "aliases", "logicalType", "precision", "scale"):
            continue
        if key == "fields":
            parts.append('"fields":[' + ",".join(_strip_field(f) for f in value) + "]")
        elif key in ("type", "items", "values"):
            parts.append(f'"{key}":{_strip(value)}')
        else:
            parts.append(f'"{key}":{json.dumps(value, separators=(",", ":"))}')
    return "{" + ",".join(parts) + "}"


def _strip_field(node: dict[str, Any]) -> str:
    return '{"name":' + json.dumps(node["name"]) + ',"type":' + _strip(node["type"]) + "}"


def test_named_types_come_from_references_and_their_own_references_first() -> None:
    country = {"type": "enum", "name": "Country", "namespace": "com.acme", "symbols": ["FR", "DE"]}
    address = {
        "type": "record",
        "name": "Address",
        "namespace": "com.acme",
        "fields": [{"name": "country", "type": "Country"}],
    }
    order = {"type": "record", "name": "Order", "fields": [{"name": "ship_to", "type": "com.acme.Address"}]}
    parsed = parse(json.dumps(order), (_ref("address", address, _ref("country", country)),))
    assert (
        parsed.canonical
        == '{"name":"Order","type":"record","fields":[{"name":"ship_to","type":"com.acme.Address"}]}'
    )
    assert parsed.validate({"ship_to": {"country": "FR"}}) == []
    assert parsed.validate({"ship_to": {"country": "XX"}}) != []


def test_the_same_reference_reached_twice_is_loaded_once() -> None:
    money = {"type": "fixed", "name": "Money", "size": 8}
    a = _ref(
        "a", {"type": "record", "name": "A", "fields": [{"name": "m", "type": "Money"}]}, _ref("money", money)
    )
    b = _ref(
        "b", {"type": "record", "name": "B", "fields": [{"name": "m", "type": "Money"}]}, _ref("money", money)
    )
    parse(json.dumps({"type": "array", "items": ["A", "B"]}), (a, b))


def test_a_reference_that_refers_back_to_itself_is_a_cycle() -> None:
    inner = _ref("a", {"type": "fixed", "name": "X", "size": 1})
    cyclic = _ref(
        "a",
        {"type": "fixed", "name": "X", "size": 1},
        _ref("b", {"type": "fixed", "name": "Y", "size": 1}, inner),
    )
    with pytest.raises(InvalidSchemaError, match="cycle"):
        parse('"X"', (cyclic,))


def test_a_missing_reference_is_an_unknown_type_with_its_location() -> None:
    with pytest.raises(InvalidSchemaError) as caught:
        parse(json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "Address"}]}))
    assert caught.value.location == "/fields/0/type"
    assert "unknown type 'Address'" in caught.value.reason


@pytest.mark.parametrize(
    ("schema", "location", "reason"),
    [
        ({"type": "record", "name": "R"}, "/fields", "'fields'"),
        (
            {
                "type": "record",
                "name": "R",
                "fields": [{"name": "a", "type": "int"}, {"name": "a", "type": "int"}],
            },
            "/fields/1",
            "already used",
        ),
        (
            {
                "type": "record",
                "name": "R",
                "fields": [{"name": "a", "type": "int"}, {"name": "b", "aliases": ["a"], "type": "int"}],
            },
            "/fields/1",
            "already used",
        ),
        (
            {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int", "default": "x"}]},
            "/fields/0/default",
            "not a int",
        ),
        (
            {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int", "default": 2**40}]},
            "/fields/0/default",
            "not a int",
        ),
        (
            {"type": "enum", "name": "E", "symbols": ["A"], "default": "B"},
            "/default",
            "not one of the symbols",
        ),
        ({"type": "enum", "name": "E", "symbols": ["A", "A"]}, "/symbols", "unique"),
        ({"type": "enum", "name": "E", "symbols": ["1A"]}, "/symbols/0", "enum symbol"),
        ({"type": "fixed", "name": "F", "size": -1}, "/size", "size"),
        ({"type": "record", "name": "a-b", "fields": []}, "/name", "invalid name"),
        ({"type": "array"}, "", "'items'"),
        (["int", "int"], "/1", "more than once"),
        (["int", ["string"]], "/1", "another union"),
        ({"type": "bytes", "logicalType": "decimal", "precision": 2, "scale": 3}, "/scale", "exceed"),
        (
            {
                "type": "record",
                "name": "R",
                "fields": [{"name": "a", "type": {"type": "fixed", "name": "R", "size": 1}}],
            },
            "/fields/0/type/name",
            "defined twice",
        ),
        ({"type": "record", "name": "int", "fields": []}, "/name", "primitive"),
        ({"type": "whatever"}, "/type", "unknown type"),
        ({"nope": 1}, "", "missing 'type'"),
    ],
)
def test_a_schema_avro_java_rejects_is_invalid_with_a_location(
    schema: Any, location: str, reason: str
) -> None:
    with pytest.raises(InvalidSchemaError) as caught:
        parse(json.dumps(schema))
    assert caught.value.location == location
    assert reason in caught.value.reason


def test_text_that_is_not_json_names_the_line_and_column() -> None:
    with pytest.raises(InvalidSchemaError, match="line 2 column 12"):
        parse('{"type":\n "record", }')


def test_parse_schema_dispatches_avro_to_this_module() -> None:
    assert isinstance(parse_schema(SchemaFormat.AVRO, '"int"'), AvroSchema)


def test_recursive_and_mutually_recursive_types_parse_and_validate() -> None:
    tree = {
        "type": "record",
        "name": "Node",
        "fields": [
            {"name": "value", "type": "int"},
            {"name": "children", "type": {"type": "array", "items": "Node"}},
            {
                "name": "peer",
                "type": [
                    "null",
                    {
                        "type": "record",
                        "name": "Peer",
                        "fields": [{"name": "back", "type": ["null", "Node"]}],
                    },
                ],
                "default": None,
            },
        ],
    }
    parsed = parse(json.dumps(tree))
    assert parsed.canonical.count('"name":"Node"') == 1
    assert parsed.validate({"value": 1, "children": [{"value": 2, "children": []}], "peer": None}) == []


def test_a_payload_that_does_not_conform_gives_a_located_issue() -> None:
    parsed = parse(json.dumps(ORDER))
    issues = parsed.validate({"id": 5, "cost": b"\x01", "note": None, "status": "NEW"})
    assert len(issues) == 1
    assert issues[0].location == "com.acme.Order.id"
    assert "expected string" in issues[0].message


def test_a_conforming_payload_has_no_issues() -> None:
    from decimal import Decimal

    parsed = parse(json.dumps(ORDER))
    assert parsed.validate({"id": "o-1", "cost": Decimal("1.25"), "note": None, "status": "PAID"}) == []
    assert parsed.validate({"id": "o-1", "cost": "not a number", "note": None, "status": "PAID"}) != []


def test_a_null_namespace_type_used_inside_a_namespaced_record_validates() -> None:
    schema = {
        "type": "record",
        "name": "R",
        "namespace": "a.b",
        "fields": [
            {
                "name": "x",
                "type": {
                    "type": "record",
                    "name": "Q",
                    "namespace": "",
                    "fields": [{"name": "i", "type": "int"}],
                },
            },
            {"name": "y", "type": "Q"},
        ],
    }
    parsed = parse(json.dumps(schema))
    assert parsed.validate({"x": {"i": 1}, "y": {"i": 2}}) == []
    assert [i.location for i in parsed.validate({"x": {"i": 1}, "y": {"i": "2"}})] == ["Q.i"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("10,000 nested arrays", "[" * 10_000 + "]" * 10_000),
        ("10,000 nested array types", '{"type":"array","items":' * 10_000 + '"int"' + "}" * 10_000),
        (
            "10,000 nested records",
            "".join(f'{{"type":"record","name":"R{i}","fields":[{{"name":"f","type":' for i in range(10_000))
            + '"int"'
            + "}]}" * 10_000,
        ),
        ("unpaired surrogate", '{"type":"fixed","name":"\udcff","size":1}'),
        ("empty text", ""),
        ("a number", "42"),
    ],
)
def test_hostile_input_is_an_invalid_schema_error(name: str, text: str) -> None:
    with pytest.raises(InvalidSchemaError):
        parse(text)


def test_a_5_mb_schema_parses() -> None:
    fields = [{"name": f"f{i}", "type": "string", "doc": "x" * 60} for i in range(60_000)]
    text = json.dumps({"type": "record", "name": "Big", "fields": fields})
    assert len(text) > 5_000_000
    assert parse(text).canonical.startswith('{"name":"Big"')


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.sampled_from(["int", "string", "record", "enum", "fixed", "array", "map", "null", "R", "a.R"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "name",
                    "namespace",
                    "fields",
                    "symbols",
                    "items",
                    "values",
                    "size",
                    "default",
                    "aliases",
                    "logicalType",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json)
def test_any_json_value_either_parses_or_is_an_invalid_schema_error(value: Any) -> None:
    try:
        parsed = parse(json.dumps(value))
    except InvalidSchemaError:
        return
    # Whatever parses has a canonical form that parses to itself.
    assert parse(parsed.canonical).canonical == parsed.canonical


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_either_parses_or_is_an_invalid_schema_error(text: str) -> None:
    with contextlib.suppress(InvalidSchemaError):
        parse(text)
