"""The functions worker processes run. Arguments and results are plain values (texts, resolved
references, specs, results) that cross a pipe; parsed schemas and reader/writer verdicts stay inside the
worker, cached by content (`caches`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kschema.compat import (
    CompatibilityLevel,
    CompatibilityResult,
    VersionedSchema,
    check_compatibility,
    remembered_verdicts,
)
from kschema.compat.shared import remembered_comparisons
from kschema.compute.caches import ComparisonCache, ParseCache, VerdictCache
from kschema.formats import (
    InvalidSchemaError,
    ParsedSchema,
    ResolvedReference,
    SchemaFormat,
    ValidationIssue,
)
from kschema.formats.budget import LIMITS, work_budget
from kschema.formats.validation import validate_payload
from kschema.model import SchemaSpec, SubjectSpec
from kschema.policy import Catalog, Decision, RegistryFacts
from kschema.policy import review_schema as policy_review_schema
from kschema.policy import review_subject as policy_review_subject

__all__ = ["SchemaText", "check", "review_schema", "review_subject", "serialized", "summary", "validate"]

# What this worker keeps between tasks (see `caches`): module state, since a worker is one process that
# runs one task at a time.
PARSED = ParseCache(LIMITS.worker_parse_cache_entries, LIMITS.worker_parse_cache_bytes)
VERDICTS = VerdictCache(PARSED, LIMITS.worker_verdict_cache_entries, LIMITS.worker_verdict_cache_bytes)
COMPARISONS = ComparisonCache(LIMITS.worker_comparison_cache_entries, LIMITS.worker_comparison_cache_bytes)


@dataclass(frozen=True, slots=True)
class SchemaText:
    """A schema as it crosses into a worker: its format, text and resolved references."""

    format: SchemaFormat
    schema: str
    references: tuple[ResolvedReference, ...] = ()


def parse(fmt: SchemaFormat, text: str, refs: tuple[ResolvedReference, ...]) -> ParsedSchema:
    """`parse_schema` through the worker's cache of parsed schemas."""
    return PARSED.parse(fmt, text, refs)


def _parsed(schema: SchemaText) -> ParsedSchema:
    return parse(schema.format, schema.schema, schema.references)


def summary(schema: SchemaText) -> tuple[str, str]:
    """(canonical text, fingerprint) of a schema; raises `InvalidSchemaError`."""
    parsed = _parsed(schema)
    return parsed.canonical, parsed.fingerprint


def check(
    new: SchemaText,
    new_version: int | None,
    history: Sequence[tuple[int, SchemaText]],
    level: CompatibilityLevel,
) -> CompatibilityResult:
    """Parses `new` and its history (oldest first) and checks them under `level`, within one budget."""
    with (
        remembered_verdicts(VERDICTS),
        remembered_comparisons(COMPARISONS),
        work_budget("the compatibility check", LIMITS.check_steps, LIMITS.check_seconds),
    ):
        return check_compatibility(
            VersionedSchema(new_version, _parsed(new)),
            [VersionedSchema(version, _parsed(text)) for version, text in history],
            level,
        )


def serialized(schema: SchemaText) -> str:
    """A Protobuf schema as Confluent's `format=serialized`: a base64 `FileDescriptorProto`."""
    from kschema.formats import protobuf

    parsed = _parsed(schema)
    if not isinstance(parsed, protobuf.ProtobufSchema):
        raise InvalidSchemaError(f"the schema is {parsed.format}, not PROTOBUF")
    return protobuf.to_serialized(parsed)


def validate(schema: SchemaText, payload: Any) -> list[ValidationIssue]:
    return validate_payload(_parsed(schema), payload)


def review_schema(
    new: SchemaSpec | None, old: SchemaSpec | None, catalog: Catalog, facts: RegistryFacts | None
) -> Decision:
    """The policy's review of a Schema, with every check inside one budget: one admission, one deadline
    below the API server's webhook timeout."""
    with (
        remembered_verdicts(VERDICTS),
        remembered_comparisons(COMPARISONS),
        work_budget("the admission review", LIMITS.check_steps, LIMITS.check_seconds),
    ):
        return policy_review_schema(new, old, catalog, facts, parse=parse)


def review_subject(
    new: SubjectSpec | None, old: SubjectSpec | None, catalog: Catalog, facts: RegistryFacts | None
) -> Decision:
    with (
        remembered_verdicts(VERDICTS),
        remembered_comparisons(COMPARISONS),
        work_budget("the admission review", LIMITS.check_steps, LIMITS.check_seconds),
    ):
        return policy_review_subject(new, old, catalog, facts, parse=parse)
