"""The read API's index follows the store: first load, change feed, store failures, long backlogs."""

from __future__ import annotations

import json

from aiohttp.test_utils import TestClient

from kschema.api import ApiSettings, create_app
from kschema.api.feed import FeedFollower
from kschema.api.index import RegistryIndex
from kschema.api.metrics import ApiMetrics
from kschema.api.state import INDEX, METRICS
from kschema.model import SchemaState
from tests.harness.api_server import ApiTestServer
from tests.unit.api_memory_store import MemoryStore, api_client, caught_up, wait_for


def record(name: str) -> str:
    return json.dumps({"type": "record", "name": name, "fields": [{"name": "a", "type": "string"}]})


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
    index, metrics = RegistryIndex(), ApiMetrics()
    follower = FeedFollower(store, index, metrics, ApiSettings(feed_batch=3))
    await follower.load()
    for i in range(1, 5):
        await store.add("a-value", i, record(f"R{i}"))
    assert await follower.catch_up()
    assert metrics.snapshots._value.get() == 2
    assert index.seq == store.seq
    assert [v.version for v in index.versions("a-value", include_deleted=False)] == [1, 2, 3, 4]


async def test_a_small_backlog_is_applied_change_by_change() -> None:
    store = MemoryStore()
    index, metrics = RegistryIndex(), ApiMetrics()
    follower = FeedFollower(store, index, metrics, ApiSettings(feed_batch=100))
    await follower.load()
    await store.add("a-value", 1, record("A"))
    assert await follower.catch_up()
    assert not await follower.catch_up()
    assert metrics.snapshots._value.get() == 1
    assert index.schema_body(1) is not None


async def test_the_follower_stops_with_the_app() -> None:
    store = MemoryStore()
    app = create_app(ApiSettings(feed_wait_seconds=0.05), store)
    async with TestClient(ApiTestServer(app)):
        await wait_for(lambda: app[INDEX].loaded)
    # Cleanup cancelled and awaited the task; a new registration is no longer applied.
    seq = app[INDEX].seq
    await store.add("a-value", 1, record("A"))
    assert app[INDEX].seq == seq
