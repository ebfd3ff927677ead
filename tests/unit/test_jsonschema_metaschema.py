"""The metaschema check that remembers the subschemas it found valid: the same schemas refused with the
same errors as `check_schema` itself, whatever was remembered before, and what is remembered bounded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import exceptions, validators
from jsonschema.protocols import Validator

from kschema.formats import InvalidSchemaError, SchemaFormat, metaschema, parse_schema
from kschema.formats.metaschema import KnownValid, check_schema

DRAFT7 = validators.Draft7Validator
DRAFT4 = validators.Draft4Validator
DRAFT2020 = validators.Draft202012Validator


def _record(own: str, fields: int = 20) -> dict[str, Any]:
    properties: dict[str, Any] = {f"f{i}": {"type": "string", "maxLength": 10} for i in range(fields)}
    properties[own] = {"type": "integer"}
    return {"type": "object", "properties": properties, "additionalProperties": {"type": "integer"}}


def _error(validator: type[Validator], schema: Any, known: KnownValid) -> str | None:
    try:
        check_schema(validator, schema, known)
    except exceptions.SchemaError as exc:
        return f"{list(exc.absolute_path)} {exc.message}"
    return None


def _library_error(validator: type[Validator], schema: Any) -> str | None:
    try:
        validator.check_schema(schema)
    except exceptions.SchemaError as exc:
        return f"{list(exc.absolute_path)} {exc.message}"
    return None


def test_a_new_version_checks_only_the_subschemas_not_seen_before() -> None:
    known = KnownValid()
    assert _error(DRAFT7, _record("a"), known) is None
    remembered = len(known.lru)
    assert remembered >= 2  # {"type": "string", ...}, {"type": "integer"}
    hits = known.lru.hits
    assert _error(DRAFT7, _record("b"), known) is None
    assert known.lru.hits > hits
    assert len(known.lru) == remembered  # nothing new: every subschema was seen


# Each refused by the metaschema, with remembered subschemas around the bad one.
_INVALID: list[tuple[type[Validator], Any]] = [
    (DRAFT7, {**_record("a"), "properties": {**_record("a")["properties"], "bad": {"type": 5}}}),
    (DRAFT7, {**_record("a"), "additionalProperties": {"minLength": -1}}),
    (DRAFT7, {**_record("a"), "allOf": []}),
    (DRAFT7, {**_record("a"), "allOf": [{"type": "string", "maxLength": 10}, {"pattern": "("}]}),
    (DRAFT7, {**_record("a"), "required": "f0"}),
    (DRAFT7, {"properties": {"nested": _record("a"), "x": {"items": {"type": "nope"}}}}),
    (DRAFT7, {"definitions": {"d": {"type": "string", "maxLength": 10}, "e": {"enum": "x"}}}),
    (DRAFT4, {"properties": {"f0": {"type": "string", "maxLength": 10}, "b": True}}),
    (DRAFT2020, {"$defs": {"d": {"type": "string", "maxLength": 10}, "e": {"minItems": "1"}}}),
]


@pytest.mark.parametrize(("validator", "schema"), _INVALID)
def test_a_schema_is_refused_with_the_error_check_schema_gives(
    validator: type[Validator], schema: Any
) -> None:
    known = KnownValid()
    for version in ("a", "b", "c"):
        assert _error(validator, _record(version), known) is None  # the common subschemas are remembered
    expected = _library_error(validator, schema)
    assert expected is not None
    assert _error(validator, schema, known) == expected


def test_a_value_under_a_keyword_the_metaschema_does_not_check_is_not_remembered() -> None:
    known = KnownValid()
    # draft-07 knows neither `prefixItems` nor `$defs`: anything goes there, so nothing is proven valid.
    assert _error(DRAFT7, {"prefixItems": [{"type": 5}], "$defs": {"d": {"type": 6}}}, known) is None
    assert len(known.lru) == 0
    refused = {"properties": {"a": {"type": 5}}}
    assert _error(DRAFT7, refused, known) == _library_error(DRAFT7, refused) is not None


def test_a_remembered_value_under_a_bad_pattern_key_is_still_refused() -> None:
    known = KnownValid()
    assert _error(DRAFT7, {"patternProperties": {"^a": {"type": "string"}}}, known) is None
    refused = {"patternProperties": {"(": {"type": "string"}}}
    assert _error(DRAFT7, refused, known) == _library_error(DRAFT7, refused) is not None


def test_dialects_do_not_share_what_they_found_valid() -> None:
    known = KnownValid()
    # A number is a valid exclusiveMinimum in draft-07; draft-04 wants a boolean there.
    assert _error(DRAFT7, {"properties": {"a": {"exclusiveMinimum": 1}}}, known) is None
    refused = {"properties": {"a": {"exclusiveMinimum": 1}}}
    assert _error(DRAFT4, refused, known) == _library_error(DRAFT4, refused) is not None


def test_what_is_remembered_is_bounded_in_entries_and_bytes() -> None:
    known = KnownValid(max_entries=5, max_bytes=10_000)
    for i in range(50):
        assert _error(DRAFT7, {"properties": {f"p{i}": {"type": "string", "maxLength": i}}}, known) is None
        assert len(known.lru) <= 5
    big = KnownValid(max_entries=1000, max_bytes=2_000)
    for i in range(50):
        _error(DRAFT7, {"properties": {"p": {"description": "x" * 300, "maxLength": i}}}, big)
        assert big.lru.cost <= 2_000
    huge = {"properties": {"p": {"description": "x" * (metaschema.MAX_KEY_CHARS + 1)}}}
    assert _error(DRAFT7, huge, known) is None
    assert all(len(text) <= metaschema.MAX_KEY_CHARS for _, text in known.lru._entries)


def test_a_schema_too_large_to_key_is_checked_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metaschema, "MAX_KEY_WORK_CHARS", 200)
    known = KnownValid()
    schema = _record("a")
    assert _error(DRAFT7, schema, known) is None
    assert len(known.lru) == 0
    bad = {**schema, "minProperties": -1}
    assert _error(DRAFT7, bad, known) == _library_error(DRAFT7, bad) is not None


def test_parsing_refuses_with_the_same_message_once_subschemas_are_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = json.dumps({**_record("b"), "properties": {**_record("b")["properties"], "x": {"minLength": -1}}})
    messages = []
    for warm in (False, True):
        monkeypatch.setattr(metaschema, "KNOWN_VALID", KnownValid())
        if warm:
            parse_schema(SchemaFormat.JSON, json.dumps(_record("a")))
            assert len(metaschema.KNOWN_VALID.lru) > 0
        with pytest.raises(InvalidSchemaError) as refused:
            parse_schema(SchemaFormat.JSON, bad)
        messages.append(str(refused.value))
    assert messages[0] == messages[1]
    assert "minLength" in messages[0]
