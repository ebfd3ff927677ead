"""Compatibility results: values with located, human messages, never bare booleans."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Issue:
    """One reason a reader schema cannot read data written with a writer schema, as found by a
    format's rules. `location` is a JSON pointer into the reader (or writer) schema, e.g. `/fields/cost`
    or `/Order/fields/ship_to`; `rule` is a short stable identifier (`FIELD_REMOVED_WITHOUT_DEFAULT`);
    `message` is the human sentence (`field removed without a default`)."""

    location: str
    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """An issue placed in the subject's history: which version reads which."""

    issue: Issue
    reader_version: int | None
    writer_version: int | None

    @property
    def location(self) -> str:
        return self.issue.location

    @property
    def rule(self) -> str:
        return self.issue.rule

    def __str__(self) -> str:
        where = f"{self.issue.location}: " if self.issue.location else ""
        return f"{where}{self.issue.message}; {self.direction()}"

    def direction(self) -> str:
        reader = _name(self.reader_version, "the new schema")
        writer = _name(self.writer_version, "the new schema")
        return f"a reader of {reader} cannot read data written with {writer}"


def _name(version: int | None, fallback: str) -> str:
    return f"version {version}" if version is not None else fallback


@dataclass(frozen=True, slots=True)
class CompatibilityResult:
    incompatibilities: tuple[Incompatibility, ...] = ()

    @property
    def compatible(self) -> bool:
        return not self.incompatibilities

    @property
    def messages(self) -> list[str]:
        return [str(i) for i in self.incompatibilities]
