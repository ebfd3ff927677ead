"""Avro reader/writer compatibility, following Apache Avro Java's `SchemaCompatibility` (which Confluent
Schema Registry uses): type promotion, record fields matched by name and reader aliases, defaults for
fields the writer lacks, enum symbols and enum defaults, unions branch by branch, fixed sizes, names with
reader aliases, arrays and maps recursively. Recursive types terminate: a (reader, writer) pair already
being compared is assumed readable, as in Avro Java."""

from __future__ import annotations

from kschema.compat.result import Issue
from kschema.compat.shared import SharedTuples
from kschema.formats import ParsedSchema
from kschema.formats.avro import (
    AvroArray,
    AvroEnum,
    AvroFixed,
    AvroMap,
    AvroPrimitive,
    AvroRecord,
    AvroSchema,
    AvroType,
    AvroUnion,
)
from kschema.formats.budget import LIMITS, spend

__all__ = ["reader_issues", "type_issues"]

# Writer types each reader type accepts besides its own (the Avro specification's promotions).
_PROMOTIONS: dict[str, frozenset[str]] = {
    "long": frozenset({"int"}),
    "float": frozenset({"int", "long"}),
    "double": frozenset({"int", "long", "float"}),
    "bytes": frozenset({"string"}),
    "string": frozenset({"bytes"}),
}


def reader_issues(reader: ParsedSchema, writer: ParsedSchema) -> list[Issue]:
    """Why a reader using `reader` cannot decode data written with `writer` (empty when it can)."""
    if not isinstance(reader, AvroSchema) or not isinstance(writer, AvroSchema):
        raise TypeError("Avro compatibility needs two schemas parsed by kschema.formats.avro")
    return type_issues(reader.root, writer.root)


def type_issues(reader: AvroType, writer: AvroType) -> list[Issue]:
    """The same check on the typed models; locations are JSON pointers from the reader's root."""
    try:
        return _Checker().check(reader, writer)
    except RecursionError:
        # Only two recursive types whose cycles never line up can get here; refusing is the safe answer.
        return [Issue("", "TOO_DEEP", "the schemas nest too deeply to compare")]


def _describe(t: AvroType) -> str:
    if isinstance(t, AvroRecord | AvroEnum | AvroFixed):
        return f"{t.kind} {t.name}"
    return t.kind


def _under(prefix: str, issues: list[Issue]) -> list[Issue]:
    return [Issue(prefix + i.location, i.rule, i.message) for i in issues]


class _Checker:
    def __init__(self) -> None:
        # Results by (reader, writer) identity, with locations relative to that pair, so a shared or
        # recursive type is compared once, and every pair costs one step of the work budget.
        self.memo: dict[tuple[int, int], list[Issue]] = {}
        self.in_progress: set[tuple[int, int]] = set()

    def check(self, reader: AvroType, writer: AvroType) -> list[Issue]:
        key = (id(reader), id(writer))
        cached = self.memo.get(key)
        if cached is not None:
            return cached
        if key in self.in_progress:
            return []
        spend()
        self.in_progress.add(key)
        try:
            issues = self._compare(reader, writer)
        finally:
            self.in_progress.discard(key)
        # A named type reached along many paths would repeat its findings once per path (doubling with
        # every level of a DAG of records); the verdict needs one, a person reads a few.
        issues = issues[: LIMITS.issues_per_pair]
        self.memo[key] = issues
        return issues

    def _compare(self, r: AvroType, w: AvroType) -> list[Issue]:
        if r.kind == w.kind:
            return self._same_kind(r, w)
        if isinstance(w, AvroUnion):
            # Every value the writer can produce, whichever branch, must be readable.
            return [issue for branch in w.branches for issue in self.check(r, branch)]
        if isinstance(r, AvroUnion):
            if any(not self.check(branch, w) for branch in r.branches):
                return []
            return [
                Issue(
                    "",
                    "MISSING_UNION_BRANCH",
                    f"reader union has no branch that reads writer type {_describe(w)}",
                )
            ]
        if w.kind in _PROMOTIONS.get(r.kind, frozenset()):
            return []
        return [
            Issue("", "TYPE_MISMATCH", f"reader type {_describe(r)} cannot read writer type {_describe(w)}")
        ]

    def _same_kind(self, r: AvroType, w: AvroType) -> list[Issue]:
        if isinstance(r, AvroPrimitive):
            return []
        if isinstance(r, AvroArray) and isinstance(w, AvroArray):
            return _under("/items", self.check(r.items, w.items))
        if isinstance(r, AvroMap) and isinstance(w, AvroMap):
            return _under("/values", self.check(r.values, w.values))
        if isinstance(r, AvroUnion) and isinstance(w, AvroUnion):
            return [
                Issue(
                    f"/{index}",
                    "MISSING_UNION_BRANCH",
                    f"reader union has no branch that reads writer type {_describe(branch)}",
                )
                for index, branch in enumerate(w.branches)
                if self.check(r, branch)
            ]
        if isinstance(r, AvroFixed) and isinstance(w, AvroFixed):
            issues = _name_issues(r, w)
            if r.size != w.size:
                issues.append(
                    Issue(
                        "/size",
                        "FIXED_SIZE_MISMATCH",
                        f"fixed size {r.size} in the reader, {w.size} in the writer",
                    )
                )
            return issues
        if isinstance(r, AvroEnum) and isinstance(w, AvroEnum):
            issues = _name_issues(r, w)
            missing = sorted(set(w.symbols) - set(r.symbols))
            if missing and r.default is None:
                issues.append(
                    Issue(
                        "/symbols",
                        "MISSING_ENUM_SYMBOLS",
                        f"reader enum lacks writer symbols {', '.join(missing)} and has no default",
                    )
                )
            return issues
        if isinstance(r, AvroRecord) and isinstance(w, AvroRecord):
            return _name_issues(r, w) + self._fields(r, w)
        raise AssertionError(f"unhandled Avro kind {r.kind}")

    def _fields(self, r: AvroRecord, w: AvroRecord) -> list[Issue]:
        issues: list[Issue] = []
        reader, writer = _plain(r), _plain(w)
        # Reader fields without aliases whose name finds a writer field of the same primitive kind read
        # with no finding (the loop below would `continue` on each): only the others are visited, in
        # the reader's order. Between two versions of a record that is a field or two of fifty.
        differing = reader.as_reader - writer.as_writer
        if differing or reader.others:
            visit = [*reader.others, *(r.by_name[name] for name, _ in differing)]
            if len(visit) > 1:
                visit.sort(key=lambda f: reader.position[f.name])
        else:
            visit = []
        for reader_field in visit:
            if not reader_field.aliases:
                # The common case, decided without the general matching below: a field without aliases
                # matches the writer's field of its name, if any. Two primitives are compared in place
                # (as `_compare` would: the same kind or a promotion reads), anything else recursively.
                found = w.by_name.get(reader_field.name)
                if found is not None:
                    reader_type, writer_type = reader_field.type, found.type
                    if type(reader_type) is AvroPrimitive and type(writer_type) is AvroPrimitive:
                        if reader_type.kind != writer_type.kind and writer_type.kind not in _PROMOTIONS.get(
                            reader_type.kind, frozenset()
                        ):
                            issues.append(
                                Issue(
                                    f"/fields/{reader_field.name}",
                                    "TYPE_MISMATCH",
                                    f"reader type {reader_type.kind} cannot read writer type "
                                    f"{writer_type.kind}",
                                )
                            )
                        continue
                    nested = self.check(reader_type, writer_type)
                    if nested:
                        issues += _under(f"/fields/{reader_field.name}", nested)
                    continue
            where = f"/fields/{reader_field.name}"
            matches: list[str] = []
            for label in (reader_field.name, *reader_field.aliases):
                found = w.by_name.get(label)
                if found is not None and found.name not in matches:
                    matches.append(found.name)
            if len(matches) > 1:
                issues.append(
                    Issue(
                        where,
                        "AMBIGUOUS_READER_FIELD",
                        f"reader field {reader_field.name!r} matches writer fields {', '.join(matches)} "
                        "by name or alias",
                    )
                )
            elif matches:
                issues += _under(where, self.check(reader_field.type, w.by_name[matches[0]].type))
            elif not reader_field.has_default:
                issues.append(
                    Issue(
                        where,
                        "READER_FIELD_MISSING_DEFAULT_VALUE",
                        f"field {reader_field.name!r} is missing from the writer and has no default "
                        "in the reader",
                    )
                )
        return issues


def _name_issues(r: AvroRecord | AvroEnum | AvroFixed, w: AvroRecord | AvroEnum | AvroFixed) -> list[Issue]:
    # Avro Java compares unqualified names, then the reader's aliases against the writer's fullname.
    if r.short_name == w.short_name or w.name in r.aliases:
        return []
    return [
        Issue(
            "/name",
            "NAME_MISMATCH",
            f"reader {r.kind} {r.name} does not match writer {w.kind} {w.name} "
            "(names and reader aliases differ)",
        )
    ]


class _Plain:
    """A record's fields of primitive type, as the reader (fields without aliases, by name) and as the
    writer (by every name and alias its `by_name` answers to), its other fields in order, and each
    field's position."""

    __slots__ = ("as_reader", "as_writer", "others", "position")

    def __init__(self, record: AvroRecord) -> None:
        # (name, kind) pairs: a set difference finds the reader fields that need a look.
        self.as_reader = frozenset(
            _shared((f.name, f.type.kind))
            for f in record.fields
            if not f.aliases and type(f.type) is AvroPrimitive
        )
        self.as_writer = frozenset(
            _shared((label, f.type.kind))
            for label, f in record.by_name.items()
            if type(f.type) is AvroPrimitive
        )
        plain = {name for name, _ in self.as_reader}
        self.others = [f for f in record.fields if f.name not in plain]
        self.position = {f.name: i for i, f in enumerate(record.fields)}


# The (name, kind) pairs of every record, shared (see `SharedTuples`).
_shared: SharedTuples[tuple[str, str]] = SharedTuples(20_000)


def _plain(record: AvroRecord) -> _Plain:
    """The record's `_Plain`, computed on first use (a parsed record never changes afterwards)."""
    found = record.derived
    if not isinstance(found, _Plain):
        found = record.derived = _Plain(record)
    return found
