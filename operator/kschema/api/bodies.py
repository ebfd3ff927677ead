"""Confluent's JSON bodies for schemas, rendered from stored rows: the served schema text, the stable GUID
and the schema part of every response that carries one."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable

from kschema.formats import Reference, SchemaFormat
from kschema.store import StoredSchema, SubjectVersion

__all__ = [
    "compact_json",
    "guid_bytes",
    "id_body",
    "references_json",
    "schema_guid",
    "schema_json",
    "served_text",
    "version_body",
]


def guid_bytes(fingerprint: str) -> bytes:
    """The 16 bytes of a schema's GUID: a version-4 UUID made of the fingerprint's digest."""
    digest = bytearray(hashlib.sha256(f"kschema.io/guid:{fingerprint}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40  # version 4
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(digest)


def schema_guid(fingerprint: str) -> str:
    """A stable GUID for a schema's content: derived from the fingerprint, so every replica and every
    rebuild of the index gives the same answer without storing it."""
    return str(uuid.UUID(bytes=guid_bytes(fingerprint)))


def references_json(references: Iterable[Reference]) -> list[dict[str, object]]:
    return [{"name": r.name, "subject": r.subject, "version": r.version} for r in references]


# A JSON string, a run of anything else but whitespace, or a lone quote (only in invalid JSON): every
# token of the text, so joining them drops exactly the whitespace outside strings.
# The string alternative is written as runs between escapes (not one alternation per character), which
# is an order of magnitude faster on long strings such as `doc` texts.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^ \t\r\n"]+|"', re.DOTALL)


def compact_json(text: str) -> str:
    """JSON text with the whitespace between tokens removed; strings, numbers and key order are kept
    byte for byte (a reparse would turn 1e400 into Infinity and reorder nothing useful)."""
    return "".join(_TOKEN.findall(text))


def served_text(schema: StoredSchema) -> str:
    """The schema text the read API serves. Confluent serves its canonical string, not the author's
    text: for JSON Schema that is the JSON without whitespace, key order kept, which kschema serves too
    for Avro and JSON Schema, so tools that compare the text byte for byte with Confluent's see the same
    string (Avro's own Java printer also reorders attributes and shortens `{"type": "string"}`, which
    kschema does not copy). Protobuf is served as its author wrote it: Confluent's `.proto` printer is
    not reproducible byte for byte, and tools that compare against what they declared (GitOps drift
    checks, Terraform) need the declared text; `format=serialized` gives the descriptor."""
    if schema.format is SchemaFormat.PROTOBUF:
        return schema.schema
    return compact_json(schema.schema)


def schema_json(schema: StoredSchema, text: str | None = None) -> dict[str, object]:
    """The schema part of Confluent's responses: `schemaType` left out for Avro and `references` left out
    when empty, as Confluent does; the version's data contract beside it."""
    body: dict[str, object] = {}
    if schema.format is not SchemaFormat.AVRO:
        body["schemaType"] = schema.format.value
    body["schema"] = served_text(schema) if text is None else text
    if schema.references:
        body["references"] = references_json(schema.references)
    # Data contracts: `metadata` and `ruleSet` when the version has them (Confluent's NON_EMPTY).
    body.update(schema.contract.to_json())
    return body


# `id_body` ends with the GUID: `, "guid": "<36 characters>"}`.
_GUID_TAIL = len(b', "guid": "') + 36 + len(b'"}')


def id_body(schema: StoredSchema) -> bytes:
    """The `GET /schemas/ids/{id}` body: the schema part, then the GUID."""
    return json.dumps({**schema_json(schema), "guid": schema_guid(schema.fingerprint)}).encode()


def version_body(version: SubjectVersion, rendered_id_body: bytes) -> bytes:
    """The `GET /subjects/{s}/versions/{v}` body (a Schema object of `GET /schemas` too): subject,
    version, ID and GUID, then the schema part, made from the `id_body` of its schema without encoding
    the schema text again. The same bytes as `json.dumps` of the whole object."""
    schema_part = rendered_id_body[1:-_GUID_TAIL]
    guid = rendered_id_body[-_GUID_TAIL + len(b', "guid": "') : -2]
    head = b'{"subject": %s, "version": %d, "id": %d, "guid": "%s", ' % (
        json.dumps(version.subject).encode(),
        version.version,
        version.schema_id,
        guid,
    )
    return head + schema_part + b"}"
