"""What a worker keeps between tasks: parsed schemas and reader/writer verdicts by content, both bounded,
and a verdict cut short by the work budget never remembered."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest

from kschema.compat import CompatibilityLevel, VersionedSchema, check_compatibility, remembered_verdicts
from kschema.compute.caches import (
    BYTES_PER_TEXT_BYTE,
    PARSED_OVERHEAD_BYTES,
    BoundedLRU,
    ParseCache,
    VerdictCache,
    content_key,
)
from kschema.formats import Reference, ResolvedReference, SchemaFormat, parse_schema
from kschema.formats.budget import TooComplexError, work_budget


def _avro(fields: int, extra: str | None = None) -> str:
    body: list[dict[str, Any]] = [{"name": f"f{i}", "type": "string", "default": ""} for i in range(fields)]
    if extra is not None:
        body.append({"name": extra, "type": "long"})  # no default: not backward compatible
    return json.dumps({"type": "record", "name": "Order", "fields": body})


def _json(fields: int, max_length: int = 10) -> str:
    properties = {f"f{i}": {"type": "string", "maxLength": max_length + i} for i in range(fields)}
    return json.dumps({"type": "object", "properties": properties, "required": ["f0"]})


def _proto(fields: int) -> str:
    lines = "\n".join(f"  string f{i} = {i + 1};" for i in range(fields))
    return f'syntax = "proto3";\npackage acme;\nmessage Order {{\n{lines}\n}}\n'


def test_the_lru_evicts_the_least_recently_used_entry_by_count_and_by_cost() -> None:
    evicted: list[str] = []
    lru: BoundedLRU[str, int] = BoundedLRU(3, 100, lambda k, _: evicted.append(k))
    for key in "abc":
        lru.put(key, 1, 10)
    assert lru.get("a") == 1  # now b is the oldest
    lru.put("d", 1, 10)
    assert evicted == ["b"]
    assert len(lru) == 3
    lru.put("e", 1, 85)  # over the cost cap: the oldest go until it fits
    assert evicted == ["b", "c", "a"]
    assert lru.cost == 95
    assert lru.evicted_cost == 30  # b, c and a
    lru.put("huge", 1, 101)  # alone over the cap: not kept, nothing else lost
    assert lru.get("huge") is None
    assert len(lru) == 2


def test_the_content_key_covers_referenced_texts_not_only_their_subject_and_version() -> None:
    address = '{"type": "record", "name": "Address", "fields": [{"name": "city", "type": "string"}]}'
    moved = '{"type": "record", "name": "Address", "fields": [{"name": "zip", "type": "string"}]}'
    ref = Reference("Address", "address-value", 1)
    text = '{"type": "record", "name": "Order", "fields": [{"name": "to", "type": "Address"}]}'
    one = content_key(SchemaFormat.AVRO, text, (ResolvedReference(ref, address),))
    again = content_key(SchemaFormat.AVRO, text, (ResolvedReference(ref, address),))
    other = content_key(SchemaFormat.AVRO, text, (ResolvedReference(ref, moved),))
    assert one == again != other
    assert content_key(SchemaFormat.JSON, text, ()) != content_key(SchemaFormat.AVRO, text, ())


def test_a_schema_is_parsed_once_and_loses_its_key_when_evicted() -> None:
    cache = ParseCache(max_entries=2, max_bytes=1 << 30)
    first = cache.parse(SchemaFormat.AVRO, _avro(3), ())
    assert cache.parse(SchemaFormat.AVRO, _avro(3), ()) is first
    assert cache.key_of(first) is not None
    cache.parse(SchemaFormat.AVRO, _avro(4), ())
    cache.parse(SchemaFormat.AVRO, _avro(5), ())
    assert cache.key_of(first) is None


def test_verdicts_are_remembered_per_direction_and_give_the_same_result() -> None:
    parsed = ParseCache(100, 1 << 30)
    verdicts = VerdictCache(parsed, 100, 1 << 30)
    old = VersionedSchema(1, parsed.parse(SchemaFormat.AVRO, _avro(5), ()))
    new = VersionedSchema(2, parsed.parse(SchemaFormat.AVRO, _avro(5, extra="cost"), ()))
    plain = check_compatibility(new, [old], CompatibilityLevel.FULL)
    with remembered_verdicts(verdicts):
        first = check_compatibility(new, [old], CompatibilityLevel.FULL)
        assert len(verdicts.lru) == 2
        assert verdicts.lru.hits == 0
        second = check_compatibility(new, [old], CompatibilityLevel.FULL)
    assert verdicts.lru.hits == 2
    assert plain == first == second
    assert not plain.compatible


def test_a_check_stopped_by_its_budget_leaves_no_verdict_behind() -> None:
    parsed = ParseCache(100, 1 << 30)
    verdicts = VerdictCache(parsed, 100, 1 << 30)
    old = VersionedSchema(1, parsed.parse(SchemaFormat.JSON, _json(50), ()))
    # Every property's maxLength differs, so the check compares each pair of properties (a property equal
    # on both sides needs no comparison) and runs out of its budget.
    new = VersionedSchema(2, parsed.parse(SchemaFormat.JSON, _json(49, max_length=11), ()))
    with remembered_verdicts(verdicts):
        with pytest.raises(TooComplexError), work_budget("the check", 5, 10.0):
            check_compatibility(new, [old], CompatibilityLevel.BACKWARD)
        assert len(verdicts.lru) == 0
        result = check_compatibility(new, [old], CompatibilityLevel.BACKWARD)
    assert result == check_compatibility(new, [old], CompatibilityLevel.BACKWARD)
    assert len(verdicts.lru) == 1


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        (SchemaFormat.AVRO, _avro(50)),
        (SchemaFormat.AVRO, _avro(1)),
        (SchemaFormat.JSON, _json(50)),
        (SchemaFormat.JSON, _json(1)),
        (SchemaFormat.PROTOBUF, _proto(50)),
    ],
    ids=["avro-50", "avro-1", "json-50", "json-1", "protobuf-50"],
)
def test_the_estimated_size_of_a_parsed_schema_covers_what_parsing_keeps(
    fmt: SchemaFormat, text: str
) -> None:
    parse_schema(fmt, text)  # lazy imports and one-off caches outside the measurement
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = parse_schema(fmt, text)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert kept is not None
    assert after - before <= PARSED_OVERHEAD_BYTES + BYTES_PER_TEXT_BYTE[fmt] * len(text)


def test_a_text_without_references_is_found_again_without_hashing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from kschema.compute import caches

    hashed: list[str] = []
    real = caches.content_key

    def counting(fmt: SchemaFormat, text: str, refs: tuple[ResolvedReference, ...]) -> bytes:
        hashed.append(text)
        return real(fmt, text, refs)

    monkeypatch.setattr(caches, "content_key", counting)
    cache = ParseCache(max_entries=2, max_bytes=1 << 30)
    text = _avro(3)
    first = cache.parse(SchemaFormat.AVRO, text, ())
    again = cache.parse(SchemaFormat.AVRO, "".join(list(text)), ())  # equal text, another object
    assert again is first
    assert hashed == [text]
    assert cache.key_of(again) == real(SchemaFormat.AVRO, text, ())
    # The same text read as another format is another schema.
    assert cache.parse(SchemaFormat.JSON, '{"type": "string"}', ()) is not first
    # Evicted: parsed (and hashed) again, and its old key is not used.
    cache.parse(SchemaFormat.AVRO, _avro(4), ())
    cache.parse(SchemaFormat.AVRO, _avro(5), ())
    hashed.clear()
    third = cache.parse(SchemaFormat.AVRO, text, ())
    assert third is not first
    assert hashed == [text]


def test_a_text_with_references_is_always_keyed_by_its_references_too() -> None:
    address = '{"type": "record", "name": "Address", "fields": [{"name": "city", "type": "string"}]}'
    moved = '{"type": "record", "name": "Address", "fields": [{"name": "zip", "type": "string"}]}'
    ref = Reference("Address", "address-value", 1)
    text = '{"type": "record", "name": "Order", "fields": [{"name": "to", "type": "Address"}]}'
    cache = ParseCache(max_entries=10, max_bytes=1 << 30)
    one = cache.parse(SchemaFormat.AVRO, text, (ResolvedReference(ref, address),))
    other = cache.parse(SchemaFormat.AVRO, text, (ResolvedReference(ref, moved),))
    assert one is not other
    assert cache.key_of(one) != cache.key_of(other)
