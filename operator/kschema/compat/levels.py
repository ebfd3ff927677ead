"""Compatibility levels as one table (Confluent semantics)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CompatibilityLevel(enum.StrEnum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"


@dataclass(frozen=True, slots=True)
class LevelRule:
    backward: bool  # the new schema reads data written with the old ones
    forward: bool  # the old schemas read data written with the new one
    transitive: bool  # against every earlier version, not only the latest


LEVELS: dict[CompatibilityLevel, LevelRule] = {
    CompatibilityLevel.NONE: LevelRule(backward=False, forward=False, transitive=False),
    CompatibilityLevel.BACKWARD: LevelRule(backward=True, forward=False, transitive=False),
    CompatibilityLevel.BACKWARD_TRANSITIVE: LevelRule(backward=True, forward=False, transitive=True),
    CompatibilityLevel.FORWARD: LevelRule(backward=False, forward=True, transitive=False),
    CompatibilityLevel.FORWARD_TRANSITIVE: LevelRule(backward=False, forward=True, transitive=True),
    CompatibilityLevel.FULL: LevelRule(backward=True, forward=True, transitive=False),
    CompatibilityLevel.FULL_TRANSITIVE: LevelRule(backward=True, forward=True, transitive=True),
}
