"""Declared Schemas and catalog slices cross into a worker once: afterwards they are named by a number,
and the worker forgets exactly what the pool forgets (`kschema.compute.resident`)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from kschema.compute import WorkerPool, resident
from kschema.compute.frames import LENGTH
from kschema.compute.resident import HELD, Sent, read_task
from kschema.formats import Reference, SchemaFormat
from kschema.model import SchemaSpec, SubjectSpec
from kschema.policy import Catalog


def _spec(version: int, text: str = "") -> SchemaSpec:
    return SchemaSpec(
        resource_name=f"orders-v{version}",
        namespace="shop",
        subject="orders",
        version=version,
        schema=text or f'{{"type": "record", "name": "Order{version}", "fields": []}}',
        references=(Reference("other", "other", 1),),
    )


def _deliver(sent: Sent, value: Any) -> Any:
    """What the worker reads of the frame `sent` writes for `value`."""
    data = sent.frame(value)
    (size,) = LENGTH.unpack(data[: LENGTH.size])
    assert size == len(data) - LENGTH.size
    return read_task(data[LENGTH.size :])


@pytest.fixture(autouse=True)
def _empty_worker() -> None:
    HELD.clear()


def test_a_spec_is_sent_in_full_once_then_as_its_number() -> None:
    sent = Sent(100, 10**9)
    spec = _spec(1, "x" * 10_000)
    first = sent.frame((spec,))
    again = sent.frame((spec,))
    assert len(first) > 10_000 > len(again)
    worker_first = read_task(first[LENGTH.size :])
    worker_again = read_task(again[LENGTH.size :])
    assert worker_first == (spec,)
    assert worker_again[0] is worker_first[0]  # the same object the worker kept


def test_a_catalog_crosses_with_its_indexes_rebuilt_and_names_held_specs_by_number() -> None:
    sent = Sent(100, 10**9)
    subject = SubjectSpec(resource_name="orders", namespace="shop", name="orders", format=SchemaFormat.AVRO)
    specs = [_spec(v) for v in range(1, 4)]
    _deliver(sent, specs)
    catalog = Catalog([subject], specs)
    got: Catalog = _deliver(sent, catalog)
    assert got.subjects == (subject,)
    assert got.schemas == tuple(specs)
    assert [s.version for s in got.schemas_of(subject)] == [1, 2, 3]
    assert got.declared_version("orders", 2) == (subject, specs[1])
    assert all(a is b for a, b in zip(got.schemas, HELD.values(), strict=False))
    assert _deliver(sent, catalog) is got


def test_what_the_pool_forgets_the_worker_forgets_and_an_equal_spec_is_another_object() -> None:
    sent = Sent(2, 10**9)
    a, b, c = _spec(1), _spec(2), _spec(3)
    _deliver(sent, [a, b])
    assert len(HELD) == 2
    _deliver(sent, [c])  # a is the least recently sent: forgotten on both sides
    assert len(sent) == 2
    assert len(HELD) == 2
    again = _deliver(sent, [a, _spec(1)])
    assert again == [a, a]
    assert again[0] is not again[1]
    assert len(HELD) == len(sent) == 2


def test_a_task_that_alone_exceeds_the_bounds_still_arrives_whole() -> None:
    sent = Sent(1, 10**9)
    specs = [_spec(v) for v in range(1, 6)]
    assert _deliver(sent, specs) == specs
    assert len(HELD) == len(sent) == 1
    assert _deliver(sent, specs) == specs


def test_the_bytes_bound_counts_the_texts() -> None:
    sent = Sent(100, 3 * (resident.SPEC_OVERHEAD_BYTES + 1000))
    specs = [_spec(v, str(v) * 1000) for v in range(1, 6)]
    _deliver(sent, specs)
    assert len(sent) == len(HELD) == 3
    assert sent.cost <= sent.max_bytes


def test_a_task_that_cannot_be_sent_makes_both_sides_start_again() -> None:
    sent = Sent(100, 10**9)
    spec = _spec(1)
    _deliver(sent, [spec])
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        sent.frame([_spec(2), lambda: None])
    assert len(sent) == 0
    assert _deliver(sent, [spec]) == [spec]
    assert len(HELD) == 1  # the worker was told to forget everything first


async def test_a_worker_answers_from_specs_it_holds() -> None:
    specs = [_spec(v) for v in range(1, 4)]
    more = [*specs, _spec(4)]
    async with WorkerPool(processes=1) as pool:
        assert await pool.run(repr, specs) == repr(specs)
        assert await pool.run(repr, more) == repr(more)
        assert await pool.run(repr, specs[1:]) == repr(specs[1:])
