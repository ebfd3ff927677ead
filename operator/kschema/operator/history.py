"""What a registration reads of its subject's registered versions: the version already under its number,
the versions below it with their contracts, and the compatibility check against them. A batch reads the
subject's versions once (`known_versions`) and passes them along; without them, each read goes to the
store."""

from __future__ import annotations

from kschema.compat import CompatibilityLevel, CompatibilityResult
from kschema.compat.levels import LEVELS
from kschema.compute import WorkerPool, tasks
from kschema.compute.tasks import SchemaText
from kschema.contracts import Contract, group_of
from kschema.formats import InvalidSchemaError
from kschema.formats.budget import TooComplexError
from kschema.model import SchemaSpec
from kschema.operator.blocked import Blocked, blocked_by_store
from kschema.operator.references import resolve_references
from kschema.operator.schema_cache import SchemaCache
from kschema.store import (
    RegistryStore,
    StoredSchema,
    StoreError,
    SubjectRecord,
    SubjectVersion,
    VersionWithSchema,
    get_version_with_schema,
)


async def _get_schema(
    store: RegistryStore, schemas: SchemaCache | None, schema_id: int
) -> StoredSchema | None:
    return await (schemas.get(schema_id) if schemas is not None else store.get_schema(schema_id))


async def _stored_text(
    store: RegistryStore, subject: SubjectRecord, version: SubjectVersion, schemas: SchemaCache | None
) -> SchemaText:
    stored = await _get_schema(store, schemas, version.schema_id)
    if stored is None:  # the store never drops content; this is a broken store
        raise Blocked(
            "StoreError",
            f"schema id {version.schema_id} of version {version.version} is missing",
            temporary=True,
        )
    refs = await resolve_references(store, stored.references, subject.format)
    return SchemaText(subject.format, stored.schema, refs)


# A subject's versions by number, deleted ones included, as a batch registering them knows them.
Known = dict[int, SubjectVersion]


async def known_versions(store: RegistryStore, subject: str) -> Known:
    try:
        return {v.version: v for v in await store.list_versions(subject, include_deleted=True)}
    except StoreError as error:
        raise blocked_by_store(error) from error


async def existing_version(
    store: RegistryStore, subject: str, number: int, known: Known | None, schemas: SchemaCache | None
) -> VersionWithSchema | None:
    if known is None:
        return await get_version_with_schema(store, subject, number, include_deleted=True)
    found = known.get(number)
    content = None if found is None else await _get_schema(store, schemas, found.schema_id)
    return None if found is None or content is None else VersionWithSchema(found, content)


async def earlier_contracts(
    store: RegistryStore,
    subject: SubjectRecord,
    spec: SchemaSpec,
    schemas: SchemaCache | None,
    known: Known | None,
) -> list[tuple[SubjectVersion, Contract]]:
    """The registered, not deleted versions below the new one, with the contract each was registered with."""
    found = []
    if known is None:
        listed = await store.list_versions(subject.subject)
    else:
        listed = [v for _, v in sorted(known.items()) if not v.deleted]
    for v in listed:
        if v.version < spec.version:
            stored = await _get_schema(store, schemas, v.schema_id)
            found.append((v, stored.contract if stored is not None else Contract()))
    return found


async def check_against_history(
    store: RegistryStore,
    pool: WorkerPool,
    subject: SubjectRecord,
    spec: SchemaSpec,
    new: SchemaText,
    earlier_contracts: list[tuple[SubjectVersion, Contract]],
    group: str | None,
    schemas: SchemaCache | None,
) -> tuple[CompatibilityResult, tuple[int, ...]]:
    """Checks the new version against the registered, not deleted versions with lower numbers (versions
    may arrive in any order: a higher one already registered is not history for this one) that belong
    to its compatibility group."""
    level = CompatibilityLevel(subject.compatibility)
    rule = LEVELS[level]
    if not (rule.backward or rule.forward):
        return CompatibilityResult(), ()
    earlier = [v for v, c in earlier_contracts if group_of(subject.contract, c) == group]
    if not rule.transitive:
        earlier = earlier[-1:]
    history = [(version.version, await _stored_text(store, subject, version, schemas)) for version in earlier]
    try:
        result = await pool.run(tasks.check, new, spec.version, history, level)
    except InvalidSchemaError as error:  # the new version parsed already: registered by an older release
        raise Blocked("InvalidHistory", f"a registered version: {error}", temporary=False) from error
    except TooComplexError as error:
        raise Blocked("TooComplex", f"compatibility check: {error}", temporary=False) from error
    except OSError as error:
        raise Blocked("TemporaryFailure", f"compatibility check: {error}", temporary=True) from error
    return result, tuple(v.version for v in earlier)
