"""Status conditions as in the Kubernetes API conventions: `type`, `status`, `reason`, `message`,
`lastTransitionTime` (kept while the status does not change) and `observedGeneration`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_MESSAGE = 30_000  # below the CRDs' maxLength of 32768


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: bool | None  # None: Unknown
    reason: str
    message: str


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge(
    existing: Iterable[Mapping[str, Any]] | None,
    updates: Sequence[Condition],
    generation: int | None,
    at: str | None = None,
) -> list[dict[str, Any]]:
    """The condition list after applying `updates`: conditions of other types are kept, and an updated
    condition keeps its `lastTransitionTime` unless its status flips."""
    stamp = at or now()
    previous = {str(c.get("type")): dict(c) for c in existing or () if isinstance(c, Mapping)}
    for update in updates:
        status = "Unknown" if update.status is None else "True" if update.status else "False"
        before = previous.get(update.type)
        changed = before is None or before.get("status") != status
        condition: dict[str, Any] = {
            "type": update.type,
            "status": status,
            "reason": update.reason,
            "message": update.message[:MAX_MESSAGE],
            "lastTransitionTime": stamp
            if changed or before is None
            else before.get("lastTransitionTime", stamp),
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        previous[update.type] = condition
    return list(previous.values())


def find(conditions: Iterable[Mapping[str, Any]] | None, type: str) -> Mapping[str, Any] | None:
    for condition in conditions or ():
        if isinstance(condition, Mapping) and condition.get("type") == type:
            return condition
    return None
