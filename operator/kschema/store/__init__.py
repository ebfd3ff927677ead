"""The registry store: one narrow async interface (`RegistryStore`), SQLite and PostgreSQL backends."""

from kschema.model import SchemaState
from kschema.store.base import (
    Change,
    FormatConflictError,
    IdConflictError,
    InvalidInputError,
    NewVersion,
    NotFoundError,
    RegistryStore,
    Snapshot,
    StoredSchema,
    StoreError,
    StoreUnavailableError,
    SubjectOwnedElsewhereError,
    SubjectRecord,
    SubjectVersion,
    VersionConflictError,
    VersionWithSchema,
    get_version_with_schema,
)

__all__ = [
    "Change",
    "FormatConflictError",
    "IdConflictError",
    "InvalidInputError",
    "NewVersion",
    "NotFoundError",
    "RegistryStore",
    "SchemaState",
    "Snapshot",
    "StoreError",
    "StoreUnavailableError",
    "StoredSchema",
    "SubjectOwnedElsewhereError",
    "SubjectRecord",
    "SubjectVersion",
    "VersionConflictError",
    "VersionWithSchema",
    "get_version_with_schema",
]
