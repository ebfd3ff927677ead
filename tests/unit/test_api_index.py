"""The read API's in-memory index: stable GUIDs and caches that survive a reload."""

from __future__ import annotations

import json

from kschema.api.bodies import id_body, schema_json, version_body
from kschema.api.index import RegistryIndex, schema_guid
from kschema.contracts import contract_from_json
from kschema.formats import Reference, SchemaFormat
from kschema.model import SchemaState
from kschema.store import StoredSchema, SubjectVersion
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


async def test_latest_and_its_body_follow_new_versions_deletions_and_states() -> None:
    store = MemoryStore()
    await store.add("a-value", 1, record("A1"))
    index = RegistryIndex()
    index.load(await store.snapshot())
    first = index.latest("a-value", include_deleted=False)
    assert first is not None
    assert first.version == 1
    assert json.loads(index.version_body(first))["version"] == 1
    assert index.version_body(first) is index.version_body(first)  # rendered once

    await store.add("a-value", 2, record("A2"))
    index.load(await store.snapshot())
    second = index.latest("a-value", include_deleted=False)
    assert second is not None
    assert second.version == 2
    assert json.loads(index.version_body(second))["id"] == second.schema_id

    await store.delete_version("a-value", 2)
    for version in (await store.snapshot()).versions:
        index.put_version(version)
    back = index.latest("a-value", include_deleted=False)
    assert back is not None
    assert back.version == 1
    assert json.loads(index.version_body(back))["version"] == 1
    latest_deleted = index.latest("a-value", include_deleted=True)
    assert latest_deleted is not None
    assert latest_deleted.version == 2

    await store.delete_subject("a-value", "team-a")
    for version in (await store.snapshot()).versions:
        index.put_version(version)
    assert index.latest("a-value", include_deleted=False) is None


async def test_an_id_used_by_several_versions_lists_each_once() -> None:
    store = MemoryStore()
    await store.add("a-value", 1, record("Shared"))
    await store.add("b-value", 1, record("Shared"))
    await store.add("b-value", 2, record("Other"))
    index = RegistryIndex()
    index.load(await store.snapshot())
    shared = index.version("a-value", 1, include_deleted=False)
    assert shared is not None
    assert [(v.subject, v.version) for v in index.uses(shared.schema_id, False)] == [
        ("a-value", 1),
        ("b-value", 1),
    ]
    await store.delete_version("b-value", 1)
    for version in (await store.snapshot()).versions:
        index.put_version(version)
    assert [(v.subject, v.version) for v in index.uses(shared.schema_id, False)] == [("a-value", 1)]
    assert len(index.uses(shared.schema_id, True)) == 2


def test_a_version_body_made_from_the_id_body_is_the_json_of_the_whole_object() -> None:
    contract = contract_from_json({"metadata": {"properties": {"owner": "équipe"}}, "ruleSet": None})
    schemas = [
        StoredSchema(1, SchemaFormat.AVRO, record("A"), "", "ab" * 32, ()),
        StoredSchema(
            2,
            SchemaFormat.JSON,
            '{"type": "string", "description": "naïve \\"quoted\\" \\u2028"}',
            "",
            "cd" * 32,
            (Reference("other", "other-value", 3),),
            contract,
        ),
        StoredSchema(
            3, SchemaFormat.PROTOBUF, 'syntax = "proto3";\nmessage M { string a = 1; }\n', "", "ef" * 32, ()
        ),
    ]
    for stored in schemas:
        version = SubjectVersion('sujet-"ünï"-value', 7, stored.id, SchemaState.ACTIVE, False, "team-a")
        expected = json.dumps(
            {
                "subject": version.subject,
                "version": 7,
                "id": stored.id,
                "guid": schema_guid(stored.fingerprint),
                **schema_json(stored),
            }
        ).encode()
        assert version_body(version, id_body(stored)) == expected
