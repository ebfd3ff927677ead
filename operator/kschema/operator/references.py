"""A version's references resolved against the store, by the core resolver's rules."""

from __future__ import annotations

from collections.abc import Sequence

from kschema.formats import Reference, ResolvedReference, SchemaFormat
from kschema.formats.budget import TooComplexError
from kschema.formats.resolver import (
    ReferenceTarget,
    Unresolvable,
    UnresolvableKind,
    missing_references,
)
from kschema.formats.resolver import resolve_references as resolve_references_in_core
from kschema.operator.blocked import Blocked, blocked_by_store
from kschema.store import RegistryStore, StoreError, get_version_with_schema


async def resolve_references(
    store: RegistryStore, references: Sequence[Reference], fmt: SchemaFormat
) -> tuple[ResolvedReference, ...]:
    """Each reference with its registered text, recursively, by the core resolver's rules. The closure
    is fetched from the store first. A reference to a version that is not registered yet is temporary:
    versions and their references may be applied in any order."""
    known: dict[tuple[str, int], ReferenceTarget] = {}
    fetched: set[tuple[str, int]] = set()

    def lookup(subject: str, version: int) -> ReferenceTarget | None:
        return known.get((subject, version))

    try:
        while wanted := missing_references(references, lookup) - fetched:
            for subject, number in sorted(wanted):
                fetched.add((subject, number))
                # Deleted versions still resolve: their content is immutable and their IDs stay readable.
                found = await get_version_with_schema(store, subject, number, include_deleted=True)
                if found is not None:
                    version, content = found
                    known[(subject, number)] = ReferenceTarget(
                        content.format, content.schema, content.references, version.deleted
                    )
        return resolve_references_in_core(references, fmt, lookup).references
    except StoreError as error:
        raise blocked_by_store(error) from error
    except TooComplexError as error:
        raise Blocked("TooComplex", f"spec.references: {error}", temporary=False) from error
    except Unresolvable as error:
        where = f"spec.references[{error.index_in(references)}]"
        if error.kind is UnresolvableKind.MISSING:
            raise Blocked(
                "ReferenceNotFound", f"{where}: {error.reason}: not registered yet", temporary=True
            ) from error
        raise Blocked("InvalidReference", f"{where}: {error.reason}", temporary=False) from error
