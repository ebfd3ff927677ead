"""Reads what the registry store knows about the names one admission touches, as `RegistryFacts`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from kschema.formats import Reference
from kschema.policy import (
    Catalog,
    RegisteredSchema,
    RegisteredSubject,
    RegisteredVersion,
    RegistryFacts,
    missing_registry_references,
)
from kschema.store.base import RegistryStore, StoreError, get_version_with_schema

log = logging.getLogger(__name__)


async def gather_facts(
    store: RegistryStore | None,
    catalog: Catalog,
    *,
    subjects: Iterable[str] = (),
    versions: Iterable[tuple[str, int]] = (),
    references: Iterable[Reference] = (),
    pinned_ids: Iterable[int] = (),
    limit_seconds: float = 2.0,
) -> RegistryFacts:
    """Fetches subject records, versions (tombstoned ones too), the reference closure not declared in
    the cluster, and the holders of pinned IDs. A store that fails or is slow gives facts marked
    `unavailable`, and the policy then skips store checks with a warning."""
    facts = RegistryFacts(configured=store is not None)
    if store is None:
        return facts
    try:
        async with asyncio.timeout(limit_seconds):
            await _fill(
                store, catalog, facts, set(subjects), set(versions), list(references), set(pinned_ids)
            )
    except (StoreError, TimeoutError) as exc:
        reason = str(exc) or "timed out"
        log.warning("Could not read the registry store: error=%s", reason)
        facts.unavailable = reason
    return facts


async def _version(
    store: RegistryStore, subject: str, number: int, *, include_deleted: bool
) -> RegisteredVersion | None:
    found = await get_version_with_schema(store, subject, number, include_deleted=include_deleted)
    if found is None:
        return None
    version, content = found
    return RegisteredVersion(
        subject=subject,
        version=number,
        schema_id=version.schema_id,
        format=content.format,
        schema=content.schema,
        fingerprint=content.fingerprint,
        references=content.references,
        deleted=version.deleted,
    )


async def _fill(
    store: RegistryStore,
    catalog: Catalog,
    facts: RegistryFacts,
    subjects: set[str],
    versions: set[tuple[str, int]],
    references: list[Reference],
    pinned_ids: set[int],
) -> None:
    for name in subjects:
        record = await store.get_subject(name, include_deleted=True)
        if record is not None:
            facts.subjects[name] = RegisteredSubject(
                record.subject, record.namespace, record.format, record.deleted, record.transfer_to
            )
    for subject, number in versions:
        found = await _version(store, subject, number, include_deleted=True)
        if found is not None:
            facts.versions[(subject, number)] = found
    # References: fetch what neither the cluster nor the facts hold yet, then follow what was fetched.
    tried: set[tuple[str, int]] = set()
    while True:
        wanted = missing_registry_references(references, catalog, facts) - tried
        if not wanted:
            break
        for subject, number in wanted:
            tried.add((subject, number))
            # Deleted versions resolve (the core resolver's rule): their content never changes.
            found = await _version(store, subject, number, include_deleted=True)
            if found is not None:
                facts.versions[(subject, number)] = found
    for schema_id in pinned_ids:
        content = await store.get_schema(schema_id)
        if content is not None:
            holders = await store.versions_of_schema(schema_id, include_deleted=True)
            facts.schemas[schema_id] = RegisteredSchema(
                schema_id, content.format, content.fingerprint, tuple((v.subject, v.version) for v in holders)
            )
