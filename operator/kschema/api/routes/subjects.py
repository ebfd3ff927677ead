"""Subject versions (`GET /subjects/{subject}/versions/{version}`, the serializers' `latest`), lookups
by content, and Confluent's read-only answers to registrations and deletions."""

from __future__ import annotations

import logging

from aiohttp import web

from kschema.api.bodies import schema_guid
from kschema.api.errors import (
    ApiError,
    bad_request,
    read_only,
    schema_not_found,
    subject_not_found,
)
from kschema.api.routes.common import (
    HEADERS,
    PLAIN_HEADERS,
    body_contract,
    body_schema,
    fingerprint_of,
    flag,
    lifecycle_headers,
    object_body,
    ready_index,
    respond,
    schema_text,
    version_of,
    version_payload,
)
from kschema.model import SchemaState

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
_DEPRECATED = SchemaState.DEPRECATED  # a module constant is read faster than an Enum member


@routes.get("/subjects/{subject}/versions/{version}")
async def get_version(request: web.Request) -> web.Response:
    index = ready_index(request)
    match = request.match_info
    if not request.query_string:
        found = version_of(index, match["subject"], match["version"], include_deleted=False)
        if found.state is not _DEPRECATED:
            return web.Response(body=index.version_body(found), headers=PLAIN_HEADERS)
        return web.Response(
            body=index.version_body(found), headers={**HEADERS, **lifecycle_headers(index, found)}
        )
    found = version_of(index, match["subject"], match["version"], flag(request, "deleted"))
    payload = await version_payload(request, index, found, request.query.get("format"))
    return respond(payload, lifecycle_headers(index, found))


@routes.get("/subjects/{subject}/versions/{version}/schema")
async def get_version_schema(request: web.Request) -> web.Response:
    index = ready_index(request)
    subject = request.match_info["subject"]
    found = version_of(index, subject, request.match_info["version"], flag(request, "deleted"))
    text = await schema_text(request, index, found.schema_id, request.query.get("format"))
    return web.Response(body=text.encode(), headers={**HEADERS, **lifecycle_headers(index, found)})


@routes.get("/subjects/{subject}/versions/{version}/referencedby")
async def referenced_by(request: web.Request) -> web.Response:
    index = ready_index(request)
    subject = request.match_info["subject"]
    include_deleted = flag(request, "deleted")
    found = version_of(index, subject, request.match_info["version"], include_deleted)
    return respond(index.referenced_by(found.subject, found.version, include_deleted))


@routes.get("/subjects/{subject}/metadata")
async def latest_with_metadata(request: web.Request) -> web.Response:
    """Confluent's latest-with-metadata: the highest version whose metadata properties hold every
    `key`/`value` pair of the query (clients configured with `use.latest.with.metadata` call it)."""
    index = ready_index(request)
    subject = request.match_info["subject"]
    include_deleted = flag(request, "deleted")
    keys, values = request.query.getall("key", []), request.query.getall("value", [])
    if len(keys) != len(values):
        raise bad_request("query parameters 'key' and 'value' must come in pairs")
    if len(keys) > 64:
        raise bad_request("at most 64 key/value pairs")
    if not index.subject_exists(subject, include_deleted):
        raise subject_not_found(subject)
    found = index.latest_with_metadata(subject, dict(zip(keys, values, strict=True)), include_deleted)
    if found is None:
        raise ApiError(
            404,
            40403,
            f"No version of subject '{subject}' has the metadata {dict(zip(keys, values, strict=True))}",
        )
    payload = await version_payload(request, index, found, request.query.get("format"))
    return respond(payload, lifecycle_headers(index, found))


@routes.post("/subjects/{subject}")
async def lookup(request: web.Request) -> web.Response:
    """Is this schema registered under the subject? Compared by fingerprint (canonical form plus
    references), so formatting and key order do not matter."""
    index = ready_index(request)
    subject = request.match_info["subject"]
    include_deleted = flag(request, "deleted")
    body = await object_body(request)
    if not index.subject_exists(subject, include_deleted):
        raise subject_not_found(subject)
    fingerprint = await fingerprint_of(request, body_schema(index, body))
    found = index.find_in_subject(subject, fingerprint, include_deleted, body_contract(body))
    if found is None:
        raise schema_not_found(f"Schema not found under subject '{subject}'")
    payload = await version_payload(request, index, found, request.query.get("format"))
    return respond(payload, lifecycle_headers(index, found))


@routes.post("/subjects/{subject}/versions")
async def register(request: web.Request) -> web.Response:
    """Confluent's READONLY behaviour: a schema that is already registered gets its ID back (clients
    "register" on first use); anything new is refused, because versions come from Schema resources."""
    index = ready_index(request)
    subject = request.match_info["subject"]
    body = await object_body(request)
    fingerprint = await fingerprint_of(request, body_schema(index, body))
    found = None
    if index.subject_exists(subject, include_deleted=False):
        found = index.find_in_subject(subject, fingerprint, False, body_contract(body))
    if found is None:
        raise read_only(f"Subject '{subject}'")
    wanted_id = body.get("id")
    if wanted_id not in (None, 0, -1, found.schema_id):
        raise read_only(f"Subject '{subject}'")
    if body.get("version") == -1:
        # "This must become latest": true already, or it would need a new version.
        latest = index.latest(subject, include_deleted=False)
        if latest is None or latest.schema_id != found.schema_id:
            raise read_only(f"Subject '{subject}'")
    stored = index.schema(found.schema_id)
    assert stored is not None
    return respond({"id": found.schema_id, "version": found.version, "guid": schema_guid(stored.fingerprint)})


@routes.delete("/subjects/{subject}")
@routes.delete("/subjects/{subject}/versions/{version}")
@routes.route("PUT", "/config/{subject}")
@routes.route("DELETE", "/config/{subject}")
@routes.route("PUT", "/mode/{subject}")
@routes.route("DELETE", "/mode/{subject}")
async def write_subject(request: web.Request) -> web.Response:
    """Deleting a subject or a version, or changing a subject's config or mode: all read-only here."""
    raise read_only(f"Subject '{request.match_info['subject']}'")
