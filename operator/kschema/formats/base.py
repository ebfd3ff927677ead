"""Types shared by every schema format: the parsed schema, references and the invalid-schema error."""

from __future__ import annotations

import dataclasses
import enum
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

_C = TypeVar("_C", bound=type)


def pickled_by_fields(cls: _C) -> _C:
    """Pickles a frozen dataclass as its class and its field values in order, read by one C call,
    instead of through `dataclasses`' slow `__getstate__`/`__setstate__` for slotted classes: the
    specs and schemas of every admission review cross a pipe to a worker process (`kschema.compute`)."""
    read = operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))
    single = len(dataclasses.fields(cls)) == 1

    def reduce(self: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        values = read(self)
        return cls, (values,) if single else values

    cls.__reduce__ = reduce  # type: ignore[method-assign,assignment]
    return cls


class SchemaFormat(enum.StrEnum):
    AVRO = "AVRO"
    JSON = "JSON"
    PROTOBUF = "PROTOBUF"


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Reference:
    """A Confluent schema reference: `name` is how the schema refers to it (an Avro full name, a Protobuf
    import path or a JSON Schema `$ref` URL); `subject` and `version` say where it is registered."""

    name: str
    subject: str
    version: int


@dataclass(frozen=True, slots=True)
class ResolvedReference:
    """A reference together with the text it resolves to and that text's own resolved references."""

    reference: Reference
    schema: str
    references: tuple[ResolvedReference, ...] = ()


class InvalidSchemaError(ValueError):
    """A schema (or payload) that cannot be used; `location` names where (a JSON pointer such as
    `/fields/3/type`, or `file.proto:4:7`), `reason` says why."""

    def __init__(self, reason: str, location: str = "") -> None:
        self.reason = reason
        self.location = location
        super().__init__(f"{location}: {reason}" if location else reason)

    def __reduce__(self) -> tuple[type[InvalidSchemaError], tuple[str, str]]:
        # Crosses the worker processes' pipes with its location intact.
        return type(self), (self.reason, self.location)


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One reason a data payload does not conform to a schema."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ParsedSchema(Protocol):
    """A schema that parsed and validated, with everything needed to compare and fingerprint it."""

    @property
    def format(self) -> SchemaFormat: ...

    @property
    def raw(self) -> str:
        """The schema text exactly as given."""

    @property
    def canonical(self) -> str:
        """A normalised text: two schemas that mean the same have the same canonical text."""

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the canonical text and of the references' (name, subject, version)."""

    @property
    def references(self) -> tuple[ResolvedReference, ...]: ...

    def validate(self, payload: Any) -> list[ValidationIssue]:
        """Checks a decoded payload (JSON-like Python value) against the schema; empty when it conforms."""

    @property
    def validation_cost(self) -> int | None:
        """The most steps `validate` can take whatever the payload, when the schema alone bounds it (the
        payload then need not be measured first); None when the payload decides."""


@dataclass(frozen=True, slots=True)
class SchemaInput:
    """What a caller hands to `parse_schema`."""

    format: SchemaFormat
    schema: str
    references: tuple[ResolvedReference, ...] = field(default=())


def references_key(references: tuple[ResolvedReference, ...]) -> list[Mapping[str, object]]:
    """The part of the references that belongs in a fingerprint."""
    return [
        {"name": r.reference.name, "subject": r.reference.subject, "version": r.reference.version}
        for r in references
    ]
