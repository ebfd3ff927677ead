"""A Schema reconcile that finds its Subject missing waits a moment for it; the cache of stored schemas
reads each ID once; the operator adds no finalizer to Schemas and releases the ones earlier releases held."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf

from kschema.formats import SchemaFormat
from kschema.model import FINALIZER
from kschema.operator.context import SubjectArrivals
from kschema.operator.schema_cache import SchemaCache
from kschema.operator.schemas import held
from kschema.store import RegistryStore, StoredSchema


async def test_a_waiting_schema_wakes_when_its_subject_is_registered() -> None:
    arrivals = SubjectArrivals()
    waiting = asyncio.create_task(arrivals.wait("shop", "orders-value", timeout=30, schema="orders-v1"))
    await asyncio.sleep(0)
    assert not arrivals.seen("shop", "orders-value")
    arrivals.arrived("shop", "orders-value")
    assert await asyncio.wait_for(waiting, 5) is True
    assert arrivals.seen("shop", "orders-value")
    arrivals.left("shop", "orders-value")
    assert not arrivals.seen("shop", "orders-value")


async def test_a_subject_that_never_comes_ends_the_wait_at_its_bound() -> None:
    assert await SubjectArrivals().wait("shop", "missing", timeout=0.05, schema="orders-v1") is False


class _CountingStore:
    def __init__(self) -> None:
        self.reads = 0

    async def get_schema(self, schema_id: int) -> StoredSchema | None:
        self.reads += 1
        if schema_id > 100:
            return None
        return StoredSchema(schema_id, SchemaFormat.AVRO, '"string"' * schema_id, '"string"', "f", ())


async def test_the_schema_cache_reads_each_id_once_and_stays_within_its_bytes() -> None:
    store = _CountingStore()
    cache = SchemaCache(cast(RegistryStore, store), max_bytes=200)
    for _ in range(3):
        found = await cache.get(1)
        assert found is not None
        assert found.id == 1
    assert store.reads == 1
    assert await cache.get(101) is None  # a miss is not cached
    assert await cache.get(101) is None
    assert store.reads == 3
    for schema_id in range(2, 20):  # texts of 8 * id bytes: the oldest are evicted
        await cache.get(schema_id)
    reads = store.reads
    await cache.get(19)
    assert store.reads == reads
    await cache.get(1)
    assert store.reads == reads + 1


def _when(status: dict[str, Any], finalizers: list[str]) -> bool:
    body = kopf.Body({"metadata": {"finalizers": finalizers}, "status": status})
    return held(meta=body.metadata)


def test_only_a_schema_an_earlier_release_held_goes_through_the_finalizer_release() -> None:
    assert not _when({}, [])
    assert not _when({"conditions": []}, ["other.example.com/x"])
    assert not _when({"registrySubject": "orders-value"}, [])  # registered: released from DELETED
    assert _when({"registrySubject": "orders-value"}, [FINALIZER])


async def test_the_schemas_waiting_for_a_subject_are_those_in_the_wait_now() -> None:
    arrivals = SubjectArrivals()
    gives_up = asyncio.create_task(arrivals.wait("shop", "orders-value", 0.01, "orders-v1"))
    stays = asyncio.create_task(arrivals.wait("shop", "orders-value", 30, "orders-v2"))
    await asyncio.sleep(0)
    assert arrivals.waiting("shop", "orders-value") == ["orders-v1", "orders-v2"]
    assert await gives_up is False
    # It reported SubjectNotFound and waits for a nudge now: the Subject's projection must not wait for it.
    assert arrivals.waiting("shop", "orders-value") == ["orders-v2"]
    arrivals.arrived("shop", "orders-value")
    assert await asyncio.wait_for(stays, 1) is True
    assert arrivals.waiting("shop", "orders-value") == []
