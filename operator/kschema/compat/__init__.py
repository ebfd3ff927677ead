"""The compatibility checker: one table of levels for every format, results as located messages."""

from kschema.compat.checker import (
    VerdictMemo,
    VersionedSchema,
    check_compatibility,
    check_reader_writer,
    remembered_verdicts,
)
from kschema.compat.levels import CompatibilityLevel
from kschema.compat.result import CompatibilityResult, Incompatibility, Issue

__all__ = [
    "CompatibilityLevel",
    "CompatibilityResult",
    "Incompatibility",
    "Issue",
    "VerdictMemo",
    "VersionedSchema",
    "check_compatibility",
    "check_reader_writer",
    "remembered_verdicts",
]
