"""The read API's details that clients, UIs and migration scripts notice, as Confluent has them: response
shapes, listings with filters and paging, server metadata, Accept negotiation, subject modes, resolved
Avro references and the schema text served."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from importlib import metadata
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from kschema.api.index import compact_json
from kschema.formats import Reference, SchemaFormat
from tests.unit.api_memory_store import MemoryStore, api_client, caught_up

Client = TestClient[web.Request, web.Application]

ADDRESS = (
    '{"type": "record", "name": "Address", "namespace": "shop",\n '
    '"fields": [{"name": "city", "type": "string"}]}'
)
CUSTOMER = (
    '{"type": "record", "name": "Customer", "namespace": "shop", '
    '"fields": [{"name": "home", "type": "shop.Address"}]}'
)
ORDER_V1 = (
    '{ "type": "record", "name": "Order", "doc": "an  order,\\n  spaced", '
    '"fields": [ {"name": "id", "type": "string"} ] }'
)
ORDER_V2 = (
    '{"type": "record", "name": "Order", '
    '"fields": [{"name": "id", "type": "string"}, {"name": "n", "type": "int", "default": 0}]}'
)
EVENT = '{"type": "object", "properties": {"n": {"type": "integer", "maximum": 1.50}}}'
PROTO = 'syntax = "proto3";\npackage shop;\n\n// a payment\nmessage Payment {   string id = 1; }\n'


@pytest.fixture
async def store() -> MemoryStore:
    s = MemoryStore()
    await s.add("orders-value", 1, ORDER_V1)
    await s.add("orders-value", 2, ORDER_V2)
    await s.add("common-address", 1, ADDRESS)
    await s.add("customers-value", 1, CUSTOMER, references=(Reference("shop.Address", "common-address", 1),))
    await s.add("events-value", 1, EVENT, SchemaFormat.JSON)
    await s.add("payments-value", 1, PROTO, SchemaFormat.PROTOBUF)
    return s


@pytest.fixture
async def client(store: MemoryStore) -> AsyncIterator[Client]:
    async with api_client(store) as c:
        yield c


async def get(client: Client, path: str, **headers: str) -> Any:
    response = await client.get(path, headers=headers)
    assert response.status == 200, await response.text()
    return json.loads(await response.read())


async def error(client: Client, path: str, status: int, code: int, **headers: str) -> str:
    response = await client.get(path, headers=headers)
    assert response.status == status
    body = json.loads(await response.read())
    assert body["error_code"] == code
    return str(body["message"])


# Response shapes ---------------------------------------------------------------------------------
async def test_avro_responses_leave_out_schema_type_and_empty_references(client: Client) -> None:
    by_id = await get(client, "/schemas/ids/1")
    version = await get(client, "/subjects/orders-value/versions/1")
    assert "schemaType" not in by_id
    assert "references" not in by_id
    assert "schemaType" not in version
    assert "references" not in version


async def test_other_formats_and_non_empty_references_are_named(client: Client) -> None:
    events = await get(client, "/subjects/events-value/versions/1")
    customers = await get(client, "/subjects/customers-value/versions/1")
    assert events["schemaType"] == "JSON"
    assert customers["references"] == [{"name": "shop.Address", "subject": "common-address", "version": 1}]


# Schema text ----------------------------------------------------------------------------------------
async def test_avro_and_json_text_is_served_without_whitespace_between_tokens(client: Client) -> None:
    order = await get(client, "/subjects/orders-value/versions/1")
    assert order["schema"] == (
        '{"type":"record","name":"Order","doc":"an  order,\\n  spaced",'
        '"fields":[{"name":"id","type":"string"}]}'
    )
    raw = await client.get("/subjects/events-value/versions/1/schema")
    # Numbers are kept as written (a reparse would print 1.50 as 1.5).
    assert await raw.text() == '{"type":"object","properties":{"n":{"type":"integer","maximum":1.50}}}'


async def test_protobuf_text_is_served_as_its_author_wrote_it(client: Client) -> None:
    payments = await get(client, "/subjects/payments-value/versions/1")
    assert payments["schema"] == PROTO


def test_compacting_keeps_escaped_quotes_and_whitespace_inside_strings() -> None:
    assert compact_json('{ "a" : "x \\" y\\\\" ,\n\t"b": [ 1 , 2 ] }') == '{"a":"x \\" y\\\\","b":[1,2]}'


async def test_format_resolved_inlines_the_named_types_of_references(client: Client) -> None:
    resolved = await get(client, "/subjects/customers-value/versions/1?format=resolved")
    schema = json.loads(resolved["schema"])
    assert schema["fields"][0]["type"]["name"] == "shop.Address"
    assert schema["fields"][0]["type"]["fields"] == [{"name": "city", "type": "string"}]
    by_id = await get(client, "/schemas/ids/4?format=resolved")
    assert by_id["schema"] == resolved["schema"]
    plain = await get(client, "/subjects/orders-value/versions/1?format=resolved")
    assert plain["schema"] == (await get(client, "/subjects/orders-value/versions/1"))["schema"]


# Listings -------------------------------------------------------------------------------------------
async def test_get_schemas_lists_every_version_by_subject_then_version(client: Client) -> None:
    found = await get(client, "/schemas")
    assert [(s["subject"], s["version"]) for s in found] == [
        ("common-address", 1),
        ("customers-value", 1),
        ("events-value", 1),
        ("orders-value", 1),
        ("orders-value", 2),
        ("payments-value", 1),
    ]
    assert found[2]["schemaType"] == "JSON"
    assert "schemaType" not in found[0]


async def test_get_schemas_filters_by_prefix_and_latest_only_and_pages(client: Client) -> None:
    assert [s["version"] for s in await get(client, "/schemas?subjectPrefix=orders")] == [1, 2]
    latest = await get(client, "/schemas?subjectPrefix=orders&latestOnly=true")
    assert [(s["subject"], s["version"]) for s in latest] == [("orders-value", 2)]
    paged = await get(client, "/schemas?offset=1&limit=2")
    assert [s["subject"] for s in paged] == ["customers-value", "events-value"]


async def test_get_schemas_includes_deleted_versions_only_when_asked(
    client: Client, store: MemoryStore
) -> None:
    await store.delete_version("orders-value", 1)
    await caught_up(client, store)
    assert [s["version"] for s in await get(client, "/schemas?subjectPrefix=orders")] == [2]
    assert [s["version"] for s in await get(client, "/schemas?subjectPrefix=orders&deleted=true")] == [1, 2]


async def test_subjects_and_versions_page_with_offset_and_limit(client: Client) -> None:
    assert await get(client, "/subjects?offset=1&limit=2") == ["customers-value", "events-value"]
    assert await get(client, "/subjects?offset=3") == ["orders-value", "payments-value"]
    assert await get(client, "/subjects?limit=-1") == await get(client, "/subjects")
    assert await get(client, "/subjects/orders-value/versions?offset=1") == [2]
    assert await get(client, "/subjects/orders-value/versions?limit=1") == [1]
    assert await get(client, "/subjects?offset=10") == []


async def test_bad_paging_parameters_are_refused_naming_them(client: Client) -> None:
    assert "'offset'" in await error(client, "/subjects?offset=-1", 400, 400)
    assert "'limit'" in await error(client, "/subjects?limit=ten", 400, 400)


async def test_deleted_only_lists_only_deleted_subjects_and_versions(
    client: Client, store: MemoryStore
) -> None:
    await store.delete_version("orders-value", 1)
    await store.delete_subject("events-value", "team-a")
    await caught_up(client, store)
    assert await get(client, "/subjects?deletedOnly=true") == ["events-value", "orders-value"]
    assert await get(client, "/subjects/orders-value/versions?deletedOnly=true") == [1]
    assert await get(client, "/subjects/events-value/versions?deletedOnly=true") == [1]
    assert await get(client, "/subjects/customers-value/versions?deletedOnly=true") == []
    # deletedOnly wins over deleted, as in Confluent.
    assert await get(client, "/subjects/orders-value/versions?deleted=true&deletedOnly=true") == [1]
    assert "events-value" not in await get(client, "/subjects")


# Server metadata, modes ------------------------------------------------------------------------------
async def test_server_metadata_reports_the_package_version_and_an_id(client: Client) -> None:
    version = await get(client, "/v1/metadata/version")
    assert version["version"] == metadata.version("kschema")
    identity = await get(client, "/v1/metadata/id")
    assert identity == {"scope": {"path": [], "clusters": {"schema-registry-cluster": "kschema"}}}


async def test_the_mode_of_an_unknown_subject_is_not_found(client: Client) -> None:
    assert (await get(client, "/mode/orders-value")) == {"mode": "READONLY"}
    await error(client, "/mode/nobody-value", 404, 40409)
    assert (await get(client, "/mode/nobody-value?defaultToGlobal=true")) == {"mode": "READONLY"}


# Accept negotiation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "accept",
    [
        "application/vnd.schemaregistry.v1+json",
        "application/vnd.schemaregistry+json",
        "application/json",
        "*/*",
        "text/html, application/json;q=0.5",
        "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json",
    ],
)
async def test_accepted_media_types_are_answered(client: Client, accept: str) -> None:
    assert await get(client, "/subjects", Accept=accept) == await get(client, "/subjects")


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "application/json;q=0"])
async def test_other_media_types_get_406_in_confluents_error_shape(client: Client, accept: str) -> None:
    assert "Not Acceptable" in await error(client, "/subjects", 406, 406, Accept=accept)


async def test_metrics_are_not_negotiated(client: Client) -> None:
    response = await client.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})
    assert response.status == 200
