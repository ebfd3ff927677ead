"""What the read API's handlers share: reading path segments, query flags and JSON bodies, resolving
versions and references against the index, and building Confluent's response bodies.

Handlers return responses and raise only `ApiError` (or domain errors) for the error middleware."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from kschema.api.bodies import schema_guid, schema_json, served_text
from kschema.api.errors import (
    CONTENT_TYPE,
    ApiError,
    bad_request,
    invalid_schema,
    invalid_version,
    not_ready,
    schema_not_found,
    subject_not_found,
    version_not_found,
)
from kschema.api.index import RegistryIndex
from kschema.api.state import INDEX, POOL
from kschema.compute import tasks
from kschema.compute.tasks import SchemaText
from kschema.contracts import Contract, ContractError, contract_from_json
from kschema.formats import Reference, SchemaFormat
from kschema.formats.budget import LIMITS
from kschema.model import SchemaState
from kschema.store import SubjectVersion

log = logging.getLogger(__name__)

JSON_TYPES = frozenset(
    {"application/vnd.schemaregistry.v1+json", "application/vnd.schemaregistry+json", "application/json"}
)
MAX_VERSION = 2**31 - 1
HEADERS = {"Content-Type": CONTENT_TYPE}
# The same, ready for `web.Response` to copy: it copies a multidict faster than it converts a dict, which
# counts on the serializers' lookups.
PLAIN_HEADERS = CIMultiDict(HEADERS)


# Helpers ------------------------------------------------------------------------
def respond(data: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), headers={**HEADERS, **(headers or {})})


def ready_index(request: web.Request) -> RegistryIndex:
    index = request.app[INDEX]
    if not index.loaded:
        raise not_ready()
    return index


def flag(request: web.Request, name: str, default: bool = False) -> bool:
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


def schema_id_of(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise schema_not_found(f"Schema {raw} not found: an ID is a positive integer") from None
    return value


def version_of(index: RegistryIndex, subject: str, raw: str, include_deleted: bool) -> SubjectVersion:
    """Resolves a version path segment: `latest`, `-1` or an integer in [1, 2^31-1]."""
    if raw in ("latest", "-1"):
        found = index.latest(subject, include_deleted)
        if found is None:
            if not index.subject_exists(subject, include_deleted):
                raise subject_not_found(subject)
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


async def json_body(request: web.Request) -> Any:
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
    except RecursionError:
        raise bad_request(f"request body nests deeper than {LIMITS.payload_depth} levels") from None


async def object_body(request: web.Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise bad_request(f"request body must be a JSON object, got {type(body).__name__}")
    return body


def body_references(index: RegistryIndex, raw: Any) -> tuple[Reference, ...]:
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


def body_schema(index: RegistryIndex, body: Mapping[str, Any]) -> SchemaText:
    """The `{"schema", "schemaType", "references"}` of a request, references resolved from the index,
    ready for a worker to parse. `schemaType` defaults to AVRO, as in Confluent."""
    text = body.get("schema")
    if not isinstance(text, str) or not text.strip():
        raise invalid_schema("schema must be a non-empty string")
    raw_type = body.get("schemaType") or "AVRO"
    try:
        fmt = SchemaFormat(str(raw_type).upper())
    except ValueError:
        raise invalid_schema(f"schemaType must be one of AVRO, JSON, PROTOBUF, got {raw_type!r}") from None
    # Protobuf accepts `.proto` text and the base64 `FileDescriptorProto` Confluent clients send.
    return SchemaText(fmt, text, index.resolve(body_references(index, body.get("references")), fmt))


async def fingerprint_of(request: web.Request, schema: SchemaText) -> str:
    """Parses a request's schema in a worker process: parsing is CPU work the event loop must not do."""
    _, fingerprint = await request.app[POOL].run(tasks.summary, schema)
    return fingerprint


async def schema_text(request: web.Request, index: RegistryIndex, schema_id: int, fmt: str | None) -> str:
    stored = index.schema(schema_id)
    if stored is None:
        raise schema_not_found(f"Schema {schema_id} not found")
    if fmt == "serialized" and stored.format is SchemaFormat.PROTOBUF:
        found = index.cached_serialized(schema_id)
        if found is None:
            # Compiling with protoc is CPU work: it runs in a worker, once per ID (content never changes).
            found = await request.app[POOL].run(tasks.serialized, index.schema_text(schema_id))
            index.remember_serialized(schema_id, found)
        return found
    if fmt == "resolved" and stored.format is SchemaFormat.AVRO and stored.references:
        return index.resolved_avro(schema_id)
    return served_text(stored)


async def version_payload(
    request: web.Request, index: RegistryIndex, v: SubjectVersion, fmt: str | None
) -> dict[str, Any]:
    stored = index.schema(v.schema_id)
    assert stored is not None  # the index never holds a version without its schema
    return {
        "subject": v.subject,
        "version": v.version,
        "id": v.schema_id,
        "guid": schema_guid(stored.fingerprint),
        **schema_json(stored, await schema_text(request, index, v.schema_id, fmt)),
    }


def body_contract(body: Mapping[str, Any]) -> Contract | None:
    """The `metadata` and `ruleSet` of a lookup or register request; None when it carries neither."""
    if body.get("metadata") is None and body.get("ruleSet") is None:
        return None
    try:
        return contract_from_json({"metadata": body.get("metadata"), "ruleSet": body.get("ruleSet")})
    except ContractError as exc:
        raise ApiError(422, 42210, f"Invalid ruleset or metadata: {exc}") from None


def lifecycle_headers(index: RegistryIndex, v: SubjectVersion) -> dict[str, str]:
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
