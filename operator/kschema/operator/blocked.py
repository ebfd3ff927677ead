"""`Blocked`: why a reconcile cannot complete, and whether that is temporary; the store's typed errors
translated into it once."""

from __future__ import annotations

from kschema.store import (
    FormatConflictError,
    IdConflictError,
    InvalidInputError,
    StoreError,
    StoreUnavailableError,
    SubjectOwnedElsewhereError,
    VersionConflictError,
)


class Blocked(Exception):
    """A reconcile that cannot complete. `temporary` ones are retried (the world may change without a
    spec change: the store comes back, a referenced version arrives); the others wait for a new spec."""

    def __init__(self, reason: str, message: str, *, temporary: bool) -> None:
        self.reason = reason
        self.message = message
        self.temporary = temporary
        super().__init__(f"{reason}: {message}")


_PERMANENT_REASONS: dict[type[StoreError], str] = {
    SubjectOwnedElsewhereError: "SubjectOwnedElsewhere",
    VersionConflictError: "VersionConflict",
    IdConflictError: "IdConflict",
    FormatConflictError: "FormatConflict",
    InvalidInputError: "InvalidInput",
}


def blocked_by_store(error: StoreError) -> Blocked:
    """Translates the store's typed errors, once, into reasons."""
    if isinstance(error, StoreUnavailableError):
        return Blocked("StoreUnavailable", f"the registry store is unavailable: {error}", temporary=True)
    for kind, reason in _PERMANENT_REASONS.items():
        if isinstance(error, kind):
            return Blocked(reason, str(error), temporary=False)
    return Blocked("StoreError", str(error), temporary=True)
