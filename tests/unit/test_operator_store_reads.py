"""Which Schemas a Subject's reconcile must nudge: those that may have stopped on the Subject's absence."""

from __future__ import annotations

from kschema.operator.context import StoreReads


def test_a_schema_whose_first_reconcile_is_still_to_come_needs_no_nudge() -> None:
    reads = StoreReads()
    tick = reads.upserted()

    assert not reads.may_be_waiting("ns", "orders-v1", "orders-value", tick)


def test_a_schema_that_stopped_before_reading_the_store_is_nudged() -> None:
    reads = StoreReads()
    reads.started("ns", "orders-v1")  # e.g. it found no Subject in the index
    tick = reads.upserted()

    assert reads.may_be_waiting("ns", "orders-v1", "orders-value", tick)


def test_a_schema_that_read_the_store_before_the_upsert_is_nudged() -> None:
    reads = StoreReads()
    reads.started("ns", "orders-v1")
    reads.read("ns", "orders-v1", "orders-value")
    tick = reads.upserted()

    assert reads.may_be_waiting("ns", "orders-v1", "orders-value", tick)


def test_a_schema_that_read_the_store_after_the_upsert_needs_no_nudge() -> None:
    reads = StoreReads()
    tick = reads.upserted()
    reads.started("ns", "orders-v1")
    reads.read("ns", "orders-v1", "orders-value")

    assert not reads.may_be_waiting("ns", "orders-v1", "orders-value", tick)


def test_a_schema_that_read_another_registry_subject_is_nudged_after_a_rename() -> None:
    reads = StoreReads()
    reads.started("ns", "orders-v1")
    tick = reads.upserted()
    reads.read("ns", "orders-v1", "orders-old")

    assert reads.may_be_waiting("ns", "orders-v1", "orders-value", tick)


def test_a_deleted_schema_is_forgotten() -> None:
    reads = StoreReads()
    reads.started("ns", "orders-v1")
    reads.forget("ns", "orders-v1")

    assert not reads.may_be_waiting("ns", "orders-v1", "orders-value", reads.upserted())
