"""Bad input never crashes the Avro and JSON Schema parsers, and every refusal comes from a check that
knows what it refuses: arbitrary JSON values give a parsed schema or an `InvalidSchemaError` whose message
is not one of the old catch-alls. Any other exception (a `TypeError`, a `KeyError`) is a bug the fuzzer
found, and fails the test instead of being reported as an invalid schema."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kschema.formats import InvalidSchemaError, SchemaFormat, parse_schema
from tests.unit.test_protobuf_fuzz import CATCH_ALL_MESSAGES

KEYS = st.sampled_from(
    [
        "type", "name", "namespace", "fields", "items", "values", "symbols", "size", "default", "aliases",
        "logicalType", "precision", "scale", "order", "doc",
        "$ref", "$id", "$schema", "properties", "required", "additionalProperties", "definitions", "$defs",
        "allOf", "anyOf", "oneOf", "not", "enum", "const", "minimum", "maxLength", "pattern", "if", "then",
        "prefixItems", "dependencies", "$dynamicRef", "$dynamicAnchor", "$anchor", "format",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["record", "string", "int", "long", "array", "map", "enum", "fixed", "object", "null",
                     "#/definitions/a", "#", "a", "decimal", "uuid", "date", "bytes", "com.acme.X", ""]),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


def _outcome(fmt: SchemaFormat, value: Any) -> None:
    try:
        parse_schema(fmt, json.dumps(value))
    except InvalidSchemaError as exc:
        error = exc
    else:
        return
    assert error.reason
    assert not error.reason.startswith(CATCH_ALL_MESSAGES), f"refused by a catch-all: {error}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_arbitrary_json_as_an_avro_schema_is_parsed_or_refused_by_a_named_check(value: Any) -> None:
    _outcome(SchemaFormat.AVRO, value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_arbitrary_json_as_a_json_schema_is_parsed_or_refused_by_a_named_check(value: Any) -> None:
    _outcome(SchemaFormat.JSON, value)
