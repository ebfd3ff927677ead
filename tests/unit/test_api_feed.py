"""The read API's index follows the store: first load, change feed, store failures, long backlogs."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient

from kschema.api import ApiSettings, create_app
from kschema.api.feed import FeedFollower
from kschema.api.index import RegistryIndex
from kschema.api.metrics import ApiMetrics
from kschema.api.state import INDEX, METRICS
from kschema.model import SchemaState
from kschema.store import StoreError
from tests.harness.api_server import ApiTestServer
from tests.unit.api_memory_store import MemoryStore, api_client, caught_up, wait_for


def record(name: str) -> str:
    return json.dumps({"type": "record", "name": name, "fields": [{"name": "a", "type": "string"}]})


async def loaded_follower(
    store: MemoryStore, feed_batch: int
) -> tuple[RegistryIndex, ApiMetrics, FeedFollower]:
    """A follower of `store` that has loaded its first snapshot."""
    index, metrics = RegistryIndex(), ApiMetrics()
    follower = FeedFollower(store, index, metrics, ApiSettings(feed_batch=feed_batch))
    await follower.load()
    return index, metrics, follower


async def test_the_index_loads_once_the_store_comes_back_and_counts_the_failures() -> None:
    store = MemoryStore()
    await store.add("a-value", 1, record("A"))
    store.failures_left = 3
    async with api_client(store, wait_ready=False) as client:
        await caught_up(client, store)
        assert client.app[INDEX].version("a-value", 1, include_deleted=False) is not None
        assert client.app[METRICS].feed_errors._value.get() == 3


async def test_changes_after_the_first_load_are_applied_in_order() -> None:
    store = MemoryStore()
    async with api_client(store) as client:
        await store.add("a-value", 1, record("A"))
        await store.add("a-value", 2, record("B"), state=SchemaState.DRAFT)
        await caught_up(client, store)
        index = client.app[INDEX]
        latest = index.latest("a-value", include_deleted=False)
        assert latest is not None
        assert latest.version == 1
        await store.set_state("a-value", 2, SchemaState.ACTIVE)
        await caught_up(client, store)
        latest = index.latest("a-value", include_deleted=False)
        assert latest is not None
        assert latest.version == 2


async def test_a_backlog_as_long_as_a_batch_is_caught_up_with_a_snapshot() -> None:
    store = MemoryStore()
    index, metrics, follower = await loaded_follower(store, feed_batch=3)
    for i in range(1, 5):
        await store.add("a-value", i, record(f"R{i}"))
    assert await follower.catch_up()
    assert metrics.snapshots._value.get() == 2
    assert index.seq == store.seq
    assert [v.version for v in index.versions("a-value", include_deleted=False)] == [1, 2, 3, 4]


async def test_a_small_backlog_is_applied_change_by_change() -> None:
    store = MemoryStore()
    index, metrics, follower = await loaded_follower(store, feed_batch=100)
    await store.add("a-value", 1, record("A"))
    assert await follower.catch_up()
    assert not await follower.catch_up()
    assert metrics.snapshots._value.get() == 1
    assert index.schema_body(1) is not None


async def test_a_backlog_of_registrations_is_read_in_batches_and_applied_in_order() -> None:
    store = MemoryStore()
    index, metrics, follower = await loaded_follower(store, feed_batch=100)
    for i in range(1, 6):
        await store.add("a-value", i, record(f"R{i}"))
    await store.delete_version("a-value", 5)
    await store.set_state("a-value", 4, SchemaState.DEPRECATED)
    before = store.batched_reads

    assert await follower.catch_up()

    # The first schema alone, then the subject, then the other 10 changes: 1 + 2 batched reads.
    assert [c.kind for c in store.feed[:3]] == ["schema", "subject", "version"]
    assert store.batched_reads - before == 3
    assert [v.version for v in index.versions("a-value", include_deleted=False)] == [1, 2, 3, 4]
    version_4 = index.version("a-value", 4, include_deleted=False)
    assert version_4 is not None
    assert version_4.state is SchemaState.DEPRECATED
    assert index.version("a-value", 5, include_deleted=True) is not None
    assert index.seq == store.seq
    assert metrics.feed_seq._value.get() == store.seq


async def test_a_subject_change_between_registrations_is_applied_in_its_place() -> None:
    store = MemoryStore()
    index, _metrics, follower = await loaded_follower(store, feed_batch=100)
    await store.add("a-value", 1, record("A"))
    await store.delete_subject("a-value", "team-a")
    await store.add("b-value", 1, record("B"))

    assert await follower.catch_up()

    assert index.versions("a-value", include_deleted=False) == []
    assert not index.subject_exists("a-value", include_deleted=False)
    assert index.version("b-value", 1, include_deleted=False) is not None


async def test_a_version_of_a_subject_not_in_the_index_brings_its_subject() -> None:
    store = MemoryStore()
    index, _metrics, follower = await loaded_follower(store, feed_batch=100)
    await store.add("a-value", 1, record("A"))
    await store.add("a-value", 2, record("B"))
    store.feed = [c for c in store.feed if c.kind != "subject"]  # a feed that starts after it

    assert await follower.catch_up()

    assert index.has_subject("a-value")
    assert [v.version for v in index.versions("a-value", include_deleted=False)] == [1, 2]


async def test_a_version_whose_schema_is_missing_from_the_store_is_reported_not_applied() -> None:
    store = MemoryStore()
    index, _metrics, follower = await loaded_follower(store, feed_batch=100)
    added = await store.add("a-value", 1, record("A"))
    del store.schemas[added.schema_id]

    with pytest.raises(StoreError, match=f"schema {added.schema_id} is used by a version"):
        await follower.catch_up()
    assert index.version("a-value", 1, include_deleted=True) is None


async def test_the_follower_stops_with_the_app() -> None:
    store = MemoryStore()
    app = create_app(ApiSettings(feed_wait_seconds=0.05), store)
    async with TestClient(ApiTestServer(app)):
        await wait_for(lambda: app[INDEX].loaded)
    # Cleanup cancelled and awaited the task; a new registration is no longer applied.
    seq = app[INDEX].seq
    await store.add("a-value", 1, record("A"))
    assert app[INDEX].seq == seq
