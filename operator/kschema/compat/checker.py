"""Applies the level table to a new schema and its history, dispatching the reader/writer check to the
rules of the schema's format."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kschema.compat.levels import LEVELS, CompatibilityLevel
from kschema.compat.result import CompatibilityResult, Incompatibility, Issue
from kschema.formats import ParsedSchema, SchemaFormat
from kschema.formats.budget import LIMITS, work_budget

ReaderWriterRules = Callable[[ParsedSchema, ParsedSchema], list[Issue]]


@dataclass(frozen=True, slots=True)
class VersionedSchema:
    version: int | None
    schema: ParsedSchema


def _rules_for(fmt: SchemaFormat) -> ReaderWriterRules:
    if fmt is SchemaFormat.AVRO:
        from kschema.compat import avro

        return avro.reader_issues
    if fmt is SchemaFormat.JSON:
        from kschema.compat import jsonschema

        return jsonschema.reader_issues
    from kschema.compat import protobuf

    return protobuf.reader_issues


def check_reader_writer(reader: ParsedSchema, writer: ParsedSchema) -> list[Issue]:
    """Why `reader` cannot read data written with `writer` (empty when it can)."""
    if reader.format is not writer.format:
        return [Issue("", "FORMAT_CHANGED", f"schema format changed from {writer.format} to {reader.format}")]
    return _rules_for(reader.format)(reader, writer)


def check_compatibility(
    new: VersionedSchema,
    history: Sequence[VersionedSchema],
    level: CompatibilityLevel | str,
) -> CompatibilityResult:
    """Checks `new` against `history` (oldest first) under `level`. Non-transitive levels compare with
    the last entry only; transitive ones with every entry, newest first."""
    rule = LEVELS[CompatibilityLevel(level)]
    if not history or not (rule.backward or rule.forward):
        return CompatibilityResult()
    against = list(reversed(history)) if rule.transitive else [history[-1]]
    found: list[Incompatibility] = []
    with work_budget("the compatibility check", LIMITS.check_steps, LIMITS.check_seconds):
        _check_each(new, against, rule.backward, rule.forward, found)
    return CompatibilityResult(tuple(found))


def _check_each(
    new: VersionedSchema,
    against: Sequence[VersionedSchema],
    backward: bool,
    forward: bool,
    found: list[Incompatibility],
) -> None:
    """Raises `TooComplexError` when the check runs out of its work budget or deadline."""
    for old in against:
        if backward:
            found += [
                Incompatibility(i, new.version, old.version)
                for i in check_reader_writer(new.schema, old.schema)
            ]
        if forward:
            found += [
                Incompatibility(i, old.version, new.version)
                for i in check_reader_writer(old.schema, new.schema)
            ]
