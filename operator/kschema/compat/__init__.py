"""The compatibility checker: one table of levels for every format, results as located messages."""

from kschema.compat.checker import VersionedSchema, check_compatibility, check_reader_writer
from kschema.compat.levels import CompatibilityLevel
from kschema.compat.result import CompatibilityResult, Incompatibility, Issue

__all__ = [
    "CompatibilityLevel",
    "CompatibilityResult",
    "Incompatibility",
    "Issue",
    "VersionedSchema",
    "check_compatibility",
    "check_reader_writer",
]
