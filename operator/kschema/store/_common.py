"""Validation and the registration rules shared by the SQLite and PostgreSQL backends.

The backends differ only in how they talk to their database; every decision about IDs, ownership and
immutability is made here, from rows the backend has read inside its write transaction, so both
backends refuse and accept exactly the same things.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any, TypeVar

from kschema import limits
from kschema.compat import CompatibilityLevel
from kschema.contracts import Contract, ContractError, SubjectContract, contract_from_json
from kschema.formats import Reference, SchemaFormat
from kschema.model import TRANSFER_ANNOTATION, SchemaState, subject_contract_from_spec
from kschema.store.base import (
    MAX_BATCH,
    MAX_CONTRACT_BYTES,
    MAX_SCHEMA_BYTES,
    FormatConflictError,
    IdConflictError,
    InvalidInputError,
    NewVersion,
    NotFoundError,
    StoredSchema,
    StoreError,
    SubjectOwnedElsewhereError,
    SubjectRecord,
    SubjectVersion,
    VersionConflictError,
    check_integer,
    check_references,
    check_subject_name,
    check_text,
    check_version_number,
)

E = TypeVar("E", bound=StrEnum)


Found = TypeVar("Found", SubjectRecord, SubjectVersion)

# From the one table of limits that admission uses too (see `kschema.limits`).
MAX_SCHEMA_ID = limits.SCHEMA_ID.maximum
MAX_VERSION = limits.VERSION.maximum
MAX_NAMESPACE_LENGTH = limits.NAMESPACE_NAME.max_length
MAX_FINGERPRINT_LENGTH = 256

# Kinds of change-feed entries (see `Change.kind`).
KIND_SUBJECT = "subject"
KIND_VERSION = "version"
KIND_SCHEMA = "schema"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """The versioned SQL files of one backend (`kschema/store/migrations/<backend>/NNNN_name.sql`)."""
    folder = resources.files("kschema.store").joinpath("migrations", backend)
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, rest = entry.name.partition("_")
        if not number.isdigit():
            raise StoreError(f"migration file {entry.name!r} does not start with a number", "migrations")
        found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StoreError(f"duplicate migration numbers for {backend}: {versions}", "migrations")
    return found


def pending_migrations(applied: set[int], migrations: list[Migration]) -> list[Migration]:
    """The migrations still to apply, in order; refuses a database that a newer release migrated."""
    newest_known = max((m.version for m in migrations), default=0)
    if applied and max(applied) > newest_known:
        raise StoreError(
            f"the database has migration {max(applied)} but this release knows only up to {newest_known}; "
            "refusing to run an older release against a newer database",
            "migrations",
        )
    return [m for m in migrations if m.version not in applied]


# Validation ---------------------------------------------------------------------------------------------


def _check_namespace(namespace: object, field: str = "namespace") -> str:
    if not isinstance(namespace, str) or not namespace or len(namespace) > MAX_NAMESPACE_LENGTH:
        raise InvalidInputError(
            f"{field} must be 1 to {MAX_NAMESPACE_LENGTH} characters, got {namespace!r}", field
        )
    return namespace


def _check_int(value: object, field: str) -> int:
    # bool is an int subclass; `version=True` is a caller bug, not version 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInputError(f"{field} must be an integer, got {value!r}", field)
    return value


def _enum_value(enum_type: type[E], value: object, field: str) -> E:
    # Enum members are str instances (StrEnum); anything that is not one of the names is refused.
    if isinstance(value, str):
        try:
            return enum_type(value)
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in enum_type)
    raise InvalidInputError(f"{field} must be one of {allowed}, got {value!r}", field)


def check_format(value: object) -> SchemaFormat:
    return _enum_value(SchemaFormat, value, "format")


def check_state(value: object) -> SchemaState:
    return _enum_value(SchemaState, value, "state")


def check_compatibility(value: object) -> CompatibilityLevel:
    return _enum_value(CompatibilityLevel, value, "compatibility")


def check_sunset(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and limits.valid_sunset(value):
        return value
    raise InvalidInputError(f"sunset must be an RFC 3339 date or date-time, got {value!r}", "sunset")


def check_subject(subject: object) -> str:
    if not isinstance(subject, str):
        raise InvalidInputError(f"subject must be a string, got {subject!r}", "subject")
    check_subject_name(subject)
    return subject


def check_version(version: object) -> int:
    number = _check_int(version, "version")
    check_version_number(number)
    return number


def check_state_change(
    subject: object, version: object, state: object, sunset: object
) -> tuple[SchemaState, str | None]:
    """Checks the arguments of `set_state`; returns the state and sunset normalised."""
    check_subject(subject)
    check_version(version)
    return check_state(state), check_sunset(sunset)


def check_limit(limit: int) -> None:
    if limit < 1:
        raise InvalidInputError(f"limit must be >= 1, got {limit}", "limit")


def batch_keys(keys: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """The (subject, version) keys of a batched read that could be registered (others find nothing)."""
    check_batch("keys", len(keys))
    return [(s, v) for s, v in keys if isinstance(s, str) and could_exist(v, MAX_VERSION)]


def batch_ids(schema_ids: Sequence[int]) -> list[int]:
    """The schema IDs of a batched read that could be assigned, without repeats."""
    check_batch("schema_ids", len(schema_ids))
    return list(dict.fromkeys(i for i in schema_ids if could_exist(i, MAX_SCHEMA_ID)))


def check_batch(field: str, count: int) -> None:
    if count > MAX_BATCH:
        raise InvalidInputError(f"{field}: at most {MAX_BATCH} in one read, got {count}", field)


def could_exist(number: object, limit: int) -> bool:
    """Whether a looked-up ID or version is a positive integer that the database could hold; lookups of
    anything else find nothing instead of failing in the driver."""
    return isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= limit


def validate_new_version(new: NewVersion) -> NewVersion:
    """Checks every field and returns the version with its enums normalised; raises `InvalidInputError`
    naming the field before the database is touched."""
    check_subject(new.subject)
    check_version(new.version)
    _check_namespace(new.namespace)
    fmt = check_format(new.format)
    state = check_state(new.state)
    sunset = check_sunset(new.sunset)
    if not isinstance(new.schema, str) or not new.schema:
        raise InvalidInputError("schema must be a non-empty string", "schema")
    for field in ("schema", "canonical", "fingerprint", "namespace"):
        # PostgreSQL text cannot hold NUL; refuse it in both backends so they accept the same input.
        if "\x00" in str(getattr(new, field)):
            raise InvalidInputError(f"{field} must not contain NUL characters", field)
    check_text(limits.SCHEMA_TEXT, new.schema, "schema")
    size = len(new.schema.encode("utf-8"))
    if size > MAX_SCHEMA_BYTES:
        raise InvalidInputError(f"schema is {size} bytes, the limit is {MAX_SCHEMA_BYTES}", "schema")
    if not isinstance(new.canonical, str) or not new.canonical:
        raise InvalidInputError("canonical must be a non-empty string", "canonical")
    if (
        not isinstance(new.fingerprint, str)
        or not new.fingerprint
        or len(new.fingerprint) > MAX_FINGERPRINT_LENGTH
    ):
        raise InvalidInputError(
            f"fingerprint must be 1 to {MAX_FINGERPRINT_LENGTH} characters", "fingerprint"
        )
    check_references(new.references)
    _check_contract_size(encode_contract(new.contract), "contract")
    if new.pinned_id is not None:
        check_integer(limits.SCHEMA_ID, _check_int(new.pinned_id, "pinned_id"), "pinned_id")
    return NewVersion(
        subject=new.subject,
        version=new.version,
        namespace=new.namespace,
        format=fmt,
        schema=new.schema,
        canonical=new.canonical,
        fingerprint=new.fingerprint,
        references=tuple(new.references),
        state=state,
        pinned_id=new.pinned_id,
        sunset=sunset,
        contract=new.contract,
    )


def validate_subject_record(record: SubjectRecord) -> SubjectRecord:
    check_subject(record.subject)
    _check_namespace(record.namespace)
    if not isinstance(record.description, str):
        raise InvalidInputError("description must be a string", "description")
    check_text(limits.DESCRIPTION, record.description, "description")
    if record.transfer_to is not None:
        _check_namespace(record.transfer_to, "transfer_to")
    return SubjectRecord(
        subject=record.subject,
        namespace=record.namespace,
        format=check_format(record.format),
        compatibility=check_compatibility(record.compatibility),
        deleted=False,
        description=record.description,
        compatibility_declared=bool(record.compatibility_declared),
        contract=_checked_subject_contract(record.contract),
        transfer_to=record.transfer_to,
    )


def check_namespace(namespace: object) -> str:
    return _check_namespace(namespace)


def _check_contract_size(text: str, field: str) -> None:
    size = len(text.encode("utf-8"))
    if size > MAX_CONTRACT_BYTES:
        raise InvalidInputError(f"{field} is {size} bytes, the limit is {MAX_CONTRACT_BYTES}", field)
    if "\x00" in text:
        raise InvalidInputError(f"{field} must not contain NUL characters", field)


def _checked_subject_contract(config: SubjectContract) -> SubjectContract:
    _check_contract_size(encode_subject_contract(config), "contract")
    return config


# Encoding ---------------------------------------------------------------------------------------------


def encode_contract(contract: Contract) -> str:
    return json.dumps(contract.to_json(), sort_keys=True)


def decode_contract(text: str) -> Contract:
    try:
        return contract_from_json(json.loads(text or "{}"))
    except (ContractError, json.JSONDecodeError) as exc:
        raise StoreError(f"a stored contract cannot be read: {exc}", "contract") from None


def encode_subject_contract(config: SubjectContract) -> str:
    return json.dumps(config.to_json(), sort_keys=True)


def decode_subject_contract(text: str) -> SubjectContract:
    try:
        return subject_contract_from_spec(json.loads(text or "{}"))
    except (ValueError, TypeError) as exc:
        raise StoreError(f"a stored subject contract cannot be read: {exc}", "contract") from None


def encode_references(references: tuple[Reference, ...]) -> str:
    return json.dumps([{"name": r.name, "subject": r.subject, "version": r.version} for r in references])


def decode_references(text: str) -> tuple[Reference, ...]:
    return tuple(Reference(r["name"], r["subject"], r["version"]) for r in json.loads(text))


# Rows -------------------------------------------------------------------------------------------------

# Column lists shared by both backends, in the order the `*_from_row` functions read them.
SCHEMA_COLUMNS = "id, format, schema_text, canonical, fingerprint, refs, contract"
SUBJECT_COLUMNS = (
    "subject, namespace, format, compatibility, deleted, description, compatibility_declared, contract, "
    "transfer_to"
)
VERSION_COLUMNS = "subject, version, schema_id, state, deleted, namespace, sunset"


def schema_from_row(row: Any) -> StoredSchema:
    return StoredSchema(
        id=row[0],
        format=SchemaFormat(row[1]),
        schema=row[2],
        canonical=row[3],
        fingerprint=row[4],
        references=decode_references(row[5]),
        contract=decode_contract(row[6]),
    )


def subject_from_row(row: Any) -> SubjectRecord:
    return SubjectRecord(
        subject=row[0],
        namespace=row[1],
        format=SchemaFormat(row[2]),
        compatibility=CompatibilityLevel(row[3]),
        deleted=bool(row[4]),
        description=row[5],
        compatibility_declared=bool(row[6]),
        contract=decode_subject_contract(row[7]),
        transfer_to=row[8],
    )


def version_from_row(row: Any) -> SubjectVersion:
    return SubjectVersion(
        subject=row[0],
        version=row[1],
        schema_id=row[2],
        state=SchemaState(row[3]),
        deleted=bool(row[4]),
        namespace=row[5],
        sunset=row[6],
    )


# Decisions --------------------------------------------------------------------------------------------


def visible(found: Found | None, include_deleted: bool) -> Found | None:
    """A looked-up subject or version, or None when it is a tombstone and tombstones were not asked for."""
    if found is None or (found.deleted and not include_deleted):
        return None
    return found


def may_claim(existing: SubjectRecord, namespace: str) -> bool:
    """A subject belongs to the namespace that declared it first, also after it was deleted (its
    versions and IDs stay in the registry). It moves to another namespace only when its owner declared a
    transfer to that namespace and then deleted its Subject."""
    if existing.namespace == namespace:
        return True
    return existing.deleted and existing.transfer_to == namespace


def owned_elsewhere_message(existing: SubjectRecord) -> str:
    message = f"subject {existing.subject!r} is owned by namespace {existing.namespace!r}"
    if existing.deleted:
        message += (
            " (it was deleted, and a deleted subject stays owned by its namespace; that namespace can hand "
            f"it over with the annotation {TRANSFER_ANNOTATION} on its Subject)"
        )
    return message


def check_subject_owner(existing: SubjectRecord, namespace: str) -> None:
    if not may_claim(existing, namespace):
        raise SubjectOwnedElsewhereError(owned_elsewhere_message(existing), "subject")


def transfer_after_claim(existing: SubjectRecord, namespace: str) -> str | None:
    """The declared transfer that stays on a subject `namespace` writes: the owner's own one; a
    transfer is used up when the receiving namespace takes the subject."""
    return existing.transfer_to if existing.namespace == namespace else None


def check_subject_claim(existing: SubjectRecord | None, namespace: str, fmt: SchemaFormat) -> None:
    """The subject must belong to `namespace` (see `may_claim`). The format never changes, deleted or
    not, because tombstoned versions keep that format."""
    if existing is None:
        return
    check_subject_owner(existing, namespace)
    if existing.format != fmt:
        raise FormatConflictError(
            f"subject {existing.subject!r} has format {existing.format.value}, not {fmt.value}", "format"
        )


def check_existing_version(new: NewVersion, existing: SubjectVersion, content: StoredSchema | None) -> None:
    """Versions are immutable: the same subject and version must carry the same schema."""
    if content is None or content.id != existing.schema_id:
        raise VersionConflictError(
            f"subject {new.subject!r} version {new.version} is already registered with other content "
            f"(schema ID {existing.schema_id})",
            "version",
        )
    if new.pinned_id is not None and new.pinned_id != existing.schema_id:
        raise IdConflictError(
            f"subject {new.subject!r} version {new.version} already has schema ID {existing.schema_id}, "
            f"not the pinned ID {new.pinned_id}",
            "pinned_id",
        )


def resolve_pinned_id(new: NewVersion, content: StoredSchema | None, holder: StoredSchema | None) -> bool:
    """Decides a pinned ID. Returns True when the schema row must be inserted with that ID, False when the
    content already holds it. Raises `IdConflictError` when the ID is held by other content or the content
    already has another ID (one content, one ID)."""
    assert new.pinned_id is not None
    if holder is not None:
        if content is not None and content.id == holder.id:
            return False
        raise IdConflictError(
            f"schema ID {new.pinned_id} is already assigned to other content "
            f"(fingerprint {holder.fingerprint})",
            "pinned_id",
        )
    if content is not None:
        raise IdConflictError(
            f"this schema already has ID {content.id}; it cannot also take the pinned ID {new.pinned_id}",
            "pinned_id",
        )
    return True


# The allocator's next ID: the one after its sequence when free, else the first free ID above it (the end
# of the run of taken IDs that starts there). Pinned IDs are taken IDs like any other; they never move the
# sequence. One parameter, the sequence + 1 (`?` for SQLite; PostgreSQL replaces it with `$1`).
NEXT_FREE_ID_SQL = (
    "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM schemas WHERE id = {p}) THEN {p} "
    "ELSE (SELECT min(a.id) + 1 FROM schemas a WHERE a.id >= {p} "
    "AND NOT EXISTS (SELECT 1 FROM schemas b WHERE b.id = a.id + 1)) END"
)


def allocated_id(candidate: int) -> int:
    """The allocator's next free ID, refused when it is past the Confluent ID range."""
    if candidate > MAX_SCHEMA_ID:
        raise StoreError(
            f"the schema ID space is exhausted: every ID the allocator could hand out up to {MAX_SCHEMA_ID} "
            "is taken",
            "id",
        )
    return candidate


def choose_schema_id(
    new: NewVersion,
    existing: SubjectVersion | None,
    content: StoredSchema | None,
    holder: StoredSchema | None,
) -> tuple[int | None, bool]:
    """The schema ID a registration gets, and whether a schema row with that ID must be inserted; None
    for the ID means "a new one from the allocator" (the backend takes it from its sequence, skipping
    taken IDs). `existing` is the subject's row for this version, `content` the schema with the same
    fingerprint and format, `holder` the schema holding the pinned ID (None without a pin)."""
    if existing is not None:
        check_existing_version(new, existing, content)
        return existing.schema_id, False
    if new.pinned_id is not None:
        return new.pinned_id, resolve_pinned_id(new, content, holder)
    if content is not None:
        return content.id, False
    return None, True


def registered_version(new: NewVersion, schema_id: int) -> SubjectVersion:
    """The version row a registration leaves behind."""
    return SubjectVersion(
        subject=new.subject,
        version=new.version,
        schema_id=schema_id,
        state=new.state,
        deleted=False,
        namespace=new.namespace,
        sunset=new.sunset,
    )


def require_version(found: SubjectVersion | None, subject: str, version: int) -> SubjectVersion:
    """The version a state change is about; one that was never registered is not found."""
    if found is None:
        raise NotFoundError(f"subject {subject!r} has no version {version}", "version")
    return found
