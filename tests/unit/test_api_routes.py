"""The read API's endpoints against an in-memory store: success and error shapes, Confluent semantics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from kschema.api.index import schema_guid
from kschema.compat import CompatibilityLevel
from kschema.formats import Reference, SchemaFormat
from kschema.model import SchemaState
from tests.unit.api_memory_store import MemoryStore, api_client, caught_up

Client = TestClient[web.Request, web.Application]
SR = "application/vnd.schemaregistry.v1+json"

ORDER_V1 = json.dumps(
    {"type": "record", "name": "Order", "namespace": "shop", "fields": [{"name": "id", "type": "string"}]}
)
ORDER_V2 = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "shop",
        "fields": [{"name": "id", "type": "string"}, {"name": "cost", "type": "double", "default": 0.0}],
    }
)
# v2 without its default: a reader of it cannot read v1 data.
ORDER_BREAKING = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "shop",
        "fields": [{"name": "id", "type": "string"}, {"name": "cost", "type": "double"}],
    }
)
ADDRESS = json.dumps(
    {"type": "record", "name": "Address", "namespace": "shop", "fields": [{"name": "city", "type": "string"}]}
)
CUSTOMER = json.dumps(
    {
        "type": "record",
        "name": "Customer",
        "namespace": "shop",
        "fields": [{"name": "home", "type": "shop.Address"}],
    }
)
EVENT_JSON = json.dumps({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})


def served(text: str) -> str:
    """The text the API serves for an Avro or JSON schema: the author's JSON without whitespace."""
    return json.dumps(json.loads(text), separators=(",", ":"))


@pytest.fixture
async def store() -> MemoryStore:
    s = MemoryStore()
    await s.add("orders-value", 1, ORDER_V1)
    await s.add("orders-value", 2, ORDER_V2)
    await s.add("common/address", 1, ADDRESS)
    await s.add("customers-value", 1, CUSTOMER, references=(Reference("shop.Address", "common/address", 1),))
    await s.add("events-value", 1, EVENT_JSON, SchemaFormat.JSON)
    return s


@pytest.fixture
async def client(store: MemoryStore) -> AsyncIterator[Client]:
    async with api_client(store) as c:
        yield c


async def body_of(response: Any) -> Any:
    return json.loads(await response.read())


async def assert_error(response: Any, status: int, code: int) -> dict[str, Any]:
    assert response.status == status
    assert response.content_type == SR
    body = await body_of(response)
    assert body["error_code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    assert set(body) == {"error_code", "message"}
    return dict(body)


# Root, metadata, types, contexts ------------------------------------------------------------------------
async def test_the_root_answers_an_empty_object_to_get_and_post(client: Client) -> None:
    for method in ("GET", "POST"):
        r = await client.request(method, "/")
        assert r.status == 200
        assert await body_of(r) == {}


async def test_server_version_and_schema_types_and_contexts_are_served(client: Client) -> None:
    assert "version" in await body_of(await client.get("/v1/metadata/version"))
    assert sorted(await body_of(await client.get("/schemas/types"))) == ["AVRO", "JSON", "PROTOBUF"]
    assert await body_of(await client.get("/contexts")) == ["."]


async def test_an_unknown_route_answers_a_confluent_404(client: Client) -> None:
    await assert_error(await client.get("/no/such/thing"), 404, 404)


async def test_a_wrong_method_answers_a_confluent_405_with_allow(client: Client) -> None:
    r = await client.patch("/subjects")
    await assert_error(r, 405, 405)
    assert "GET" in r.headers["Allow"]


# Schemas by ID ------------------------------------------------------------------------
async def test_a_schema_is_served_by_id_with_type_references_and_guid(
    client: Client, store: MemoryStore
) -> None:
    r = await client.get("/schemas/ids/1")
    assert r.status == 200
    assert r.content_type == SR
    body = await body_of(r)
    assert body == {"schema": served(ORDER_V1), "guid": schema_guid(store.schemas[1].fingerprint)}
    customer = await body_of(
        await client.get(f"/schemas/ids/{store.versions[('customers-value', 1)].schema_id}")
    )
    assert customer["references"] == [{"name": "shop.Address", "subject": "common/address", "version": 1}]


async def test_the_subject_query_parameter_is_ignored_and_fetch_max_id_adds_max_id(client: Client) -> None:
    plain = await body_of(await client.get("/schemas/ids/1"))
    assert await body_of(await client.get("/schemas/ids/1?subject=orders-value")) == plain
    with_max = await body_of(await client.get("/schemas/ids/1?fetchMaxId=True"))
    assert with_max["maxId"] == 5
    assert with_max["schema"] == plain["schema"]


async def test_an_unknown_or_malformed_id_is_schema_not_found(client: Client) -> None:
    await assert_error(await client.get("/schemas/ids/999"), 404, 40403)
    await assert_error(await client.get("/schemas/ids/abc"), 404, 40403)
    await assert_error(await client.get("/schemas/ids/999/schema"), 404, 40403)
    await assert_error(await client.get("/schemas/ids/999/versions"), 404, 40403)
    await assert_error(await client.get("/schemas/ids/999/subjects"), 404, 40403)


async def test_a_boolean_parameter_that_is_not_a_boolean_is_a_bad_request(client: Client) -> None:
    body = await assert_error(await client.get("/schemas/ids/1?fetchMaxId=maybe"), 400, 400)
    assert "fetchMaxId" in body["message"]


async def test_the_raw_schema_is_served_by_id(client: Client) -> None:
    r = await client.get("/schemas/ids/2/schema")
    assert r.status == 200
    assert await r.text() == served(ORDER_V2)


async def test_the_versions_and_subjects_of_an_id_are_listed(client: Client, store: MemoryStore) -> None:
    await store.add("orders-copy", 3, ORDER_V1)
    await caught_up(client, store)
    versions = await body_of(await client.get("/schemas/ids/1/versions"))
    assert versions == [{"subject": "orders-copy", "version": 3}, {"subject": "orders-value", "version": 1}]
    assert await body_of(await client.get("/schemas/ids/1/subjects")) == ["orders-copy", "orders-value"]


async def test_a_deleted_version_leaves_the_id_listing_unless_deleted_is_asked(
    client: Client, store: MemoryStore
) -> None:
    await store.delete_version("orders-value", 1)
    await caught_up(client, store)
    assert await body_of(await client.get("/schemas/ids/1/versions")) == []
    assert await body_of(await client.get("/schemas/ids/1/versions?deleted=true")) == [
        {"subject": "orders-value", "version": 1}
    ]
    # The ID itself keeps resolving: data written with it must stay readable.
    assert (await client.get("/schemas/ids/1")).status == 200


async def test_a_schema_is_served_by_guid_and_the_guid_maps_to_its_id(
    client: Client, store: MemoryStore
) -> None:
    guid = schema_guid(store.schemas[2].fingerprint)
    assert (await body_of(await client.get(f"/schemas/guids/{guid}")))["schema"] == served(ORDER_V2)
    assert await body_of(await client.get(f"/schemas/guids/{guid}/ids")) == [2]
    await assert_error(await client.get("/schemas/guids/00000000-0000-4000-8000-000000000000"), 404, 40403)


# Subjects and versions ------------------------------------------------------------------------
async def test_subjects_are_listed_with_prefix_and_deleted_filters(
    client: Client, store: MemoryStore
) -> None:
    everything = ["common/address", "customers-value", "events-value", "orders-value"]
    assert await body_of(await client.get("/subjects")) == everything
    assert await body_of(await client.get("/subjects?subjectPrefix=orders")) == ["orders-value"]
    await store.delete_subject("events-value", "team-a")
    await caught_up(client, store)
    assert "events-value" not in await body_of(await client.get("/subjects"))
    assert await body_of(await client.get("/subjects?deleted=true")) == everything


async def test_versions_of_a_subject_are_listed_and_an_unknown_subject_is_40401(client: Client) -> None:
    assert await body_of(await client.get("/subjects/orders-value/versions")) == [1, 2]
    await assert_error(await client.get("/subjects/nope/versions"), 404, 40401)


async def test_a_soft_deleted_version_is_hidden_unless_deleted_is_true(
    client: Client, store: MemoryStore
) -> None:
    await store.delete_version("orders-value", 2)
    await caught_up(client, store)
    assert await body_of(await client.get("/subjects/orders-value/versions")) == [1]
    assert await body_of(await client.get("/subjects/orders-value/versions?deleted=True")) == [1, 2]
    await assert_error(await client.get("/subjects/orders-value/versions/2"), 404, 40402)
    assert (await body_of(await client.get("/subjects/orders-value/versions/2?deleted=true")))["version"] == 2
    assert (await body_of(await client.get("/subjects/orders-value/versions/latest")))["version"] == 1


async def test_a_version_is_served_by_number_latest_and_minus_one(client: Client, store: MemoryStore) -> None:
    body = await body_of(await client.get("/subjects/orders-value/versions/1"))
    assert body == {
        "subject": "orders-value",
        "version": 1,
        "id": 1,
        "guid": schema_guid(store.schemas[1].fingerprint),
        "schema": served(ORDER_V1),
    }
    for alias in ("latest", "-1"):
        assert (await body_of(await client.get(f"/subjects/orders-value/versions/{alias}")))["version"] == 2


async def test_a_subject_with_a_slash_is_served_when_url_encoded(client: Client) -> None:
    body = await body_of(await client.get("/subjects/common%2Faddress/versions/1"))
    assert body["subject"] == "common/address"


async def test_bad_version_numbers_are_42202_and_missing_ones_40402(client: Client) -> None:
    for bad in ("abc", "0", "-2", "2147483648"):
        await assert_error(await client.get(f"/subjects/orders-value/versions/{bad}"), 422, 42202)
    await assert_error(await client.get("/subjects/orders-value/versions/7"), 404, 40402)
    await assert_error(await client.get("/subjects/nope/versions/1"), 404, 40401)
    await assert_error(await client.get("/subjects/nope/versions/latest"), 404, 40401)


async def test_a_draft_version_is_never_latest_but_resolves_by_number(
    client: Client, store: MemoryStore
) -> None:
    await store.add("orders-value", 3, ORDER_BREAKING, state=SchemaState.DRAFT)
    await caught_up(client, store)
    assert (await body_of(await client.get("/subjects/orders-value/versions/latest")))["version"] == 2
    third = await body_of(await client.get("/subjects/orders-value/versions/3"))
    assert third["schema"] == served(ORDER_BREAKING)


async def test_an_archived_version_leaves_listings_but_resolves_by_id_and_number(
    client: Client, store: MemoryStore
) -> None:
    await store.set_state("orders-value", 2, SchemaState.ARCHIVED)
    await caught_up(client, store)
    assert await body_of(await client.get("/subjects/orders-value/versions")) == [1]
    assert (await body_of(await client.get("/subjects/orders-value/versions/latest")))["version"] == 1
    assert (await client.get("/subjects/orders-value/versions/2")).status == 200
    assert (await client.get("/schemas/ids/2")).status == 200


async def test_the_raw_schema_of_a_version_is_served(client: Client) -> None:
    r = await client.get("/subjects/orders-value/versions/latest/schema")
    assert r.status == 200
    assert await r.text() == served(ORDER_V2)
    await assert_error(await client.get("/subjects/orders-value/versions/9/schema"), 404, 40402)


async def test_referencedby_lists_the_ids_that_reference_a_version(
    client: Client, store: MemoryStore
) -> None:
    customer_id = store.versions[("customers-value", 1)].schema_id
    assert await body_of(await client.get("/subjects/common%2Faddress/versions/1/referencedby")) == [
        customer_id
    ]
    assert await body_of(await client.get("/subjects/orders-value/versions/1/referencedby")) == []
    await assert_error(await client.get("/subjects/nope/versions/1/referencedby"), 404, 40401)


async def test_a_deprecated_version_carries_deprecation_and_sunset_headers(
    client: Client, store: MemoryStore
) -> None:
    await store.set_state("orders-value", 1, SchemaState.DEPRECATED, sunset="2027-01-31")
    await caught_up(client, store)
    r = await client.get("/subjects/orders-value/versions/1")
    assert r.headers["Deprecation"].startswith("@")
    assert int(r.headers["Deprecation"][1:]) > 0
    assert r.headers["Sunset"] == "Sun, 31 Jan 2027 00:00:00 GMT"
    assert "Deprecation" not in (await client.get("/subjects/orders-value/versions/2")).headers


async def test_metadata_returns_the_latest_and_no_version_matches_a_property_filter(client: Client) -> None:
    assert (await body_of(await client.get("/subjects/orders-value/metadata")))["version"] == 2
    await assert_error(await client.get("/subjects/orders-value/metadata?key=owner&value=x"), 404, 40403)
    await assert_error(await client.get("/subjects/nope/metadata"), 404, 40401)


# Lookup and register ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    ["application/vnd.schemaregistry.v1+json", "application/vnd.schemaregistry+json", "application/json"],
)
async def test_a_lookup_matches_the_canonical_form_whatever_the_formatting(
    client: Client, content_type: str
) -> None:
    reformatted = json.dumps(json.loads(ORDER_V1), indent=4, sort_keys=True)
    r = await client.post(
        "/subjects/orders-value?normalize=False&deleted=False",
        data=json.dumps({"schema": reformatted, "schemaType": "AVRO"}),
        headers={"Content-Type": content_type},
    )
    assert r.status == 200
    body = await body_of(r)
    assert (body["subject"], body["version"], body["id"]) == ("orders-value", 1, 1)


async def test_a_lookup_resolves_references_from_the_registry(client: Client, store: MemoryStore) -> None:
    r = await client.post(
        "/subjects/customers-value",
        json={
            "schema": CUSTOMER,
            "references": [{"name": "shop.Address", "subject": "common/address", "version": -1}],
        },
    )
    assert (await body_of(r))["id"] == store.versions[("customers-value", 1)].schema_id


async def test_a_lookup_of_a_deleted_version_needs_deleted_true(client: Client, store: MemoryStore) -> None:
    await store.delete_version("orders-value", 1)
    await caught_up(client, store)
    await assert_error(await client.post("/subjects/orders-value", json={"schema": ORDER_V1}), 404, 40403)
    r = await client.post("/subjects/orders-value?deleted=TRUE", json={"schema": ORDER_V1})
    assert (await body_of(r))["version"] == 1


async def test_lookup_errors_have_confluent_codes(client: Client) -> None:
    await assert_error(
        await client.post("/subjects/orders-value", json={"schema": ORDER_BREAKING}), 404, 40403
    )
    await assert_error(await client.post("/subjects/nope", json={"schema": ORDER_V1}), 404, 40401)
    await assert_error(await client.post("/subjects/orders-value", json={"schema": "{not json"}), 422, 42201)
    await assert_error(await client.post("/subjects/orders-value", json={"schema": 3}), 422, 42201)
    await assert_error(
        await client.post("/subjects/orders-value", json={"schema": ORDER_V1, "schemaType": "XML"}),
        422,
        42201,
    )
    bad_ref = {
        "schema": CUSTOMER,
        "references": [{"name": "shop.Address", "subject": "common/address", "version": 9}],
    }
    body = await assert_error(await client.post("/subjects/customers-value", json=bad_ref), 422, 42201)
    assert "references[0]" in body["message"]
    await assert_error(
        await client.post("/subjects/orders-value", data=b"{oops", headers={"Content-Type": SR}), 400, 400
    )
    await assert_error(
        await client.post("/subjects/orders-value", data=b"schema=x", headers={"Content-Type": "text/plain"}),
        415,
        415,
    )


async def test_registering_an_existing_schema_returns_its_id_and_version(
    client: Client, store: MemoryStore
) -> None:
    r = await client.post("/subjects/orders-value/versions", json={"schema": ORDER_V2, "schemaType": "AVRO"})
    assert r.status == 200
    assert await body_of(r) == {"id": 2, "version": 2, "guid": schema_guid(store.schemas[2].fingerprint)}


async def test_registering_a_new_schema_is_refused_as_read_only(client: Client) -> None:
    body = await assert_error(
        await client.post("/subjects/orders-value/versions", json={"schema": ORDER_BREAKING}), 422, 42205
    )
    assert "read-only" in body["message"]
    await assert_error(
        await client.post("/subjects/new-subject/versions", json={"schema": ORDER_V1}), 422, 42205
    )
    # "Must become latest" cannot hold for an older version without a new registration.
    await assert_error(
        await client.post("/subjects/orders-value/versions", json={"schema": ORDER_V1, "version": -1}),
        422,
        42205,
    )
    await assert_error(
        await client.post("/subjects/orders-value/versions", json={"schema": ORDER_V1, "id": 77}), 422, 42205
    )


async def test_deletes_and_config_and_mode_writes_are_refused_as_read_only(client: Client) -> None:
    for method, path in [
        ("DELETE", "/subjects/orders-value"),
        ("DELETE", "/subjects/orders-value/versions/1"),
        ("PUT", "/config"),
        ("DELETE", "/config"),
        ("PUT", "/config/orders-value"),
        ("DELETE", "/config/orders-value"),
        ("PUT", "/mode"),
        ("DELETE", "/mode"),
        ("PUT", "/mode/orders-value"),
        ("DELETE", "/mode/orders-value"),
    ]:
        await assert_error(await client.request(method, path, json={"compatibility": "NONE"}), 422, 42205)


# Config, mode, associations ------------------------------------------------------------------------
async def test_config_reports_the_global_and_the_subject_level(client: Client, store: MemoryStore) -> None:
    assert await body_of(await client.get("/config")) == {"compatibilityLevel": "BACKWARD"}
    record = store.subjects["orders-value"]
    await store.upsert_subject(replace(record, compatibility=CompatibilityLevel.FULL_TRANSITIVE))
    await caught_up(client, store)
    assert await body_of(await client.get("/config/orders-value")) == {
        "compatibilityLevel": "FULL_TRANSITIVE"
    }


async def test_config_of_an_unknown_subject_is_40408_unless_default_to_global(client: Client) -> None:
    await assert_error(await client.get("/config/nope"), 404, 40408)
    assert await body_of(await client.get("/config/nope?defaultToGlobal=true")) == {
        "compatibilityLevel": "BACKWARD"
    }


async def test_mode_is_read_only_globally_and_per_subject(client: Client) -> None:
    assert await body_of(await client.get("/mode")) == {"mode": "READONLY"}
    assert await body_of(await client.get("/mode/orders-value")) == {"mode": "READONLY"}


async def test_associations_are_empty_lists(client: Client) -> None:
    r = await client.get(
        "/associations/resources/-/orders?resourceType=topic&associationType=value&offset=0&limit=-1"
    )
    assert r.status == 200
    assert await body_of(r) == []
    assert await body_of(await client.get("/associations/subjects/orders-value")) == []


# Compatibility and validation ------------------------------------------------------------------------
async def test_a_compatible_schema_passes_against_the_latest_version(client: Client) -> None:
    compatible_v3 = json.loads(ORDER_V2)
    compatible_v3["fields"].append({"name": "note", "type": "string", "default": ""})
    r = await client.post(
        "/compatibility/subjects/orders-value/versions/latest", json={"schema": json.dumps(compatible_v3)}
    )
    assert await body_of(r) == {"is_compatible": True}


async def test_an_incompatible_schema_fails_with_located_messages_when_verbose(client: Client) -> None:
    breaking = {"schema": ORDER_BREAKING}
    r = await client.post("/compatibility/subjects/orders-value/versions/1?verbose=true", json=breaking)
    body = await body_of(r)
    assert body["is_compatible"] is False
    assert body["messages"]
    assert any("cost" in m for m in body["messages"])
    assert await body_of(
        await client.post("/compatibility/subjects/orders-value/versions/1", json=breaking)
    ) == {"is_compatible": False}


async def test_compatibility_against_all_versions_and_for_a_new_subject(client: Client) -> None:
    # BACKWARD checks the latest version only: dropping v1's missing default is fine against v2...
    r = await client.post("/compatibility/subjects/orders-value/versions", json={"schema": ORDER_BREAKING})
    assert await body_of(r) == {"is_compatible": True}
    # ...but changing a field's type breaks reading v2 data.
    int_id = json.dumps(
        {"type": "record", "name": "Order", "namespace": "shop", "fields": [{"name": "id", "type": "int"}]}
    )
    r = await client.post(
        "/compatibility/subjects/orders-value/versions?verbose=True", json={"schema": int_id}
    )
    assert (await body_of(r))["is_compatible"] is False
    r = await client.post("/compatibility/subjects/brand-new/versions", json={"schema": ORDER_BREAKING})
    assert await body_of(r) == {"is_compatible": True}


async def test_compatibility_errors_have_confluent_codes(client: Client) -> None:
    await assert_error(
        await client.post("/compatibility/subjects/orders-value/versions/9", json={"schema": ORDER_V1}),
        404,
        40402,
    )
    await assert_error(
        await client.post("/compatibility/subjects/nope/versions/1", json={"schema": ORDER_V1}), 404, 40401
    )
    await assert_error(
        await client.post("/compatibility/subjects/orders-value/versions/1", json={"schema": "{"}), 422, 42201
    )


async def test_a_payload_is_validated_against_a_version(client: Client) -> None:
    ok = await client.post("/kschema/v1/subjects/events-value/versions/latest/validate", json={"n": 3})
    assert ok.status == 200
    assert (await body_of(ok))["valid"] is True
    bad = await body_of(
        await client.post("/kschema/v1/subjects/events-value/versions/1/validate", json={"n": "three"})
    )
    assert bad["valid"] is False
    assert bad["errors"][0]["location"] == "/n"
    assert "integer" in bad["errors"][0]["message"]
    avro = await body_of(
        await client.post("/kschema/v1/subjects/orders-value/versions/1/validate", json={"id": 5})
    )
    assert avro["valid"] is False
    assert avro["errors"]


async def test_validation_errors_have_confluent_codes(client: Client) -> None:
    await assert_error(
        await client.post("/kschema/v1/subjects/nope/versions/1/validate", json={}), 404, 40401
    )
    await assert_error(
        await client.post(
            "/kschema/v1/subjects/events-value/versions/1/validate", data=b"{", headers={"Content-Type": SR}
        ),
        400,
        400,
    )


@pytest.mark.parametrize("depth", [300, 100_000])
async def test_a_deeply_nested_payload_is_a_400_not_a_recursion_error(client: Client, depth: int) -> None:
    payload = ("[" * depth + "]" * depth).encode()
    body = await assert_error(
        await client.post(
            "/kschema/v1/subjects/events-value/versions/1/validate",
            data=payload,
            headers={"Content-Type": SR},
        ),
        400,
        400,
    )
    assert "nests deeper than 256 levels" in body["message"]


async def test_a_reference_to_a_version_of_another_format_is_refused(client: Client) -> None:
    # events-value version 1 is a JSON Schema; an Avro schema may only refer to Avro schemas.
    mixed = {
        "schema": CUSTOMER,
        "references": [{"name": "shop.Address", "subject": "events-value", "version": 1}],
    }
    body = await assert_error(await client.post("/subjects/customers-value", json=mixed), 422, 42201)
    assert "references[0]" in body["message"]
    assert "a AVRO schema can only refer to AVRO schemas" in body["message"]


# Health, readiness, metrics ------------------------------------------------------------------------
async def test_readyz_is_503_until_the_first_load_and_requests_get_a_confluent_503(
    store: MemoryStore,
) -> None:
    store.snapshot_gate = asyncio.Event()
    async with api_client(store, wait_ready=False) as c:
        assert (await c.get("/healthz")).status == 200
        assert (await c.get("/readyz")).status == 503
        await assert_error(await c.get("/schemas/ids/1"), 503, 50003)
        store.snapshot_gate.set()
        await caught_up(c, store)
        assert (await c.get("/readyz")).status == 200
        assert (await c.get("/schemas/ids/1")).status == 200


async def test_metrics_count_requests_per_route_template(client: Client) -> None:
    await client.get("/schemas/ids/1")
    await client.get("/schemas/ids/2")
    await client.get("/schemas/ids/999")
    await client.get("/nowhere")
    text = await (await client.get("/metrics")).text()
    assert 'kschema_api_requests_total{method="GET",route="/schemas/ids/{id}",status="200"} 2.0' in text
    assert 'kschema_api_requests_total{method="GET",route="/schemas/ids/{id}",status="404"} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    # The histogram is by method and route: both statuses add up in it.
    assert 'kschema_api_request_duration_seconds_count{method="GET",route="/schemas/ids/{id}"} 3.0' in text
    assert "/schemas/ids/999" not in text
    assert "kschema_api_versions_loaded 5.0" in text
    assert "kschema_api_feed_seq" in text
    assert "kschema_api_feed_lag_seconds" in text
    assert (
        'kschema_api_request_duration_seconds_bucket{le="0.005",method="GET",route="/schemas/ids/{id}"}'
        in text
    )


async def test_metrics_count_a_head_as_head_and_leave_out_routes_never_requested(client: Client) -> None:
    head = await client.head("/schemas/ids/1")
    assert head.status == 200
    assert head.content_type == SR
    assert await head.read() == b""
    await client.get("/schemas/ids/1")
    await client.post("/schemas/ids/1")  # the route serves GET and HEAD only: the catch-all answers
    text = await (await client.get("/metrics")).text()
    expected = [
        'kschema_api_requests_total{method="HEAD",route="/schemas/ids/{id}",status="200"} 1.0',
        'kschema_api_requests_total{method="GET",route="/schemas/ids/{id}",status="200"} 1.0',
        'kschema_api_requests_total{method="POST",route="unmatched",status="405"} 1.0',
        'kschema_api_request_duration_seconds_count{method="HEAD",route="/schemas/ids/{id}"} 1.0',
    ]
    assert [line for line in expected if line not in text] == []
    # Every route has its GET series from the start; one never requested is not exported as zeros.
    assert 'route="/schemas/ids/{id}/schema"' not in text
    assert " 0.0\n" not in text.split("# HELP kschema_api_requests_total")[1].split("# HELP", 1)[0]
