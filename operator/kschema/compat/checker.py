"""Applies the level table to a new schema and its history, dispatching the reader/writer check to the
rules of the schema's format.

A caller that checks the same pairs again and again (the admission webhook's workers: every review of a
new version compares it with the same declared history) may make a `VerdictMemo` current with
`remembered_verdicts`: each reader/writer verdict is then looked up before it is computed. A verdict is
only remembered once its check finished: a check stopped by its work budget or deadline raises
`TooComplexError` and leaves nothing behind, and a refusal that depends on the interpreter's stack
(`UNSTABLE_RULES`) is never remembered either. The checks stay exact: every pair is still decided,
a remembered pair is just not computed twice.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from kschema.compat.levels import LEVELS, CompatibilityLevel
from kschema.compat.result import CompatibilityResult, Incompatibility, Issue
from kschema.formats import ParsedSchema, SchemaFormat
from kschema.formats.budget import LIMITS, work_budget

ReaderWriterRules = Callable[[ParsedSchema, ParsedSchema], list[Issue]]

# Rules reported when a comparison ran out of Python stack: they depend on where the check ran, not on
# the schemas alone.
UNSTABLE_RULES: Final = frozenset({"TOO_DEEP", "SCHEMA_TOO_DEEP"})


class VerdictMemo(Protocol):
    """Remembered reader/writer verdicts; `get` answers None for a pair it does not know."""

    def get(self, reader: ParsedSchema, writer: ParsedSchema) -> tuple[Issue, ...] | None: ...

    def put(self, reader: ParsedSchema, writer: ParsedSchema, issues: tuple[Issue, ...]) -> None: ...


_MEMO: contextvars.ContextVar[VerdictMemo | None] = contextvars.ContextVar("kschema_verdicts", default=None)


@contextlib.contextmanager
def remembered_verdicts(memo: VerdictMemo) -> Iterator[None]:
    """Makes `memo` the place reader/writer verdicts are looked up and kept, for the code inside."""
    token = _MEMO.set(memo)
    try:
        yield
    finally:
        _MEMO.reset(token)


@dataclass(frozen=True, slots=True)
class VersionedSchema:
    version: int | None
    schema: ParsedSchema


def _rules_for(fmt: SchemaFormat) -> ReaderWriterRules:
    rules = _RULES.get(fmt)
    if rules is None:
        # Imported on first use: a process that checks one format never loads the others' libraries.
        if fmt is SchemaFormat.AVRO:
            from kschema.compat import avro

            rules = avro.reader_issues
        elif fmt is SchemaFormat.JSON:
            from kschema.compat import jsonschema

            rules = jsonschema.reader_issues
        else:
            from kschema.compat import protobuf

            rules = protobuf.reader_issues
        _RULES[fmt] = rules
    return rules


_RULES: dict[SchemaFormat, ReaderWriterRules] = {}


def check_reader_writer(reader: ParsedSchema, writer: ParsedSchema) -> list[Issue]:
    """Why `reader` cannot read data written with `writer` (empty when it can)."""
    if reader.format is not writer.format:
        return [Issue("", "FORMAT_CHANGED", f"schema format changed from {writer.format} to {reader.format}")]
    memo = _MEMO.get()
    if memo is None:
        return _rules_for(reader.format)(reader, writer)
    known = memo.get(reader, writer)
    if known is not None:
        return list(known)
    issues = _rules_for(reader.format)(reader, writer)  # raises TooComplexError: nothing is remembered
    if not any(issue.rule in UNSTABLE_RULES for issue in issues):
        memo.put(reader, writer, tuple(issues))
    return issues


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
