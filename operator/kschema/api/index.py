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

import time
import uuid
from collections.abc import Callable, Sequence

from kschema.api.bodies import compact_json, guid_bytes, id_body, schema_guid, schema_json, served_text
from kschema.api.bodies import version_body as render_version_body
from kschema.api.errors import ApiError, invalid_schema
from kschema.compute.tasks import SchemaText
from kschema.contracts import Contract, contract_fingerprint
from kschema.contracts.conditions import ConditionSet
from kschema.formats import ParsedSchema, Reference, ResolvedReference, SchemaFormat, parse_schema
from kschema.formats.budget import TooComplexError
from kschema.formats.resolver import ReferenceTarget, Unresolvable, resolve_references
from kschema.model import SchemaState
from kschema.store import Snapshot, StoredSchema, SubjectRecord, SubjectVersion

# The renderers lived here first; tests and callers still import them from the index.
__all__ = ["Parser", "RegistryIndex", "compact_json", "schema_guid", "schema_json", "served_text"]

Parser = Callable[[SchemaFormat, str, tuple[ResolvedReference, ...]], ParsedSchema]


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
        # The exact `GET /schemas/ids/{id}` response per ID, rendered on first request.
        self._bodies: dict[int, bytes] = {}
        # GUID (its 16 bytes) -> ID, for every schema.
        self._guids: dict[bytes, int] = {}
        self._subjects: dict[str, SubjectRecord] = {}
        self._versions: dict[str, dict[int, SubjectVersion]] = {}
        # Every subject with a version, sorted; rebuilt after a subject appears (names never go).
        self._names: list[str] | None = None
        # The versions using each ID: one version (by far the most common) or a list of them.
        self._uses: dict[int, SubjectVersion | list[SubjectVersion]] = {}
        # Per subject: its latest live version (None: it has none), and the last `GET
        # /subjects/{s}/versions/{v}` body rendered for it, with the version it was rendered for.
        self._latest: dict[str, SubjectVersion | None] = {}
        self._rendered: dict[str, tuple[SubjectVersion, bytes]] = {}
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
        self._latest, self._rendered = {}, {}
        self._names = None
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
            self._rendered.clear()
            for ref in old.references:
                self._referrers.get((ref.subject, ref.version), set()).discard(schema.id)
        self._add_schema(schema)

    def put_subject(self, record: SubjectRecord) -> None:
        self._subjects[record.subject] = record
        self._latest.pop(record.subject, None)

    def put_version(self, version: SubjectVersion) -> None:
        key = (version.subject, version.version)
        if version.subject not in self._versions:
            self._names = None
        versions = self._versions.setdefault(version.subject, {})
        old = versions.get(version.version)
        if old is None:
            self.version_count += 1
        else:
            self._drop_use(old)
        versions[version.version] = version
        self._latest.pop(version.subject, None)
        users = self._uses.get(version.schema_id)
        if users is None:
            self._uses[version.schema_id] = version
        elif isinstance(users, list):
            users.append(version)
        else:
            self._uses[version.schema_id] = [users, version]
        if version.state is SchemaState.DEPRECATED:
            self._deprecated_since.setdefault(key, self._clock())
        else:
            self._deprecated_since.pop(key, None)

    def _drop_use(self, old: SubjectVersion) -> None:
        users = self._uses.get(old.schema_id)
        if users is old:
            del self._uses[old.schema_id]
        elif isinstance(users, list):
            users[:] = [v for v in users if (v.subject, v.version) != (old.subject, old.version)]
            if len(users) == 1:
                self._uses[old.schema_id] = users[0]

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
        self._guids[guid_bytes(schema.fingerprint)] = schema.id
        self._bodies.pop(schema.id, None)
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
        body = self._bodies.get(schema_id)
        if body is None:
            stored = self._schemas.get(schema_id)
            if stored is None:
                return None
            body = self._bodies[schema_id] = id_body(stored)
        return body

    def id_for_guid(self, guid: str) -> int | None:
        try:
            key = uuid.UUID(guid).bytes
        except ValueError:
            return None
        if str(uuid.UUID(bytes=key)) != guid.lower():
            return None  # only the canonical form, as the index has always matched
        return self._guids.get(key)

    def uses(self, schema_id: int, include_deleted: bool) -> list[SubjectVersion]:
        """The subject versions that use an ID, by subject then version."""
        users = self._uses.get(schema_id)
        every = [] if users is None else users if isinstance(users, list) else [users]
        found = [v for v in every if self._listed(v, include_deleted)]
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

    def subject_names(self) -> list[str]:
        """Every subject with a version in the index, whatever their state, sorted. The same list
        until a subject appears: callers must not change it."""
        if self._names is None:
            self._names = sorted(self._versions)
        return self._names

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
        """The highest version that may be served as latest: never DRAFT or ARCHIVED. The live one is
        kept per subject until the subject or one of its versions changes."""
        if include_deleted:
            return self._find_latest(subject, include_deleted=True)
        try:
            return self._latest[subject]
        except KeyError:
            found = self._latest[subject] = self._find_latest(subject, include_deleted=False)
            return found

    def _find_latest(self, subject: str, include_deleted: bool) -> SubjectVersion | None:
        best: SubjectVersion | None = None
        for v in self._versions.get(subject, {}).values():
            if v.state in (SchemaState.DRAFT, SchemaState.ARCHIVED):
                continue
            if self._deleted(v) and not include_deleted:
                continue
            if best is None or v.version > best.version:
                best = v
        return best

    def version_body(self, version: SubjectVersion) -> bytes:
        """The exact `GET /subjects/{s}/versions/{v}` body (no query options) of a version in the index.
        The last one rendered per subject is kept: serializers ask for `latest` over and over."""
        kept = self._rendered.get(version.subject)
        if kept is not None and kept[0] is version:
            return kept[1]
        body = self.listed_body(version)
        self._rendered[version.subject] = (version, body)
        return body

    def listed_body(self, version: SubjectVersion) -> bytes:
        """A version's body as `version_body` renders it, without keeping it as its subject's last one
        (a listing must not push the serializers' `latest` out)."""
        kept = self._rendered.get(version.subject)
        if kept is not None and kept[0] is version:
            return kept[1]
        rendered = self.schema_body(version.schema_id)
        assert rendered is not None  # the index never holds a version without its schema
        return render_version_body(version, rendered)

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
    def resolve(self, references: Sequence[Reference], fmt: SchemaFormat) -> tuple[ResolvedReference, ...]:
        """Resolves references against the index with the core resolver (deleted versions included:
        data written with them must stay readable). Raises a 42201 error naming the failing reference."""
        try:
            return resolve_references(references, fmt, self._reference_target).references
        except Unresolvable as exc:
            raise invalid_schema(f"references[{exc.index_in(references)}]: {exc.reason}") from None
        except TooComplexError as exc:
            raise invalid_schema(str(exc)) from None

    def _reference_target(self, subject: str, number: int) -> ReferenceTarget | None:
        version = self.version(subject, number, include_deleted=True)
        if version is None:
            return None
        target = self._schemas[version.schema_id]
        return ReferenceTarget(target.format, target.schema, target.references, self._deleted(version))

    def schema_text(self, schema_id: int) -> SchemaText:
        """What a worker needs to parse the schema behind an ID."""
        stored = self._schemas.get(schema_id)
        if stored is None:
            raise ApiError(404, 40403, f"Schema {schema_id} not found")
        return SchemaText(stored.format, stored.schema, self.resolve(stored.references, stored.format))

    def parsed(self, schema_id: int) -> ParsedSchema:
        """The parsed schema behind an ID, parsed on first use and kept (an ID's content never changes)."""
        found = self._parsed.get(schema_id)
        if found is None:
            stored = self._schemas.get(schema_id)
            if stored is None:
                raise ApiError(404, 40403, f"Schema {schema_id} not found")
            found = self._parser(stored.format, stored.schema, self.resolve(stored.references, stored.format))
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

    def cached_serialized(self, schema_id: int) -> str | None:
        """A Protobuf schema's base64 `FileDescriptorProto` (Confluent's `format=serialized`), once a
        worker has rendered it (`remember_serialized`)."""
        return self._serialized.get(schema_id)

    def remember_serialized(self, schema_id: int, serialized: str) -> None:
        self._serialized[schema_id] = serialized
