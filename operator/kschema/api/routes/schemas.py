"""Server metadata and schemas by ID or GUID: `GET /schemas/ids/{id}` is the hot path of every
Kafka deserializer, answered with bytes rendered once per ID."""

from __future__ import annotations

import json
import logging

from aiohttp import web

import kschema
from kschema.api.bodies import served_text
from kschema.api.errors import (
    schema_not_found,
)
from kschema.api.index import RegistryIndex
from kschema.api.routes.common import (
    HEADERS,
    PLAIN_HEADERS,
    flag,
    ready_index,
    respond,
    schema_id_of,
    schema_text,
)
from kschema.store import SubjectVersion

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.get("/")
@routes.post("/")
async def root(request: web.Request) -> web.Response:
    return respond({})


@routes.get("/v1/metadata/version")
async def server_version(request: web.Request) -> web.Response:
    return respond({"version": kschema.__version__, "commitId": ""})


@routes.get("/v1/metadata/id")
async def server_id(request: web.Request) -> web.Response:
    # Confluent's shape; kschema serves no Kafka cluster of its own, so only the registry is named.
    return respond({"scope": {"path": [], "clusters": {"schema-registry-cluster": "kschema"}}})


@routes.get("/schemas/types")
async def schema_types(request: web.Request) -> web.Response:
    return respond(["JSON", "PROTOBUF", "AVRO"])


@routes.get("/contexts")
async def contexts(request: web.Request) -> web.Response:
    return respond(["."])


@routes.get("/schemas/ids/{id}")
async def schema_by_id(request: web.Request) -> web.Response:
    index = ready_index(request)
    schema_id = schema_id_of(request.match_info["id"])
    body = index.schema_body(schema_id)
    if body is None:
        raise schema_not_found(f"Schema {schema_id} not found")
    if not request.query_string:
        return web.Response(body=body, headers=PLAIN_HEADERS)
    # `subject` and `findTags` are accepted and ignored: an ID means the same schema in every subject.
    fmt = request.query.get("format")
    fetch_max_id = flag(request, "fetchMaxId")
    stored = index.schema(schema_id)
    assert stored is not None
    if not fetch_max_id and await schema_text(request, index, schema_id, fmt) == served_text(stored):
        return web.Response(body=body, headers=PLAIN_HEADERS)
    payload = json.loads(body)
    payload["schema"] = await schema_text(request, index, schema_id, fmt)
    if fetch_max_id:
        payload["maxId"] = index.max_id
    return respond(payload)


@routes.get("/schemas/ids/{id}/schema")
async def schema_text_by_id(request: web.Request) -> web.Response:
    index = ready_index(request)
    text = await schema_text(
        request, index, schema_id_of(request.match_info["id"]), request.query.get("format")
    )
    return web.Response(body=text.encode(), headers=HEADERS)


def _uses_of_id(request: web.Request) -> list[SubjectVersion]:
    """The subject versions that use the schema ID in the path; an unknown ID is not found."""
    index = ready_index(request)
    schema_id = schema_id_of(request.match_info["id"])
    if not index.has_schema(schema_id):
        raise schema_not_found(f"Schema {schema_id} not found")
    return index.uses(schema_id, flag(request, "deleted"))


@routes.get("/schemas/ids/{id}/versions")
async def versions_by_id(request: web.Request) -> web.Response:
    uses = _uses_of_id(request)
    return respond([{"subject": v.subject, "version": v.version} for v in uses])


@routes.get("/schemas/ids/{id}/subjects")
async def subjects_by_id(request: web.Request) -> web.Response:
    uses = _uses_of_id(request)
    return respond(sorted({v.subject for v in uses}))


def _id_of_guid(request: web.Request, index: RegistryIndex) -> int:
    """The schema ID of the GUID in the path; an unknown GUID is not found."""
    guid = request.match_info["guid"]
    schema_id = index.id_for_guid(guid)
    if schema_id is None:
        raise schema_not_found(f"Schema with GUID {guid} not found")
    return schema_id


@routes.get("/schemas/guids/{guid}")
async def schema_by_guid(request: web.Request) -> web.Response:
    index = ready_index(request)
    schema_id = _id_of_guid(request, index)
    payload = json.loads(index.schema_body(schema_id) or b"{}")
    payload["schema"] = await schema_text(request, index, schema_id, request.query.get("format"))
    return respond(payload)


@routes.get("/schemas/guids/{guid}/ids")
async def ids_by_guid(request: web.Request) -> web.Response:
    schema_id = _id_of_guid(request, ready_index(request))
    return respond([schema_id])
