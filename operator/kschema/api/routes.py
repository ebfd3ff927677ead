"""The read API's one route table: Confluent Schema Registry's read endpoints, its read-only answers to
writes, kschema's data-validation extension, and the health and metrics endpoints.

Handlers return responses and raise only `ApiError` (or domain errors) for the error middleware."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import kschema
from kschema.api.errors import (
    CONTENT_TYPE,
    ApiError,
    bad_request,
    invalid_schema,
    invalid_version,
    not_ready,
    read_only,
    schema_not_found,
    subject_config_not_found,
    subject_mode_not_found,
    subject_not_found,
    version_not_found,
)
from kschema.api.index import RegistryIndex, schema_guid, schema_json, served_text
from kschema.api.state import INDEX, METRICS, SETTINGS
from kschema.compat import VersionedSchema, check_compatibility
from kschema.contracts import Contract, ContractError, contract_from_json, group_of, registered_contract
from kschema.formats import ParsedSchema, Reference, SchemaFormat, parse_schema
from kschema.model import SchemaState
from kschema.store import SubjectVersion

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

JSON_TYPES = frozenset(
    {"application/vnd.schemaregistry.v1+json", "application/vnd.schemaregistry+json", "application/json"}
)
MAX_VERSION = 2**31 - 1
_HEADERS = {"Content-Type": CONTENT_TYPE}


# Helpers ------------------------------------------------------------------------
def _respond(data: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), headers={**_HEADERS, **(headers or {})})


def _ready_index(request: web.Request) -> RegistryIndex:
    index = request.app[INDEX]
    if not index.loaded:
        raise not_ready()
    return index


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter. Case-insensitive: Confluent's Python client sends `True`/`False`."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise bad_request(f"query parameter '{name}' must be true or false, got '{raw}'")


def _schema_id(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise schema_not_found(f"Schema {raw} not found: an ID is a positive integer") from None
    return value


def _version_of(index: RegistryIndex, subject: str, raw: str, include_deleted: bool) -> SubjectVersion:
    """Resolves a version path segment: `latest`, `-1` or an integer in [1, 2^31-1]."""
    if raw in ("latest", "-1"):
        if not index.subject_exists(subject, include_deleted):
            raise subject_not_found(subject)
        found = index.latest(subject, include_deleted)
        if found is None:
            raise version_not_found(subject, "latest")
        return found
    try:
        number = int(raw)
    except ValueError:
        raise invalid_version(raw) from None
    if not 1 <= number <= MAX_VERSION:
        raise invalid_version(raw)
    if not index.subject_exists(subject, include_deleted=True):
        raise subject_not_found(subject)
    found = index.version(subject, number, include_deleted)
    if found is None:
        raise version_not_found(subject, number)
    return found


async def _json_body(request: web.Request) -> Any:
    content_type = request.headers.get("Content-Type")
    if content_type is not None and request.content_type not in JSON_TYPES:
        raise ApiError(
            415,
            415,
            f"Unsupported content type '{request.content_type}'; send one of {', '.join(sorted(JSON_TYPES))}",
        )
    raw = await request.read()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad_request(f"request body is not valid JSON: {e}") from None


async def _object_body(request: web.Request) -> dict[str, Any]:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise bad_request(f"request body must be a JSON object, got {type(body).__name__}")
    return body


def _body_references(index: RegistryIndex, raw: Any) -> tuple[Reference, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise invalid_schema(f"references must be a list, got {type(raw).__name__}")
    found = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise invalid_schema(f"references[{i}] must be an object with name, subject and version")
        name, subject, version = item.get("name"), item.get("subject"), item.get("version")
        for key, value in (("name", name), ("subject", subject)):
            if not isinstance(value, str) or not value:
                raise invalid_schema(f"references[{i}].{key} must be a non-empty string")
        assert isinstance(name, str)  # checked just above
        assert isinstance(subject, str)
        if isinstance(version, bool) or not isinstance(version, int) or not (version == -1 or version >= 1):
            raise invalid_schema(f"references[{i}].version must be an integer >= 1 or -1, got {version!r}")
        if version == -1:
            # Confluent: -1 means the referenced subject's latest version at lookup time.
            latest = index.latest(subject, include_deleted=False)
            if latest is None:
                raise invalid_schema(f"references[{i}] '{name}': subject '{subject}' has no latest version")
            version = latest.version
        found.append(Reference(name, subject, version))
    return tuple(found)


def _body_schema(index: RegistryIndex, body: Mapping[str, Any]) -> ParsedSchema:
    """Parses the `{"schema", "schemaType", "references"}` of a request, resolving references from the
    index. `schemaType` defaults to AVRO, as in Confluent."""
    text = body.get("schema")
    if not isinstance(text, str) or not text.strip():
        raise invalid_schema("schema must be a non-empty string")
    raw_type = body.get("schemaType") or "AVRO"
    try:
        fmt = SchemaFormat(str(raw_type).upper())
    except ValueError:
        raise invalid_schema(f"schemaType must be one of AVRO, JSON, PROTOBUF, got {raw_type!r}") from None
    # Protobuf accepts `.proto` text and the base64 `FileDescriptorProto` Confluent clients send.
    return parse_schema(fmt, text, index.resolve(_body_references(index, body.get("references"))))


def _schema_text(index: RegistryIndex, schema_id: int, fmt: str | None) -> str:
    stored = index.schema(schema_id)
    if stored is None:
        raise schema_not_found(f"Schema {schema_id} not found")
    if fmt == "serialized" and stored.format is SchemaFormat.PROTOBUF:
        return index.serialized(schema_id)
    if fmt == "resolved" and stored.format is SchemaFormat.AVRO and stored.references:
        return index.resolved_avro(schema_id)
    return served_text(stored)


def _version_payload(index: RegistryIndex, v: SubjectVersion, fmt: str | None) -> dict[str, Any]:
    stored = index.schema(v.schema_id)
    assert stored is not None  # the index never holds a version without its schema
    return {
        "subject": v.subject,
        "version": v.version,
        "id": v.schema_id,
        "guid": schema_guid(stored.fingerprint),
        **schema_json(stored, _schema_text(index, v.schema_id, fmt)),
    }


def _body_contract(body: Mapping[str, Any]) -> Contract | None:
    """The `metadata` and `ruleSet` of a lookup or register request; None when it carries neither."""
    if body.get("metadata") is None and body.get("ruleSet") is None:
        return None
    try:
        return contract_from_json({"metadata": body.get("metadata"), "ruleSet": body.get("ruleSet")})
    except ContractError as exc:
        raise ApiError(422, 42210, f"Invalid ruleset or metadata: {exc}") from None


def _lifecycle_headers(index: RegistryIndex, v: SubjectVersion) -> dict[str, str]:
    """`Deprecation` (RFC 9745) and `Sunset` (RFC 8594) headers for a DEPRECATED version."""
    if v.state is not SchemaState.DEPRECATED:
        return {}
    headers = {}
    since = index.deprecated_since(v)
    if since is not None:
        headers["Deprecation"] = f"@{int(since)}"
    if v.sunset:
        try:
            when = datetime.fromisoformat(v.sunset)
        except ValueError:
            log.warning(
                "Skipped an unreadable sunset date subject=%s version=%d sunset=%s",
                v.subject,
                v.version,
                v.sunset,
            )
        else:
            when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
            headers["Sunset"] = format_datetime(when.astimezone(UTC), usegmt=True)
    return headers


# Root and server metadata ------------------------------------------------------------------------
@routes.get("/")
@routes.post("/")
async def root(request: web.Request) -> web.Response:
    return _respond({})


@routes.get("/v1/metadata/version")
async def server_version(request: web.Request) -> web.Response:
    return _respond({"version": kschema.__version__, "commitId": ""})


@routes.get("/v1/metadata/id")
async def server_id(request: web.Request) -> web.Response:
    # Confluent's shape; kschema serves no Kafka cluster of its own, so only the registry is named.
    return _respond({"scope": {"path": [], "clusters": {"schema-registry-cluster": "kschema"}}})


@routes.get("/schemas/types")
async def schema_types(request: web.Request) -> web.Response:
    return _respond(["JSON", "PROTOBUF", "AVRO"])


@routes.get("/contexts")
async def contexts(request: web.Request) -> web.Response:
    return _respond(["."])


# Schemas by ID ------------------------------------------------------------------------
@routes.get("/schemas/ids/{id}")
async def schema_by_id(request: web.Request) -> web.Response:
    index = _ready_index(request)
    schema_id = _schema_id(request.match_info["id"])
    body = index.schema_body(schema_id)
    if body is None:
        raise schema_not_found(f"Schema {schema_id} not found")
    if not request.query_string:
        return web.Response(body=body, headers=_HEADERS)
    # `subject` and `findTags` are accepted and ignored: an ID means the same schema in every subject.
    fmt = request.query.get("format")
    fetch_max_id = _flag(request, "fetchMaxId")
    stored = index.schema(schema_id)
    assert stored is not None
    if not fetch_max_id and _schema_text(index, schema_id, fmt) == served_text(stored):
        return web.Response(body=body, headers=_HEADERS)
    payload = json.loads(body)
    payload["schema"] = _schema_text(index, schema_id, fmt)
    if fetch_max_id:
        payload["maxId"] = index.max_id
    return _respond(payload)


@routes.get("/schemas/ids/{id}/schema")
async def schema_text_by_id(request: web.Request) -> web.Response:
    index = _ready_index(request)
    text = _schema_text(index, _schema_id(request.match_info["id"]), request.query.get("format"))
    return web.Response(body=text.encode(), headers=_HEADERS)


def _uses_of_id(request: web.Request) -> list[SubjectVersion]:
    """The subject versions that use the schema ID in the path; an unknown ID is not found."""
    index = _ready_index(request)
    schema_id = _schema_id(request.match_info["id"])
    if not index.has_schema(schema_id):
        raise schema_not_found(f"Schema {schema_id} not found")
    return index.uses(schema_id, _flag(request, "deleted"))


@routes.get("/schemas/ids/{id}/versions")
async def versions_by_id(request: web.Request) -> web.Response:
    uses = _uses_of_id(request)
    return _respond([{"subject": v.subject, "version": v.version} for v in uses])


@routes.get("/schemas/ids/{id}/subjects")
async def subjects_by_id(request: web.Request) -> web.Response:
    uses = _uses_of_id(request)
    return _respond(sorted({v.subject for v in uses}))


def _id_of_guid(request: web.Request, index: RegistryIndex) -> int:
    """The schema ID of the GUID in the path; an unknown GUID is not found."""
    guid = request.match_info["guid"]
    schema_id = index.id_for_guid(guid)
    if schema_id is None:
        raise schema_not_found(f"Schema with GUID {guid} not found")
    return schema_id


@routes.get("/schemas/guids/{guid}")
async def schema_by_guid(request: web.Request) -> web.Response:
    index = _ready_index(request)
    schema_id = _id_of_guid(request, index)
    payload = json.loads(index.schema_body(schema_id) or b"{}")
    payload["schema"] = _schema_text(index, schema_id, request.query.get("format"))
    return _respond(payload)


@routes.get("/schemas/guids/{guid}/ids")
async def ids_by_guid(request: web.Request) -> web.Response:
    schema_id = _id_of_guid(request, _ready_index(request))
    return _respond([schema_id])


# Subjects and versions ------------------------------------------------------------------------
@routes.get("/subjects/{subject}/versions/{version}")
async def get_version(request: web.Request) -> web.Response:
    index = _ready_index(request)
    subject = request.match_info["subject"]
    found = _version_of(index, subject, request.match_info["version"], _flag(request, "deleted"))
    payload = _version_payload(index, found, request.query.get("format"))
    return _respond(payload, _lifecycle_headers(index, found))


@routes.get("/subjects/{subject}/versions/{version}/schema")
async def get_version_schema(request: web.Request) -> web.Response:
    index = _ready_index(request)
    subject = request.match_info["subject"]
    found = _version_of(index, subject, request.match_info["version"], _flag(request, "deleted"))
    text = _schema_text(index, found.schema_id, request.query.get("format"))
    return web.Response(body=text.encode(), headers={**_HEADERS, **_lifecycle_headers(index, found)})


@routes.get("/subjects/{subject}/versions/{version}/referencedby")
async def referenced_by(request: web.Request) -> web.Response:
    index = _ready_index(request)
    subject = request.match_info["subject"]
    include_deleted = _flag(request, "deleted")
    found = _version_of(index, subject, request.match_info["version"], include_deleted)
    return _respond(index.referenced_by(found.subject, found.version, include_deleted))


@routes.get("/subjects/{subject}/metadata")
async def latest_with_metadata(request: web.Request) -> web.Response:
    """Confluent's latest-with-metadata: the highest version whose metadata properties hold every
    `key`/`value` pair of the query (clients configured with `use.latest.with.metadata` call it)."""
    index = _ready_index(request)
    subject = request.match_info["subject"]
    include_deleted = _flag(request, "deleted")
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
    payload = _version_payload(index, found, request.query.get("format"))
    return _respond(payload, _lifecycle_headers(index, found))


@routes.post("/subjects/{subject}")
async def lookup(request: web.Request) -> web.Response:
    """Is this schema registered under the subject? Compared by fingerprint (canonical form plus
    references), so formatting and key order do not matter."""
    index = _ready_index(request)
    subject = request.match_info["subject"]
    include_deleted = _flag(request, "deleted")
    body = await _object_body(request)
    if not index.subject_exists(subject, include_deleted):
        raise subject_not_found(subject)
    parsed = _body_schema(index, body)
    found = index.find_in_subject(subject, parsed.fingerprint, include_deleted, _body_contract(body))
    if found is None:
        raise schema_not_found(f"Schema not found under subject '{subject}'")
    payload = _version_payload(index, found, request.query.get("format"))
    return _respond(payload, _lifecycle_headers(index, found))


@routes.post("/subjects/{subject}/versions")
async def register(request: web.Request) -> web.Response:
    """Confluent's READONLY behaviour: a schema that is already registered gets its ID back (clients
    "register" on first use); anything new is refused, because versions come from Schema resources."""
    index = _ready_index(request)
    subject = request.match_info["subject"]
    body = await _object_body(request)
    parsed = _body_schema(index, body)
    found = None
    if index.subject_exists(subject, include_deleted=False):
        found = index.find_in_subject(subject, parsed.fingerprint, False, _body_contract(body))
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
    return _respond(
        {"id": found.schema_id, "version": found.version, "guid": schema_guid(stored.fingerprint)}
    )


@routes.delete("/subjects/{subject}")
@routes.delete("/subjects/{subject}/versions/{version}")
@routes.route("PUT", "/config/{subject}")
@routes.route("DELETE", "/config/{subject}")
@routes.route("PUT", "/mode/{subject}")
@routes.route("DELETE", "/mode/{subject}")
async def write_subject(request: web.Request) -> web.Response:
    """Deleting a subject or a version, or changing a subject's config or mode: all read-only here."""
    raise read_only(f"Subject '{request.match_info['subject']}'")


# Config, mode, associations ------------------------------------------------------------------------
@routes.get("/config")
async def global_config(request: web.Request) -> web.Response:
    return _respond({"compatibilityLevel": request.app[SETTINGS].global_compatibility.value})


@routes.get("/config/{subject}")
async def subject_config(request: web.Request) -> web.Response:
    index = _ready_index(request)
    subject = request.match_info["subject"]
    record = index.subject(subject)
    # Confluent's subject config also carries the data-contract group, defaults and overrides.
    contract = record.contract.to_json() if record is not None and not record.deleted else {}
    if record is None or record.deleted or not record.compatibility_declared:
        # Confluent: a subject without its own level has no subject config unless the global one is asked.
        if _flag(request, "defaultToGlobal"):
            return _respond(
                {"compatibilityLevel": request.app[SETTINGS].global_compatibility.value, **contract}
            )
        if not contract:
            raise subject_config_not_found(subject)
        return _respond(contract)
    return _respond({"compatibilityLevel": record.compatibility.value, **contract})


@routes.get("/mode")
async def mode(request: web.Request) -> web.Response:
    # The whole registry is read-only through this API.
    return _respond({"mode": "READONLY"})


@routes.get("/mode/{subject}")
async def subject_mode(request: web.Request) -> web.Response:
    """Every known subject is read-only here; an unknown one has no mode, as in Confluent (40409)."""
    index = _ready_index(request)
    subject = request.match_info["subject"]
    if not index.has_subject(subject) and not _flag(request, "defaultToGlobal"):
        raise subject_mode_not_found(subject)
    return _respond({"mode": "READONLY"})


@routes.route("PUT", "/config")
@routes.route("DELETE", "/config")
async def write_global_config(request: web.Request) -> web.Response:
    raise read_only("The global configuration")


@routes.route("PUT", "/mode")
@routes.route("DELETE", "/mode")
async def write_global_mode(request: web.Request) -> web.Response:
    raise read_only("The global mode")


@routes.get("/associations/resources/{namespace}/{name}")
@routes.get("/associations/subjects/{subject}")
async def associations(request: web.Request) -> web.Response:
    # kschema binds topics to subjects by name (TopicNameStrategy); it stores no associations, and an
    # empty list makes clients fall back to that strategy.
    return _respond([])


# Compatibility and data validation ------------------------------------------------------------------------
async def _compatibility(request: web.Request, version: str | None) -> web.Response:
    index = _ready_index(request)
    subject = request.match_info["subject"]
    verbose = _flag(request, "verbose")
    body = await _object_body(request)
    if version is not None:
        history = [_version_of(index, subject, version, include_deleted=False)]
    else:
        history = index.versions(subject, include_deleted=False)
    new = _body_schema(index, body)
    record = index.subject(subject)
    # A Subject without spec.compatibility inherits the cluster-wide level, as the operator applies it.
    declared = record is not None and record.compatibility_declared
    level = (
        record.compatibility
        if record is not None and declared
        else request.app[SETTINGS].global_compatibility
    )
    if record is not None and record.contract.compatibility_group:
        # Confluent's compatibility groups: only versions of the candidate's group count.
        config = record.contract
        latest = history[-1] if history else None
        previous = index.schema(latest.schema_id).contract if latest is not None else None  # type: ignore[union-attr]
        group = group_of(config, registered_contract(config, _body_contract(body) or Contract(), previous))
        history = [v for v in history if group_of(config, index.schema(v.schema_id).contract) == group]  # type: ignore[union-attr]
    result = check_compatibility(
        VersionedSchema(None, new),
        [VersionedSchema(v.version, index.parsed(v.schema_id)) for v in history],
        level,
    )
    payload: dict[str, Any] = {"is_compatible": result.compatible}
    if verbose:
        payload["messages"] = result.messages
    return _respond(payload)


@routes.post("/compatibility/subjects/{subject}/versions/{version}")
async def compatibility_with_version(request: web.Request) -> web.Response:
    return await _compatibility(request, request.match_info["version"])


@routes.post("/compatibility/subjects/{subject}/versions")
async def compatibility_with_history(request: web.Request) -> web.Response:
    return await _compatibility(request, None)


# Health and metrics ------------------------------------------------------------------------
@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    index = request.app[INDEX]
    if not index.loaded:
        return web.json_response({"status": "loading"}, status=503)
    return web.json_response({"status": "ready", "seq": index.seq})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
