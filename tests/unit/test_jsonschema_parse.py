"""JSON Schema parsing: JSON syntax, dialect metaschemas, `$ref` resolution, canonical form, fingerprints,
payload validation, and bad input that must end in InvalidSchemaError."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kschema.compat.jsonschema import reader_issues
from kschema.formats import InvalidSchemaError, Reference, ResolvedReference, parse_schema
from kschema.formats.jsonschema import MAX_NESTING_DEPTH, MAX_SCHEMA_BYTES, ParsedJsonSchema, parse


def ref(name: str, schema: Any, *nested: ResolvedReference) -> ResolvedReference:
    return ResolvedReference(Reference(name, name.split("/")[-1], 1), json.dumps(schema), tuple(nested))


def error_of(text: str, references: tuple[ResolvedReference, ...] = ()) -> InvalidSchemaError:
    with pytest.raises(InvalidSchemaError) as caught:
        parse(text, references)
    return caught.value


def test_parse_schema_dispatches_json_to_the_json_schema_parser() -> None:
    parsed = parse_schema("JSON", '{"type": "string"}')
    assert isinstance(parsed, ParsedJsonSchema)
    assert parsed.format == "JSON"


def test_malformed_json_names_the_line_and_column() -> None:
    error = error_of('{\n  "type": "object",\n  "properties": {\n}')
    assert "not valid JSON" in error.reason
    assert "line 4 column 2" in error.reason


def test_a_json_array_is_not_a_schema() -> None:
    assert "must be an object or a boolean" in error_of("[1, 2]").reason


def test_nan_is_refused_because_it_is_not_json() -> None:
    assert "NaN" in error_of('{"maximum": NaN}').reason


def test_a_schema_without_dollar_schema_is_read_as_draft_07_like_confluent() -> None:
    assert parse('{"type": "string"}').dialect.name == "draft-07"


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("http://json-schema.org/draft-04/schema#", "draft-04"),
        ("http://json-schema.org/draft-06/schema#", "draft-06"),
        ("http://json-schema.org/draft-07/schema#", "draft-07"),
        ("https://json-schema.org/draft/2019-09/schema", "2019-09"),
        ("https://json-schema.org/draft/2020-12/schema", "2020-12"),
    ],
)
def test_each_supported_dialect_is_recognised_from_dollar_schema(uri: str, name: str) -> None:
    assert parse(json.dumps({"$schema": uri, "type": "object"})).dialect.name == name


def test_an_unknown_dialect_is_refused_at_dollar_schema() -> None:
    error = error_of('{"$schema": "http://example.com/my-dialect", "type": "string"}')
    assert error.location == "/$schema"
    assert "unsupported $schema" in error.reason


def test_a_metaschema_violation_is_located_by_json_pointer() -> None:
    error = error_of('{"type": "object", "properties": {"cost": {"type": "money"}}}')
    assert error.location == "/properties/cost/type"
    assert "draft-07" in error.reason


def test_draft_04_checks_its_own_metaschema_where_draft_07_differs() -> None:
    numeric_exclusive = '{"$schema": "http://json-schema.org/draft-04/schema#", "exclusiveMinimum": 5}'
    assert error_of(numeric_exclusive).location == "/exclusiveMinimum"
    assert parse('{"exclusiveMinimum": 5}').dialect.name == "draft-07"


def test_an_invalid_regular_expression_is_refused() -> None:
    assert error_of('{"type": "string", "pattern": "(["}').location == "/pattern"


def test_a_dangling_ref_is_refused_naming_the_reference() -> None:
    error = error_of('{"properties": {"customer": {"$ref": "customer.json"}}}')
    assert error.location == "/properties/customer/$ref"
    assert "'customer.json'" in error.reason


def test_a_ref_to_a_missing_local_definition_is_refused() -> None:
    error = error_of('{"$ref": "#/definitions/nowhere", "definitions": {}}')
    assert "#/definitions/nowhere" in error.reason


def test_a_ref_resolves_to_a_provided_reference_by_its_name() -> None:
    customer = ref("customer.json", {"type": "object", "properties": {"name": {"type": "string"}}})
    parsed = parse('{"properties": {"customer": {"$ref": "customer.json"}}}', (customer,))
    assert parsed.validate({"customer": {"name": "Ada"}}) == []
    assert parsed.validate({"customer": {"name": 7}})[0].location == "/customer/name"


def test_a_ref_with_a_url_name_and_a_pointer_resolves() -> None:
    types = ref(
        "https://acme.example/types.json", {"definitions": {"cents": {"type": "integer", "minimum": 0}}}
    )
    parsed = parse('{"$ref": "https://acme.example/types.json#/definitions/cents"}', (types,))
    assert parsed.validate(5) == []
    assert parsed.validate(-1) != []


def test_a_relative_ref_resolves_against_the_root_id() -> None:
    address = ref("https://acme.example/address.json", {"type": "string"})
    schema = {"$id": "https://acme.example/order.json", "properties": {"ship_to": {"$ref": "address.json"}}}
    assert parse(json.dumps(schema), (address,)).validate({"ship_to": 3}) != []


def test_nested_references_resolve_through_the_referenced_schema() -> None:
    money = ref("money.json", {"type": "integer"})
    line = ref("line.json", {"properties": {"cost": {"$ref": "money.json"}}}, money)
    parsed = parse('{"items": {"$ref": "line.json"}}', (line,))
    assert [i.location for i in parsed.validate([{"cost": "free"}])] == ["/0/cost"]


def test_an_invalid_referenced_schema_is_refused_with_its_name_in_the_location() -> None:
    bad = ref("bad.json", {"type": "nothing"})
    error = error_of('{"$ref": "bad.json"}', (bad,))
    assert error.location == "references/bad.json/type"


def test_a_reference_cycle_without_constraints_is_refused() -> None:
    first = ref("a.json", {"$ref": "b.json"})
    second = ref("b.json", {"allOf": [{"$ref": "a.json"}]})
    assert "cycle" in error_of('{"$ref": "a.json"}', (first, second)).reason


def test_a_self_ref_at_the_root_is_refused() -> None:
    assert "cycle" in error_of('{"$ref": "#"}').reason


def test_a_recursive_tree_type_is_accepted_and_validates_deep_payloads_without_crashing() -> None:
    parsed = parse(
        '{"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}'
    )
    assert parsed.validate({"children": [{"children": []}]}) == []
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        child: dict[str, Any] = {}
        node["children"] = [child]
        node = child
    issues = parsed.validate(deep)
    assert issues == [] or "too deeply" in issues[0].message


def test_canonical_form_sorts_keys_and_drops_whitespace() -> None:
    parsed = parse('{ "type" : "object",\n "properties": {"b": {"type": "string"}, "a": {}}}')
    assert parsed.canonical == '{"properties":{"a":{},"b":{"type":"string"}},"type":"object"}'


def test_the_same_schema_written_differently_has_the_same_fingerprint() -> None:
    first = parse('{"type": "object", "required": ["a"]}')
    second = parse('{\n  "required": ["a"],\n  "type": "object"\n}')
    assert first.fingerprint == second.fingerprint
    assert len(first.fingerprint) == 64


def test_the_references_are_part_of_the_fingerprint() -> None:
    text = '{"$ref": "customer.json"}'
    v1 = parse(text, (ResolvedReference(Reference("customer.json", "customer", 1), "{}"),))
    v2 = parse(text, (ResolvedReference(Reference("customer.json", "customer", 2), "{}"),))
    assert v1.fingerprint != v2.fingerprint


def test_validation_reports_each_issue_with_a_json_pointer_and_a_message() -> None:
    parsed = parse(
        '{"type": "object", "required": ["id"], "properties": {"tags": {"items": {"type": "string"}}}}'
    )
    issues = parsed.validate({"tags": ["ok", 3]})
    assert {(i.location, i.message) for i in issues} == {
        ("", "'id' is a required property"),
        ("/tags/1", "3 is not of type 'string'"),
    }


def test_validation_uses_the_validator_compiled_at_parse_time() -> None:
    parsed = parse('{"type": "integer"}')
    calls: list[Any] = []
    compiled = parsed._validator

    class Spy:
        def iter_errors(self, payload: Any) -> Any:
            calls.append(payload)
            return compiled.iter_errors(payload)

    spied = dataclasses.replace(parsed, _validator=Spy())  # type: ignore[arg-type]  # a duck-typed spy
    assert spied.validate(1) == []
    assert spied.validate("x") != []
    assert calls == [1, "x"]


def test_a_schema_over_the_size_limit_is_refused() -> None:
    text = json.dumps({"description": "x" * (5 * 1024 * 1024)})
    error = error_of(text)
    assert str(MAX_SCHEMA_BYTES) in error.reason


def test_ten_thousand_deep_nesting_is_refused() -> None:
    assert "nests" in error_of('{"not": ' * 10_000 + "{}" + "}" * 10_000).reason
    assert "nests" in error_of("[" * 10_000 + "]" * 10_000).reason


def test_nesting_just_over_the_limit_is_refused_with_its_location() -> None:
    assert parse('{"a": ' * (MAX_NESTING_DEPTH - 1) + "{}" + "}" * (MAX_NESTING_DEPTH - 1))
    text = '{"a": ' * MAX_NESTING_DEPTH + "{}" + "}" * MAX_NESTING_DEPTH
    error = error_of(text)
    assert error.location.startswith("/a/a/a")


def test_an_unpaired_surrogate_is_refused_as_invalid_utf8() -> None:
    assert "UTF-8" in error_of('{"description": "\ud800"}').reason


def test_an_escaped_unpaired_surrogate_is_refused_as_invalid_utf8() -> None:
    assert "unpaired surrogate" in error_of('{"description": "\\udc00"}').reason


# Fuzzing: whatever comes in, parse returns a schema or raises InvalidSchemaError, never anything else.

_json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
_json_values = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
_keywords = st.sampled_from(
    ["type", "properties", "items", "$ref", "allOf", "anyOf", "not", "enum", "const", "required",
     "additionalProperties", "maxLength", "minimum", "multipleOf", "$schema", "definitions", "pattern"]
)  # fmt: skip
_schemaish = st.recursive(
    st.booleans() | st.dictionaries(_keywords, _json_leaf, max_size=3),
    lambda inner: st.dictionaries(_keywords, inner | st.lists(inner, max_size=3), max_size=4),
    max_leaves=15,
)
# One unpaired surrogate between ordinary text (a high surrogate followed by a low one would be a valid pair).
_surrogates = st.tuples(
    st.text(alphabet="ab c", max_size=4),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    st.text(alphabet="ab c", max_size=4),
).map("".join)


def _parse_or_invalid(text: str) -> ParsedJsonSchema | None:
    """The parsed schema, or None when parse refused it with InvalidSchemaError (a reason is required)."""
    try:
        return parse(text)
    except InvalidSchemaError as exc:
        reason = exc.reason
    assert reason
    return None


@pytest.mark.timeout(120)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=200),
        _json_values.map(json.dumps),
        _schemaish.map(json.dumps),
        st.tuples(_schemaish.map(json.dumps), st.integers(0, 50)).map(lambda t: t[0][: t[1]]),
        st.tuples(_schemaish.map(json.dumps), _surrogates).map(
            lambda t: t[0][:-1] + json.dumps(t[1])[:-1] + "}"
        ),
    )
)
def test_fuzzed_text_parses_or_gives_invalid_schema_error(text: str) -> None:
    parsed = _parse_or_invalid(text)
    if parsed is not None:
        # Every schema that parses can be compared with itself, and is compatible with itself.
        assert reader_issues(parsed, parsed) == []


@pytest.mark.timeout(120)
@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=MAX_NESTING_DEPTH + 1, max_value=10_000), st.sampled_from(["not", "items", "x"]))
def test_fuzzed_deep_nesting_gives_invalid_schema_error(depth: int, keyword: str) -> None:
    text = f'{{"{keyword}": ' * depth + "{}" + "}" * depth
    with pytest.raises(InvalidSchemaError):
        parse(text)


@pytest.mark.timeout(120)
@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=30), st.booleans())
def test_fuzzed_reference_cycles_give_invalid_schema_error(length: int, through_all_of: bool) -> None:
    def link(target: str) -> dict[str, Any]:
        return {"allOf": [{"$ref": target}]} if through_all_of else {"$ref": target}

    definitions = {f"d{i}": link(f"#/definitions/d{(i + 1) % length}") for i in range(length)}
    with pytest.raises(InvalidSchemaError, match="cycle"):
        parse(json.dumps({"definitions": definitions, "$ref": "#/definitions/d0"}))
    names = [f"r{i}.json" for i in range(length)]
    references = tuple(ref(names[i], link(names[(i + 1) % length])) for i in range(length))
    with pytest.raises(InvalidSchemaError, match="cycle"):
        parse(json.dumps({"$ref": names[0]}), references)


@pytest.mark.timeout(120)
@settings(max_examples=50, deadline=None)
@given(_surrogates, st.sampled_from(["raw", "escaped", "reference"]))
def test_fuzzed_surrogates_give_invalid_schema_error(bad: str, where: str) -> None:
    raw = '{"description": "' + bad + '"}'
    escaped = '{"description": ' + json.dumps(bad) + "}"  # \\udXXX escapes decode to unpaired surrogates
    text, references = {
        "raw": (raw, ()),
        "escaped": (escaped, ()),
        "reference": ('{"$ref": "x.json"}', (ResolvedReference(Reference("x.json", "x", 1), raw),)),
    }[where]
    with pytest.raises(InvalidSchemaError, match="UTF-8"):
        parse(text, references)


def test_a_five_megabyte_reference_gives_invalid_schema_error() -> None:
    huge = ResolvedReference(Reference("big.json", "big", 1), json.dumps({"enum": ["x" * 1000] * 5000}))
    with pytest.raises(InvalidSchemaError) as caught:
        parse('{"$ref": "big.json"}', (huge,))
    assert caught.value.location == "references/big.json"
