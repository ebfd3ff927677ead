"""JSON Schema compatibility rules, following Confluent Schema Registry's JSON Schema checker
(`io.confluent.kafka.schemaregistry.json.diff`).

Confluent compares an *original* schema with an *update* and lists typed differences
(`TYPE_NARROWED`, `PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL`, `MAX_LENGTH_DECREASED`, ...); a change is
incompatible when any difference is outside its set of compatible changes. A BACKWARD check compares
original = the old schema with update = the new one, so in reader/writer terms the original is the
writer and the update is the reader: `reader_issues(reader, writer)` is `compare(writer, reader)`
restricted to the incompatible differences, with the difference type as `Issue.rule`.

The package, by responsibility:
- `differences`: the difference types (`DifferenceType`, a `StrEnum` of Confluent's rule ids), which are
  compatible, and their messages;
- `model`: Confluent's (Everit's) schema model rebuilt from a parsed schema, `keywords` the keywords by
  which it sorts an object into schema classes;
- `properties`: an object's properties indexed once per parsed schema, so the object rules visit only
  the properties that differ;
- `context`: the comparison's path, memo and collected differences;
- `compare`: one node pair, dispatched by class;
- `limits` (the table of numeric limit keywords), `scalars`, `objects`, `arrays`, `combinators`: the rules.

Where Confluent's Java code is evidently broken (an exclusive maximum compared with the update's
`maximum`; `multipleOf` compared on integer parts, which divides by zero for fractions) the intended
rule is applied with exact arithmetic.
"""

from __future__ import annotations

from kschema.compat.jsonschema.context import Context
from kschema.compat.jsonschema.differences import COMPATIBLE_CHANGES, MESSAGES, Difference, DifferenceType
from kschema.compat.jsonschema.model import Loader
from kschema.compat.result import Issue
from kschema.formats.base import ParsedSchema
from kschema.formats.jsonschema import ParsedJsonSchema

__all__ = ["COMPATIBLE_CHANGES", "Difference", "DifferenceType", "differences", "reader_issues"]


def reader_issues(reader: ParsedSchema, writer: ParsedSchema) -> list[Issue]:
    """Why `reader` cannot read data written with `writer`: Confluent's incompatible differences."""
    if not isinstance(reader, ParsedJsonSchema) or not isinstance(writer, ParsedJsonSchema):
        return [Issue("", "FORMAT_CHANGED", "both schemas must be JSON Schemas")]
    try:
        found = differences(writer, reader)
    except RecursionError:
        return [Issue("#/", "SCHEMA_TOO_DEEP", "the schemas nest too deeply to compare")]
    issues: list[Issue] = []
    seen: set[Difference] = set()
    for diff in found:
        if diff.compatible or diff in seen:
            continue
        seen.add(diff)
        issues.append(
            Issue(diff.path, diff.type, MESSAGES.get(diff.type, diff.type.lower().replace("_", " ")))
        )
    return issues


def differences(original: ParsedJsonSchema, update: ParsedJsonSchema) -> list[Difference]:
    """Confluent's `SchemaDiff.compare(original, update)`: every difference, compatible or not."""
    ctx = Context()
    # The two roots are the reader/writer pair itself, whose verdict the caller's verdict memo keeps:
    # kept among the comparisons of parts too, each new version's pairs would only evict useful ones.
    ctx.compare(Loader.root_of(original), Loader.root_of(update), keep=False)
    return ctx.diffs
