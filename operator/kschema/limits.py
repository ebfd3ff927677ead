"""The one table of input limits. The CRDs' OpenAPI schemas (`minimum`, `maximum`, `minLength`,
`maxLength`, `pattern`), the resource model (and through it the webhook and `kschema check`) and the
registry store all take their limits from here, so admission refuses everything the store would refuse,
with the same numbers. A test checks the CRD files in `crds/` against `CRD_FIELDS`.

Pure: no imports from the rest of kschema, so every layer may use it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

__all__ = [
    "CRD_FIELDS",
    "DESCRIPTION",
    "FORBIDDEN_NAME_CHARACTERS",
    "NAMESPACE_NAME",
    "REFERENCE_NAME",
    "SCHEMA_ID",
    "SCHEMA_TEXT",
    "SUBJECT_NAME",
    "VERSION",
    "IntegerLimit",
    "LimitError",
    "TextLimit",
    "valid_sunset",
]

# The Confluent wire format carries schema IDs in 4 signed bytes, and the Confluent API's versions are
# 32-bit integers: 2^31 - 1 is the largest of each that a client can use.
INT32_MAX = 2**31 - 1

# Characters a registry subject string must not contain: C0 controls, DEL and C1 controls, and the
# Unicode bidirectional formatting characters (U+061C, U+200E/F, U+202A..U+202E, U+2066..U+2069), which
# make a name display as another one ("Trojan Source"). Inclusive code point ranges.
FORBIDDEN_NAME_CHARACTERS: tuple[tuple[int, int], ...] = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0x061C, 0x061C),
    (0x200E, 0x200F),
    (0x202A, 0x202E),
    (0x2066, 0x2069),
)
# Free text may hold line breaks and tabs, but never NUL (PostgreSQL text cannot store it).
FORBIDDEN_TEXT_CHARACTERS: tuple[tuple[int, int], ...] = ((0x00, 0x00),)


class LimitError(ValueError):
    """A value outside its limit; the message says which limit, without repeating the value's text."""


def _describe(code: int) -> str:
    return f"U+{code:04X}"


@functools.cache
def _forbidden_search(ranges: tuple[tuple[int, int], ...]) -> Callable[[str], re.Match[str] | None]:
    """A search for the first forbidden character (the `re` engine scans a 1 MiB text in about a
    millisecond; a Python loop would take a hundred times longer)."""
    members = "".join(
        re.escape(chr(low)) if low == high else f"{re.escape(chr(low))}-{re.escape(chr(high))}"
        for low, high in ranges
    )
    return re.compile(f"[{members}]").search


def valid_sunset(value: str) -> bool:
    """Whether `value` is an RFC 3339 date or date-time as `spec.sunset` needs (the store's rule too)."""
    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            parse(value)
            return True
        except ValueError:
            pass
    return False


@dataclass(frozen=True, slots=True)
class IntegerLimit:
    """An inclusive integer range."""

    minimum: int
    maximum: int

    def check(self, value: int) -> None:
        if not self.minimum <= value <= self.maximum:
            raise LimitError(f"must be an integer from {self.minimum} to {self.maximum}, got {value}")

    def openapi(self) -> dict[str, Any]:
        return {"minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True, slots=True)
class TextLimit:
    """A string's length in characters (as the API server counts them: Unicode code points) and the
    code points it must not contain."""

    min_length: int
    max_length: int
    forbidden: tuple[tuple[int, int], ...] = ()

    def check(self, value: str) -> None:
        if not self.min_length <= len(value) <= self.max_length:
            raise LimitError(
                f"must be {self.min_length} to {self.max_length} characters long, got {len(value)}"
            )
        if self.forbidden:
            found = _forbidden_search(self.forbidden)(value)
            if found is not None:
                code = ord(found.group())
                raise LimitError(f"must not contain {self.describe_forbidden()}; found {_describe(code)}")

    def describe_forbidden(self) -> str:
        if self.forbidden == FORBIDDEN_TEXT_CHARACTERS:
            return "NUL characters"
        return "control characters or bidirectional formatting characters"

    def pattern(self) -> str | None:
        """The OpenAPI `pattern` (RE2 syntax, as the API server evaluates it) that refuses the forbidden
        characters; None when nothing is forbidden."""
        if not self.forbidden:
            return None
        ranges = "".join(
            f"\\x{{{low:X}}}" if low == high else f"\\x{{{low:X}}}-\\x{{{high:X}}}"
            for low, high in self.forbidden
        )
        return f"^[^{ranges}]*$"

    def openapi(self) -> dict[str, Any]:
        found: dict[str, Any] = {"maxLength": self.max_length}
        if self.min_length:
            found["minLength"] = self.min_length
        pattern = self.pattern()
        if pattern is not None:
            found["pattern"] = pattern
        return found


VERSION = IntegerLimit(1, INT32_MAX)
SCHEMA_ID = IntegerLimit(1, INT32_MAX)
# Confluent's subject strings; 255 keeps them usable as Kafka-derived names and database keys.
SUBJECT_NAME = TextLimit(1, 255, FORBIDDEN_NAME_CHARACTERS)
REFERENCE_NAME = TextLimit(1, 1024, FORBIDDEN_TEXT_CHARACTERS)
DESCRIPTION = TextLimit(0, 4096, FORBIDDEN_TEXT_CHARACTERS)
# An object in the API server is at most about 1.5 MiB (etcd's request limit); 1 MiB of schema text
# leaves room for the rest of the object.
SCHEMA_TEXT = TextLimit(1, 1024 * 1024, FORBIDDEN_TEXT_CHARACTERS)
# Kubernetes namespace names (DNS labels).
NAMESPACE_NAME = TextLimit(1, 63)
# A character is at most 4 bytes in UTF-8: the store's byte limit follows from the character limit.
SCHEMA_TEXT_MAX_BYTES = SCHEMA_TEXT.max_length * 4

# Every limited field of the CRDs: (CRD file name, path of the property in the version's
# openAPIV3Schema, `[]` standing for array items) -> its limit.
CRD_FIELDS: Mapping[tuple[str, str], IntegerLimit | TextLimit] = {
    ("kschema.io_schemas.yaml", "spec.version"): VERSION,
    ("kschema.io_schemas.yaml", "spec.id"): SCHEMA_ID,
    ("kschema.io_schemas.yaml", "spec.schema"): SCHEMA_TEXT,
    ("kschema.io_schemas.yaml", "spec.references[].name"): REFERENCE_NAME,
    ("kschema.io_schemas.yaml", "spec.references[].subject"): SUBJECT_NAME,
    ("kschema.io_schemas.yaml", "spec.references[].version"): VERSION,
    ("kschema.io_subjects.yaml", "spec.name"): SUBJECT_NAME,
    ("kschema.io_subjects.yaml", "spec.description"): DESCRIPTION,
}
