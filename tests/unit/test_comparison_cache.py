"""Comparisons of JSON Schema parts kept across checks (the workers' `ComparisonCache`): a check gives
the same findings with a warm cache as with none, over the whole conformance corpus; the cache is hit by
the next version of a record and bounded in entries and bytes."""

from __future__ import annotations

import json
from typing import Any

from kschema.compat import CompatibilityLevel, VersionedSchema, check_compatibility
from kschema.compat.cases import evaluate_case
from kschema.compat.jsonschema import differences
from kschema.compat.shared import remembered_comparisons
from kschema.compute.caches import ComparisonCache
from kschema.formats import SchemaFormat, parse_schema
from kschema.formats.jsonschema import ParsedJsonSchema
from tests.unit.conformance_summary import load_records


def _record(own: str) -> ParsedJsonSchema:
    properties: dict[str, Any] = {f"f{i}": {"type": "string", "maxLength": 10} for i in range(30)}
    properties[own] = {"type": "integer", "minimum": 0}
    text = json.dumps(
        {"type": "object", "properties": properties, "additionalProperties": {"type": "integer"}}
    )
    parsed = parse_schema(SchemaFormat.JSON, text)
    assert isinstance(parsed, ParsedJsonSchema)
    return parsed


def test_every_corpus_verdict_is_the_same_with_comparisons_kept_across_checks() -> None:
    records = load_records("json")
    cold = [evaluate_case(r) for r in records]
    cache = ComparisonCache(max_entries=100_000, max_bytes=64 << 20)
    with remembered_comparisons(cache):
        first = [evaluate_case(r) for r in records]
        warm = [evaluate_case(r) for r in records]  # now mostly answered by what the first pass kept
    assert cache.lru.hits > 0
    assert first == cold
    assert warm == cold


def test_the_next_version_of_a_record_reuses_the_comparisons_of_its_parts() -> None:
    cache = ComparisonCache(max_entries=1000, max_bytes=1 << 20)
    history = [VersionedSchema(v, _record(f"only_in_v{v}")) for v in range(1, 6)]
    with remembered_comparisons(cache):
        check_compatibility(VersionedSchema(6, _record("new_a")), history, CompatibilityLevel.FULL_TRANSITIVE)
        hits = cache.lru.hits
        result = check_compatibility(
            VersionedSchema(7, _record("new_b")), history, CompatibilityLevel.FULL_TRANSITIVE
        )
    assert cache.lru.hits > hits
    plain = check_compatibility(
        VersionedSchema(7, _record("new_b")), history, CompatibilityLevel.FULL_TRANSITIVE
    )
    assert result == plain


def test_findings_are_the_same_when_kept_ones_are_evicted() -> None:
    old, new = _record("a"), _record("b")
    expected = differences(old, new)  # no cache current
    assert expected  # the properties only one side has
    for cache in (
        ComparisonCache(max_entries=2, max_bytes=1 << 20),
        ComparisonCache(max_entries=1000, max_bytes=2_000),
    ):
        with remembered_comparisons(cache):
            for _ in range(3):
                assert differences(old, new) == expected
                assert len(cache.lru) <= cache.lru.max_entries
                assert cache.lru.cost <= cache.lru.max_cost


def test_the_reader_writer_pair_itself_is_not_kept_only_its_parts() -> None:
    # A new version's root pairs are never met again (their verdicts are the verdict memo's): keeping
    # them would evict the parts' comparisons, which every next version reuses.
    cache = ComparisonCache(max_entries=1000, max_bytes=1 << 20)
    history = [VersionedSchema(v, _record(f"only_in_v{v}")) for v in range(1, 6)]
    with remembered_comparisons(cache):
        for own in ("new_a", "new_b", "new_c"):
            check_compatibility(VersionedSchema(6, _record(own)), history, CompatibilityLevel.FULL_TRANSITIVE)
    kept = len(cache.lru)
    assert 0 < kept <= 5  # the parts: strings, integers, the partly open content model
