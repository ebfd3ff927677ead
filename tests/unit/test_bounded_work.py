"""Bounded work: DAG-shaped schemas get a verdict in polynomial time, every check, resolution and
validation stops at its budget with "too complex to check", and a runaway in a worker process is killed
and replaced. The timeouts below only turn a hang (today's exponential checker) into a failure; speed is
measured in `bench/bench_compat.py`."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kschema.compat import CompatibilityLevel, VersionedSchema, check_compatibility
from kschema.compute import WorkerPool, tasks
from kschema.compute.tasks import SchemaText
from kschema.formats import InvalidSchemaError, Reference, SchemaFormat, parse_schema
from kschema.formats.budget import TooComplexError, WorkBudget, work_budget
from kschema.formats.validation import validate_payload

LEVELS = 60


def json_ref_dag(levels: int, leaf: str = "string") -> str:
    """Each definition has two properties that both `$ref` the previous definition: 2^levels paths."""
    definitions: dict[str, Any] = {"d0": {"type": leaf}}
    for i in range(1, levels + 1):
        previous = {"$ref": f"#/definitions/d{i - 1}"}
        definitions[f"d{i}"] = {"type": "object", "properties": {"a": previous, "b": dict(previous)}}
    return json.dumps({"definitions": definitions, "$ref": f"#/definitions/d{levels}"})


def avro_record_dag(levels: int, leaf: str = "string") -> str:
    """Record R_i has two fields of type R_{i-1}: the named type is reused, 2^levels paths."""
    schema: Any = {"type": "record", "name": "R0", "fields": [{"name": "v", "type": leaf}]}
    for i in range(1, levels + 1):
        first = schema
        schema = {
            "type": "record",
            "name": f"R{i}",
            "fields": [{"name": "a", "type": first}, {"name": "b", "type": f"R{i - 1}"}],
        }
    return json.dumps(schema)


def _check(fmt: SchemaFormat, old: str, new: str) -> list[str]:
    result = check_compatibility(
        VersionedSchema(2, parse_schema(fmt, new)),
        [VersionedSchema(1, parse_schema(fmt, old))],
        CompatibilityLevel.BACKWARD,
    )
    return result.messages


@pytest.mark.timeout(120)
def test_a_60_level_ref_dag_json_schema_gets_a_verdict() -> None:
    same = json_ref_dag(LEVELS)
    assert _check(SchemaFormat.JSON, same, same) == []
    messages = _check(SchemaFormat.JSON, json_ref_dag(LEVELS, "string"), json_ref_dag(LEVELS, "integer"))
    assert messages
    assert all("TYPE_CHANGED" in m or "type" in m.lower() for m in messages)
    assert len(messages) <= 100


@pytest.mark.timeout(120)
def test_a_60_level_record_dag_avro_schema_gets_a_verdict() -> None:
    same = avro_record_dag(LEVELS)
    assert _check(SchemaFormat.AVRO, same, same) == []
    messages = _check(SchemaFormat.AVRO, avro_record_dag(LEVELS, "long"), avro_record_dag(LEVELS, "int"))
    assert messages
    assert "reader type int cannot read writer type long" in messages[0]


@pytest.mark.parametrize(
    ("fmt", "old", "new"),
    [
        (SchemaFormat.JSON, json_ref_dag(8), json_ref_dag(8, "integer")),
        (SchemaFormat.AVRO, avro_record_dag(8, "long"), avro_record_dag(8, "int")),
        (
            SchemaFormat.PROTOBUF,
            'syntax = "proto3"; message A { string a = 1; string b = 2; string c = 3; }',
            'syntax = "proto3"; message A { int64 a = 1; int64 b = 2; int64 c = 3; }',
        ),
    ],
)
def test_a_check_past_its_step_budget_is_too_complex_in_every_format(
    fmt: SchemaFormat, old: str, new: str
) -> None:
    with (
        pytest.raises(TooComplexError, match=r"^too complex to check: the test check needs more than 2"),
        work_budget("the test check", 2, 60),
    ):
        _check(fmt, old, new)


def test_a_check_past_its_deadline_is_too_complex() -> None:
    old = parse_schema(SchemaFormat.JSON, json_ref_dag(30))
    new = parse_schema(SchemaFormat.JSON, json_ref_dag(30, "integer"))

    def check_many() -> None:
        with work_budget("the test check", 10**9, 0):
            # Each check spends about 31 steps from the outer budget; the clock is read every 1024.
            for _ in range(100):
                check_compatibility(VersionedSchema(2, new), [VersionedSchema(1, old)], "BACKWARD")

    with pytest.raises(TooComplexError, match="did not finish within 0 s"):
        check_many()


@pytest.mark.parametrize("steps", [1, 2, 1023, 1024, 1025, 5000])
def test_a_budget_allows_exactly_its_steps_and_reads_the_clock_every_1024(
    steps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    budget = WorkBudget("the test work", steps, 60)
    clock = time.monotonic

    def counted() -> float:
        reads.append(budget.used)
        return clock()

    monkeypatch.setattr(time, "monotonic", counted)
    for _ in range(steps):
        budget.spend()
    assert reads == list(range(1024, steps + 1, 1024))
    with pytest.raises(TooComplexError, match=f"the test work needs more than {steps} steps"):
        budget.spend()
    larger = WorkBudget("the test work", steps, 60)
    larger.spend(steps)
    with pytest.raises(TooComplexError):
        larger.spend(1)


@pytest.mark.timeout(120)
def test_a_payload_validation_that_applies_a_schema_exponentially_often_is_too_complex() -> None:
    # allOf DAG: every definition applies the previous one twice to the same value.
    definitions: dict[str, Any] = {"d0": {"type": "string"}}
    for i in range(1, 41):
        previous = {"$ref": f"#/definitions/d{i - 1}"}
        definitions[f"d{i}"] = {"allOf": [previous, dict(previous)]}
    parsed = parse_schema(
        SchemaFormat.JSON, json.dumps({"definitions": definitions, "$ref": "#/definitions/d40"})
    )
    with pytest.raises(TooComplexError, match=r"the payload validation (needs more than|did not finish)"):
        validate_payload(parsed, "x")


def test_a_deeply_nested_payload_is_refused_before_validation() -> None:
    parsed = parse_schema(SchemaFormat.JSON, '{"type": "array"}')
    payload: Any = []
    for _ in range(400):
        payload = [payload]
    issues = validate_payload(parsed, payload)
    assert [i.message for i in issues] == ["payload nests deeper than 256 levels"]


@pytest.mark.parametrize(
    ("keyword", "value"),
    [("$dynamicRef", "https://attacker.example/schema.json#meta"), ("$recursiveRef", "https://x.example/s")],
)
def test_dynamic_and_recursive_refs_to_external_urls_are_refused(keyword: str, value: str) -> None:
    dialect = (
        "https://json-schema.org/draft/2020-12/schema"
        if keyword == "$dynamicRef"
        else "https://json-schema.org/draft/2019-09/schema"
    )
    schema = {"$schema": dialect, "type": "object", "properties": {"x": {keyword: value}}}
    with pytest.raises(InvalidSchemaError) as refused:
        parse_schema(SchemaFormat.JSON, json.dumps(schema))
    assert refused.value.location == f"/properties/x/{keyword}"


def test_a_local_dynamic_ref_is_accepted() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$dynamicAnchor": "node",
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$dynamicRef": "#node"}}},
    }
    parsed = parse_schema(SchemaFormat.JSON, json.dumps(schema))
    assert parsed.validate({"children": [{"children": []}]}) == []


# ----------------------------------------------------------------------------------------- worker pool


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    async with WorkerPool(processes=1, timeout=3, memory_bytes=512 * 1024 * 1024) as started:
        yield started


@pytest.fixture
async def patient_pool() -> AsyncIterator[WorkerPool]:
    # A timeout no task below comes near, even on a busy machine.
    async with WorkerPool(processes=1, timeout=60) as started:
        yield started


async def test_a_runaway_task_is_killed_and_its_worker_replaced(pool: WorkerPool) -> None:
    with pytest.raises(TooComplexError, match="did not finish within 3 s"):
        await pool.run(time.sleep, 30)
    assert pool.killed == 1
    assert await pool.run(tasks.summary, SchemaText(SchemaFormat.AVRO, '"int"'))


async def test_a_task_past_the_memory_limit_is_too_complex() -> None:
    async with WorkerPool(processes=1, timeout=60, memory_bytes=512 * 1024 * 1024) as pool:
        with pytest.raises(TooComplexError, match="needed more than 512 MiB"):
            await pool.run(bytearray, 1024 * 1024 * 1024)
        assert await pool.run(tasks.summary, SchemaText(SchemaFormat.AVRO, '"int"'))


async def test_errors_cross_the_worker_boundary_with_their_type_and_location(
    patient_pool: WorkerPool,
) -> None:
    pool = patient_pool
    with pytest.raises(InvalidSchemaError) as invalid:
        await pool.run(tasks.summary, SchemaText(SchemaFormat.AVRO, '{"type": "record", "name": "R"}'))
    assert invalid.value.location == "/fields"
    with pytest.raises(FileNotFoundError):
        await pool.run(open, "/nonexistent/kschema")


async def test_the_60_level_ref_dag_gets_a_verdict_in_a_worker(patient_pool: WorkerPool) -> None:
    pool = patient_pool
    dag = SchemaText(SchemaFormat.JSON, json_ref_dag(LEVELS))
    changed = SchemaText(SchemaFormat.JSON, json_ref_dag(LEVELS, "integer"))
    result = await pool.run(tasks.check, changed, 2, [(1, dag)], CompatibilityLevel.BACKWARD)
    assert not result.compatible


def test_references_are_resolved_with_the_format_rule_and_shared_along_a_dag() -> None:
    from kschema.formats.resolver import ReferenceTarget, Unresolvable, resolve_references

    # v_i refers to v_{i-1} twice: 2^30 paths, 30 distinct versions.
    targets = {("s", 0): ReferenceTarget(SchemaFormat.AVRO, '"int"')}
    for i in range(1, 41):
        refs = (Reference("a", "s", i - 1), Reference("b", "s", i - 1))
        targets[("s", i)] = ReferenceTarget(SchemaFormat.AVRO, '"int"', refs)
    resolution = resolve_references(
        [Reference("top", "s", 30)], SchemaFormat.AVRO, lambda s, v: targets.get((s, v))
    )
    assert (
        resolution.references[0].references[0].references is resolution.references[0].references[1].references
    )
    with pytest.raises(TooComplexError, match="references nest deeper than 32 levels"):
        resolve_references([Reference("top", "s", 40)], SchemaFormat.AVRO, lambda s, v: targets.get((s, v)))
    with pytest.raises(Unresolvable, match="points at a AVRO schema; a JSON schema can only refer to JSON"):
        resolve_references([Reference("top", "s", 1)], SchemaFormat.JSON, lambda s, v: targets.get((s, v)))


@pytest.mark.parametrize(
    ("fmt", "schema"),
    [
        (SchemaFormat.AVRO, '{"type": "array", "items": "int"}'),
        (SchemaFormat.JSON, '{"type": "array", "items": {"type": "integer"}}'),
    ],
)
def test_a_payload_larger_than_the_validation_budget_is_too_complex(fmt: SchemaFormat, schema: str) -> None:
    parsed = parse_schema(fmt, schema)
    with (
        pytest.raises(TooComplexError, match="the test validation needs more than 1000 steps"),
        work_budget("the test validation", 1000, 60),
    ):
        validate_payload(parsed, list(range(2000)))
