"""The read API's in-memory index: stable GUIDs and caches that survive a reload."""

from __future__ import annotations

import json

from kschema.api.index import RegistryIndex, schema_guid
from tests.unit.api_memory_store import MemoryStore


def record(name: str) -> str:
    return json.dumps({"type": "record", "name": name, "fields": [{"name": "a", "type": "string"}]})


def test_a_guid_is_a_stable_uuid_of_the_fingerprint() -> None:
    assert schema_guid("ab" * 32) == schema_guid("ab" * 32)
    assert schema_guid("ab" * 32) != schema_guid("cd" * 32)
    assert len(schema_guid("ab" * 32)) == 36


async def test_parsed_schemas_survive_a_reload_from_a_snapshot() -> None:
    store = MemoryStore()
    await store.add("a-value", 1, record("A"))
    index = RegistryIndex()
    index.load(await store.snapshot())
    parsed = index.parsed(1)
    index.load(await store.snapshot())
    assert index.parsed(1) is parsed


async def test_the_precomputed_body_is_the_id_response() -> None:
    store = MemoryStore()
    await store.add("a-value", 1, record("A"))
    index = RegistryIndex()
    index.load(await store.snapshot())
    body = index.schema_body(1)
    assert body is not None
    assert json.loads(body) == {
        "schema": json.dumps(json.loads(record("A")), separators=(",", ":")),
        "guid": schema_guid(store.schemas[1].fingerprint),
    }
