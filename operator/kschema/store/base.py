"""The registry store's one narrow interface, its records and its typed errors.

IDs are global, monotonic and never reused. The same schema (canonical fingerprint plus references) gets
the same ID in every subject. Nothing is ever hard-deleted: deleted versions and subjects are tombstoned,
so an ID written into a Kafka message keeps resolving for ever. Every write appends to a change feed with
a monotonic sequence number that readers (the read API's in-memory index) follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

from kschema import limits
from kschema.compat import CompatibilityLevel
from kschema.contracts import Contract, SubjectContract
from kschema.formats import Reference, SchemaFormat
from kschema.model import SchemaState

MAX_SUBJECT_LENGTH = limits.SUBJECT_NAME.max_length
MAX_SCHEMA_BYTES = limits.SCHEMA_TEXT_MAX_BYTES
MAX_CONTRACT_BYTES = 1024 * 1024
# Rows one batched read (`get_versions`, `get_schemas`) takes.
MAX_BATCH = 1000


@dataclass(frozen=True, slots=True)
class StoredSchema:
    id: int
    format: SchemaFormat
    schema: str  # the text as first registered
    canonical: str
    fingerprint: str  # of the schema and its contract: other metadata or rules are other content
    references: tuple[Reference, ...]
    contract: Contract = field(default_factory=Contract)  # the metadata and rule set it was registered with


@dataclass(frozen=True, slots=True)
class SubjectVersion:
    subject: str
    version: int
    schema_id: int
    state: SchemaState
    deleted: bool
    namespace: str
    sunset: str | None = None  # RFC 3339 date for the Sunset header of a DEPRECATED version


@dataclass(frozen=True, slots=True)
class SubjectRecord:
    subject: str
    namespace: str
    format: SchemaFormat
    compatibility: CompatibilityLevel
    deleted: bool
    description: str = ""
    # False when the Subject sets no level and `compatibility` is the cluster-wide default it inherited.
    compatibility_declared: bool = True
    # compatibilityGroup, default/override metadata and rules
    contract: SubjectContract = field(default_factory=SubjectContract)
    # The namespace the owner hands this subject to: once the owner's Subject is deleted, that namespace
    # may claim it (see `kschema.io/transfer-to`). None: no transfer declared.
    transfer_to: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change feed. `kind` is `subject`, `version` or `schema`; readers re-read the
    named row (or apply the carried record) to catch up."""

    seq: int
    kind: str
    subject: str | None
    version: int | None
    schema_id: int | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a reader needs to build its index, consistent as of `seq`."""

    seq: int
    schemas: Sequence[StoredSchema]
    subjects: Sequence[SubjectRecord]
    versions: Sequence[SubjectVersion]


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A version to register. `pinned_id` asks for that global ID (imports from another registry)."""

    subject: str
    version: int
    namespace: str
    format: SchemaFormat
    schema: str
    canonical: str
    fingerprint: str
    references: tuple[Reference, ...] = ()
    state: SchemaState = SchemaState.ACTIVE
    pinned_id: int | None = None
    sunset: str | None = None
    contract: Contract = field(
        default_factory=Contract
    )  # as registered (after the subject's defaults and overrides)


class StoreError(Exception):
    """Base of the store's typed errors. `field` names the offending input where there is one."""

    def __init__(self, message: str, field: str = "") -> None:
        self.field = field
        super().__init__(message)


class InvalidInputError(StoreError):
    """Input the store refuses (over-long subject, bad state, non-positive version...)."""


class NotFoundError(StoreError):
    pass


class SubjectOwnedElsewhereError(StoreError):
    """The subject is owned by another namespace."""


class VersionConflictError(StoreError):
    """The subject already has this version with other content (versions are immutable)."""


class IdConflictError(StoreError):
    """A pinned ID is already held by other content, or this content already has another ID."""


class FormatConflictError(StoreError):
    """The subject exists with another format."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached right now; retry later."""


class RegistryStore(Protocol):
    """The store used by the operator (writes), the webhook and the read API (reads)."""

    async def open(self) -> None:
        """Connects and applies pending migrations (safe to run twice, and by several processes)."""

    async def close(self) -> None: ...

    # Subjects ----------------------------------------------------------------------------------------
    async def upsert_subject(self, record: SubjectRecord) -> SubjectRecord:
        """Creates or updates (and undeletes) a subject. Raises `SubjectOwnedElsewhereError` when another
        namespace owns it, deleted or not (unless that namespace declared a transfer to this one and
        deleted it), and `FormatConflictError` when its format would change."""

    async def delete_subject(self, subject: str, namespace: str) -> None:
        """Soft-deletes the subject and all its versions; IDs keep resolving. Idempotent."""

    async def get_subject(self, subject: str, include_deleted: bool = False) -> SubjectRecord | None: ...

    async def list_subjects(self, include_deleted: bool = False) -> list[SubjectRecord]: ...

    # Versions ----------------------------------------------------------------------------------------
    async def register(self, new: NewVersion) -> SubjectVersion:
        """Registers one version in one transaction and returns it with its schema ID. Idempotent: the
        same content at the same subject and version returns the existing version (undeleting it and
        updating its state). Raises `VersionConflictError`, `IdConflictError`,
        `SubjectOwnedElsewhereError`, `FormatConflictError` or `InvalidInputError`, changing nothing."""

    async def set_state(
        self, subject: str, version: int, state: SchemaState, sunset: str | None = None
    ) -> None: ...

    async def delete_version(self, subject: str, version: int) -> None:
        """Soft-deletes one version; its ID keeps resolving and is never reused. Idempotent."""

    async def get_version(
        self, subject: str, version: int, include_deleted: bool = False
    ) -> SubjectVersion | None: ...

    async def list_versions(self, subject: str, include_deleted: bool = False) -> list[SubjectVersion]:
        """The subject's versions ordered by version number."""

    async def get_versions(self, keys: Sequence[tuple[str, int]]) -> list[SubjectVersion]:
        """The versions registered under `keys` (subject, version), deleted ones included, read together
        (a reader catching up on the change feed); at most `MAX_BATCH` keys."""

    # Schemas -----------------------------------------------------------------------------------------
    async def get_schema(self, schema_id: int) -> StoredSchema | None:
        """Resolves any ID ever assigned, deleted versions included."""

    async def get_schemas(self, schema_ids: Sequence[int]) -> list[StoredSchema]:
        """The schemas among `schema_ids`, read together; at most `MAX_BATCH` IDs."""

    async def find_schema(self, fingerprint: str) -> StoredSchema | None: ...

    async def versions_of_schema(
        self, schema_id: int, include_deleted: bool = False
    ) -> list[SubjectVersion]: ...

    # Change feed -------------------------------------------------------------------------------------
    async def snapshot(self) -> Snapshot: ...

    async def changes(self, after_seq: int, limit: int = 1000) -> list[Change]:
        """Changes with `seq > after_seq`, oldest first."""

    # A timeout argument rather than a caller's `asyncio.timeout`: a wait that merely ends is the normal
    # outcome here (the caller polls again), and PostgreSQL must not be cancelled mid-notification.
    async def wait_for_changes(self, after_seq: int, timeout: float) -> None:  # noqa: ASYNC109
        """Returns when a change past `after_seq` may exist, or after `timeout` seconds (PostgreSQL uses
        LISTEN/NOTIFY, SQLite polls)."""

    async def ping(self) -> None:
        """Raises `StoreUnavailableError` when the database cannot be reached."""


class VersionWithSchema(NamedTuple):
    version: SubjectVersion
    schema: StoredSchema


async def get_version_with_schema(
    store: RegistryStore, subject: str, version: int, *, include_deleted: bool = False
) -> VersionWithSchema | None:
    """A subject's version together with its schema content; None when the version is not registered
    (or, in a broken store, its content is missing)."""
    found = await store.get_version(subject, version, include_deleted=include_deleted)
    if found is None:
        return None
    content = await store.get_schema(found.schema_id)
    if content is None:
        return None
    return VersionWithSchema(found, content)


def check_text(limit: limits.TextLimit, value: str, field: str) -> None:
    """Applies one row of the table of limits (`kschema.limits`), which admission applies too."""
    try:
        limit.check(value)
    except limits.LimitError as error:
        raise InvalidInputError(f"{field} {error}", field) from None


def check_integer(limit: limits.IntegerLimit, value: int, field: str) -> None:
    try:
        limit.check(value)
    except limits.LimitError as error:
        raise InvalidInputError(f"{field} {error}", field) from None


def check_subject_name(subject: str) -> None:
    check_text(limits.SUBJECT_NAME, subject, "subject")


def check_version_number(version: int) -> None:
    check_integer(limits.VERSION, version, "version")


def check_references(references: Sequence[Reference]) -> None:
    for i, ref in enumerate(references):
        check_text(limits.REFERENCE_NAME, ref.name, f"references[{i}].name")
        check_subject_name(ref.subject)
        check_version_number(ref.version)
