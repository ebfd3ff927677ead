"""The read API's in-memory index of the registry, built from a store snapshot and kept current from the
change feed (see `feed.py`). Every request is answered from here; nothing here is shared between
replicas, each one follows the store on its own.

Visibility rules (Confluent semantics plus the Schema resource's states):
- an ID always resolves, whatever happened to the versions that use it;
- soft-deleted versions (and versions of a soft-deleted subject) are hidden unless `deleted=true`;
- ARCHIVED versions are left out of listings unless `deleted=true`, but resolve by number and by ID;
- DRAFT versions are listed and resolve by number, but are never `latest`.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence

from kschema.api.errors import ApiError, invalid_schema
from kschema.contracts import Contract, contract_fingerprint
from kschema.contracts.conditions import ConditionSet
from kschema.formats import ParsedSchema, Reference, ResolvedReference, SchemaFormat, parse_schema
from kschema.model import SchemaState
from kschema.store import Snapshot, StoredSchema, SubjectRecord, SubjectVersion

# References nest (a Protobuf import importing another); a chain this deep is a cycle or a mistake.
MAX_REFERENCE_DEPTH = 32

Parser = Callable[[SchemaFormat, str, tuple[ResolvedReference, ...]], ParsedSchema]


def schema_guid(fingerprint: str) -> str:
    """A stable GUID for a schema's content: derived from the fingerprint, so every replica and every
    rebuild of the index gives the same answer without storing it."""
    digest = hashlib.sha256(f"kschema.io/guid:{fingerprint}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def references_json(references: Iterable[Reference]) -> list[dict[str, object]]:
    return [{"name": r.name, "subject": r.subject, "version": r.version} for r in references]


def compact_json(text: str) -> str:
    """JSON text with the whitespace between tokens removed; strings, numbers and key order are kept
    byte for byte (a reparse would turn 1e400 into Infinity and reorder nothing useful)."""
    out: list[str] = []
    in_string = escaped = False
    start = 0
    for i, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in " \t\r\n":
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return "".join(out)


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


def _default_parser(fmt: SchemaFormat, text: str, refs: tuple[ResolvedReference, ...]) -> ParsedSchema:
    return parse_schema(fmt, text, refs)


class RegistryIndex:
    def __init__(self, parser: Parser = _default_parser, clock: Callable[[], float] = time.time) -> None:
        self.seq = 0
        self.loaded = False
        self.max_id = 0
        self.version_count = 0
        self._parser = parser
        self._clock = clock
        self._schemas: dict[int, StoredSchema] = {}
        self._bodies: dict[int, bytes] = {}  # the exact `GET /schemas/ids/{id}` response, per ID
        self._guids: dict[str, int] = {}
        self._subjects: dict[str, SubjectRecord] = {}
        self._versions: dict[str, dict[int, SubjectVersion]] = {}
        self._uses: dict[int, dict[tuple[str, int], SubjectVersion]] = {}
        self._referrers: dict[tuple[str, int], set[int]] = {}
        self._parsed: dict[int, ParsedSchema] = {}
        self._serialized: dict[int, str] = {}
        self._conditions: dict[int, ConditionSet] = {}
        self._resolved: dict[int, str] = {}
        # When this index first saw a version DEPRECATED; the store keeps no such date.
        self._deprecated_since: dict[tuple[str, int], float] = {}

    # Loading ---------------------------------------------------------------------------------------
    def load(self, snapshot: Snapshot) -> None:
        """Replaces the contents with `snapshot`. Per-ID caches survive: an ID's content never changes."""
        old_schemas = self._schemas
        deprecated_since = self._deprecated_since
        self._schemas, self._bodies, self._guids = {}, {}, {}
        self._subjects, self._versions, self._uses, self._referrers = {}, {}, {}, {}
        self._deprecated_since = {}
        self.max_id = self.version_count = 0
        for schema in snapshot.schemas:
            if old_schemas.get(schema.id) != schema:
                self._forget_caches(schema.id)
            self._add_schema(schema)
        for record in snapshot.subjects:
            self.put_subject(record)
        for version in snapshot.versions:
            key = (version.subject, version.version)
            if key in deprecated_since:
                self._deprecated_since[key] = deprecated_since[key]
            self.put_version(version)
        self.seq = snapshot.seq
        self.loaded = True

    def put_schema(self, schema: StoredSchema) -> None:
        old = self._schemas.get(schema.id)
        if old == schema:
            return
        if old is not None:
            self._forget_caches(schema.id)
            for ref in old.references:
                self._referrers.get((ref.subject, ref.version), set()).discard(schema.id)
        self._add_schema(schema)

    def put_subject(self, record: SubjectRecord) -> None:
        self._subjects[record.subject] = record

    def put_version(self, version: SubjectVersion) -> None:
        key = (version.subject, version.version)
        versions = self._versions.setdefault(version.subject, {})
        old = versions.get(version.version)
        if old is None:
            self.version_count += 1
        else:
            self._uses.get(old.schema_id, {}).pop(key, None)
        versions[version.version] = version
        self._uses.setdefault(version.schema_id, {})[key] = version
        if version.state is SchemaState.DEPRECATED:
            self._deprecated_since.setdefault(key, self._clock())
        else:
            self._deprecated_since.pop(key, None)

    @property
    def schema_count(self) -> int:
        return len(self._schemas)

    def has_schema(self, schema_id: int) -> bool:
        return schema_id in self._schemas

    def has_subject(self, subject: str) -> bool:
        return subject in self._subjects

    def subject_exists(self, subject: str, include_deleted: bool) -> bool:
        """Whether the subject has a version (a live one unless `include_deleted`)."""
        return any(include_deleted or not self._deleted(v) for v in self._versions.get(subject, {}).values())

    def _add_schema(self, schema: StoredSchema) -> None:
        self._schemas[schema.id] = schema
        guid = schema_guid(schema.fingerprint)
        self._guids[guid] = schema.id
        self._bodies[schema.id] = json.dumps({**schema_json(schema), "guid": guid}).encode()
        for ref in schema.references:
            self._referrers.setdefault((ref.subject, ref.version), set()).add(schema.id)
        self.max_id = max(self.max_id, schema.id)

    def _forget_caches(self, schema_id: int) -> None:
        self._parsed.pop(schema_id, None)
        self._serialized.pop(schema_id, None)
        self._conditions.pop(schema_id, None)
        self._resolved.pop(schema_id, None)

    # Schemas by ID ---------------------------------------------------------------------------------
    def schema(self, schema_id: int) -> StoredSchema | None:
        return self._schemas.get(schema_id)

    def schema_body(self, schema_id: int) -> bytes | None:
        return self._bodies.get(schema_id)

    def id_for_guid(self, guid: str) -> int | None:
        return self._guids.get(guid.lower())

    def uses(self, schema_id: int, include_deleted: bool) -> list[SubjectVersion]:
        """The subject versions that use an ID, by subject then version."""
        found = [v for v in self._uses.get(schema_id, {}).values() if self._listed(v, include_deleted)]
        return sorted(found, key=lambda v: (v.subject, v.version))

    def referenced_by(self, subject: str, version: int, include_deleted: bool) -> list[int]:
        """IDs of schemas whose references name this subject version."""
        ids = self._referrers.get((subject, version), set())
        return sorted(i for i in ids if include_deleted or self.uses(i, include_deleted=False))

    # Subjects and versions ---------------------------------------------------------------------------
    def subject(self, subject: str) -> SubjectRecord | None:
        return self._subjects.get(subject)

    def subjects(self, include_deleted: bool, prefix: str = "", deleted_only: bool = False) -> list[str]:
        """Subjects with at least one listed version (with `deleted_only`, at least one deleted one)."""
        return sorted(
            name
            for name, versions in self._versions.items()
            if name.startswith(prefix)
            and any(self._selected(v, include_deleted, deleted_only) for v in versions.values())
        )

    def versions(
        self, subject: str, include_deleted: bool, deleted_only: bool = False
    ) -> list[SubjectVersion]:
        found = [
            v
            for v in self._versions.get(subject, {}).values()
            if self._selected(v, include_deleted, deleted_only)
        ]
        return sorted(found, key=lambda v: v.version)

    def _selected(self, v: SubjectVersion, include_deleted: bool, deleted_only: bool) -> bool:
        # Confluent: deletedOnly wins over deleted.
        return self._deleted(v) if deleted_only else self._listed(v, include_deleted)

    def version(self, subject: str, number: int, include_deleted: bool) -> SubjectVersion | None:
        found = self._versions.get(subject, {}).get(number)
        if found is None or (self._deleted(found) and not include_deleted):
            return None
        return found

    def latest(self, subject: str, include_deleted: bool) -> SubjectVersion | None:
        """The highest version that may be served as latest: never DRAFT or ARCHIVED."""
        best: SubjectVersion | None = None
        for v in self._versions.get(subject, {}).values():
            if v.state in (SchemaState.DRAFT, SchemaState.ARCHIVED):
                continue
            if self._deleted(v) and not include_deleted:
                continue
            if best is None or v.version > best.version:
                best = v
        return best

    def find_in_subject(
        self, subject: str, fingerprint: str, include_deleted: bool, contract: Contract | None = None
    ) -> SubjectVersion | None:
        """The highest version of `subject` whose schema has this fingerprint and, when `contract` is
        given, this metadata and rule set (without one, as in Confluent, any contract matches)."""
        best: SubjectVersion | None = None
        for v in self._versions.get(subject, {}).values():
            if self._deleted(v) and not include_deleted:
                continue
            stored = self._schemas[v.schema_id]
            wanted = contract if contract is not None else stored.contract
            if stored.fingerprint != contract_fingerprint(fingerprint, wanted):
                continue
            if best is None or v.version > best.version:
                best = v
        return best

    def latest_with_metadata(
        self, subject: str, wanted: dict[str, str], include_deleted: bool
    ) -> SubjectVersion | None:
        """The highest version (never DRAFT or ARCHIVED) whose metadata properties hold every pair."""
        best: SubjectVersion | None = None
        for v in self._versions.get(subject, {}).values():
            if v.state in (SchemaState.DRAFT, SchemaState.ARCHIVED) or (
                self._deleted(v) and not include_deleted
            ):
                continue
            metadata = self._schemas[v.schema_id].contract.metadata
            props = dict(metadata.properties) if metadata is not None else {}
            if all(props.get(k) == value for k, value in wanted.items()) and (
                best is None or v.version > best.version
            ):
                best = v
        return best

    def conditions(self, schema_id: int) -> ConditionSet:
        """The CONDITION rules the validate endpoint applies for an ID, compiled on first use."""
        found = self._conditions.get(schema_id)
        if found is None:
            stored = self._schemas.get(schema_id)
            found = ConditionSet(stored.contract if stored is not None else Contract())
            self._conditions[schema_id] = found
        return found

    def deprecated_since(self, version: SubjectVersion) -> float | None:
        return self._deprecated_since.get((version.subject, version.version))

    def _deleted(self, v: SubjectVersion) -> bool:
        record = self._subjects.get(v.subject)
        return v.deleted or (record is not None and record.deleted)

    def _listed(self, v: SubjectVersion, include_deleted: bool) -> bool:
        if include_deleted:
            return True
        return not self._deleted(v) and v.state is not SchemaState.ARCHIVED

    # Parsing ---------------------------------------------------------------------------------------
    def resolve(self, references: Sequence[Reference], depth: int = 0) -> tuple[ResolvedReference, ...]:
        """Resolves references against the index (deleted versions included: data written with them must
        stay readable). Raises a 42201 error naming the missing reference."""
        if depth > MAX_REFERENCE_DEPTH:
            raise invalid_schema(f"references nest deeper than {MAX_REFERENCE_DEPTH} levels (a cycle?)")
        resolved = []
        for i, ref in enumerate(references):
            version = self.version(ref.subject, ref.version, include_deleted=True)
            if version is None:
                raise invalid_schema(
                    f"references[{i}] '{ref.name}': subject '{ref.subject}' version {ref.version} not found"
                )
            target = self._schemas[version.schema_id]
            resolved.append(ResolvedReference(ref, target.schema, self.resolve(target.references, depth + 1)))
        return tuple(resolved)

    def parsed(self, schema_id: int) -> ParsedSchema:
        """The parsed schema behind an ID, parsed on first use and kept (an ID's content never changes)."""
        found = self._parsed.get(schema_id)
        if found is None:
            stored = self._schemas.get(schema_id)
            if stored is None:
                raise ApiError(404, 40403, f"Schema {schema_id} not found")
            found = self._parser(stored.format, stored.schema, self.resolve(stored.references))
            self._parsed[schema_id] = found
        return found

    def resolved_avro(self, schema_id: int) -> str:
        """An Avro schema with its references' named types inlined (Confluent's `format=resolved`)."""
        found = self._resolved.get(schema_id)
        if found is None:
            from kschema.formats import avro

            parsed = self.parsed(schema_id)
            if not isinstance(parsed, avro.AvroSchema):
                raise ApiError(422, 42201, f"Schema {schema_id} is {parsed.format}, not AVRO")
            found = avro.resolved_text(parsed)
            self._resolved[schema_id] = found
        return found

    def serialized(self, schema_id: int) -> str:
        """A Protobuf schema as a base64 `FileDescriptorProto` (Confluent's `format=serialized`)."""
        found = self._serialized.get(schema_id)
        if found is None:
            from kschema.formats import protobuf

            parsed = self.parsed(schema_id)
            if not isinstance(parsed, protobuf.ProtobufSchema):
                raise ApiError(422, 42201, f"Schema {schema_id} is {parsed.format}, not PROTOBUF")
            found = protobuf.to_serialized(parsed)
            self._serialized[schema_id] = found
        return found
