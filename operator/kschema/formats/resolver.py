"""The one reference resolver: admission policy, operator and read API all resolve `references` here,
each from its own view of the registry (declared resources plus store facts, the store itself, the read
API's index) handed in as a `lookup` function.

The rules, the same for every caller:

* a reference resolves to the referenced subject version's text and, recursively, its own references;
* the referenced version must have the same format as the schema that refers to it;
* soft-deleted versions resolve (their content is immutable and data written with them must stay
  readable); the caller learns which ones were deleted, to warn about them;
* references nest at most `LIMITS.reference_depth` levels and pull in at most `LIMITS.reference_count`
  distinct versions; a subject version reached along several paths is resolved once and shared, so a
  diamond or a DAG of references costs its size, not its number of paths.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from kschema.formats.base import Reference, ResolvedReference, SchemaFormat
from kschema.formats.budget import LIMITS, TooComplexError

__all__ = [
    "Lookup",
    "ReferenceTarget",
    "Resolution",
    "Unresolvable",
    "UnresolvableKind",
    "missing_references",
    "resolve_references",
]


@dataclass(frozen=True, slots=True)
class ReferenceTarget:
    """What a lookup finds for (subject, version)."""

    format: SchemaFormat
    schema: str
    references: tuple[Reference, ...] = ()
    deleted: bool = False


Lookup = Callable[[str, int], ReferenceTarget | None]


class UnresolvableKind(enum.StrEnum):
    MISSING = "missing"  # no such version (yet): callers may wait for it
    FORMAT = "format"  # the version exists with another format
    CYCLE = "cycle"  # a version refers back to itself


class Unresolvable(Exception):
    """A reference that cannot be resolved. `path` is the chain of references from the schema to the
    failing one (the first element is the schema's own reference); `reason` is a full sentence."""

    def __init__(self, kind: UnresolvableKind, path: tuple[Reference, ...], reason: str) -> None:
        self.kind = kind
        self.path = path
        self.reason = reason
        super().__init__(reason)

    @property
    def reference(self) -> Reference:
        return self.path[-1]

    def index_in(self, references: Sequence[Reference]) -> int:
        """Which of the schema's own `references` the failing chain starts from."""
        return list(references).index(self.path[0])

    def __reduce__(self) -> tuple[type[Unresolvable], tuple[UnresolvableKind, tuple[Reference, ...], str]]:
        return type(self), (self.kind, self.path, self.reason)


@dataclass(frozen=True, slots=True)
class Resolution:
    references: tuple[ResolvedReference, ...]
    deleted: tuple[tuple[str, int], ...] = field(default=())  # deleted versions that were used


def _label(ref: Reference) -> str:
    return f'reference "{ref.name}" (subject "{ref.subject}" version {ref.version})'


def resolve_references(
    references: Sequence[Reference],
    fmt: SchemaFormat,
    lookup: Lookup,
    *,
    max_depth: int = LIMITS.reference_depth,
    max_count: int = LIMITS.reference_count,
) -> Resolution:
    """Resolves `references` of a `fmt` schema. Raises `Unresolvable` or, past the limits,
    `TooComplexError`."""
    done: dict[tuple[str, int], tuple[ResolvedReference, ...]] = {}
    deleted: list[tuple[str, int]] = []

    def nested(refs: Sequence[Reference], path: tuple[Reference, ...]) -> tuple[ResolvedReference, ...]:
        if len(path) > max_depth:
            raise TooComplexError(f"references nest deeper than {max_depth} levels")
        resolved = []
        for ref in refs:
            here = (*path, ref)
            key = (ref.subject, ref.version)
            if any((p.subject, p.version) == key for p in path):
                raise Unresolvable(
                    UnresolvableKind.CYCLE, here, f"{_label(ref)} refers back to itself (a reference cycle)"
                )
            target = lookup(ref.subject, ref.version)
            if target is None:
                raise Unresolvable(UnresolvableKind.MISSING, here, f"{_label(ref)} does not exist")
            if target.format is not fmt:
                raise Unresolvable(
                    UnresolvableKind.FORMAT,
                    here,
                    f"{_label(ref)} points at a {target.format} schema; "
                    f"a {fmt} schema can only refer to {fmt} schemas",
                )
            inner = done.get(key)
            if inner is None:
                if len(done) >= max_count:
                    raise TooComplexError(f"the schema pulls in more than {max_count} referenced versions")
                if target.deleted:
                    deleted.append(key)
                inner = done[key] = nested(target.references, here)
            resolved.append(ResolvedReference(ref, target.schema, inner))
        return tuple(resolved)

    return Resolution(nested(references, ()), tuple(deleted))


def missing_references(references: Iterable[Reference], lookup: Lookup) -> set[tuple[str, int]]:
    """The (subject, version) pairs reachable from `references` that `lookup` does not find: what a
    caller with an asynchronous source (the store) fetches before it resolves. Call it again after adding
    what was fetched, until it returns nothing new."""
    missing: set[tuple[str, int]] = set()
    seen: set[tuple[str, int]] = set()
    todo = list(references)
    while todo:
        ref = todo.pop()
        key = (ref.subject, ref.version)
        if key in seen:
            continue
        seen.add(key)
        if len(seen) > LIMITS.reference_count:
            raise TooComplexError(
                f"the schema pulls in more than {LIMITS.reference_count} referenced versions"
            )
        target = lookup(*key)
        if target is None:
            missing.add(key)
        else:
            todo.extend(target.references)
    return missing
