"""Numeric limit keywords as a table: one row per keyword with the difference each direction of change
makes. A new limit is one row."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final

from kschema.compat.jsonschema.differences import DifferenceType as D
from kschema.compat.jsonschema.model import Node

if TYPE_CHECKING:
    from kschema.compat.jsonschema.context import Context

__all__ = [
    "ARRAY_CONTAINS_LIMITS",
    "ARRAY_SIZE_LIMITS",
    "NUMBER_LIMITS",
    "OBJECT_LIMITS",
    "STRING_LIMITS",
    "LimitCheck",
    "check_limits",
    "number",
]


def _plain(node: Node, keyword: str) -> Any:
    return node.get(keyword)


def _exclusive(node: Node, keyword: str) -> Any:
    value = node.get(keyword)
    # Draft-04 spells exclusive limits as booleans that modify minimum/maximum; Everit then keeps the
    # limit in minimum/maximum and has no separate exclusive limit to compare.
    return None if isinstance(value, bool) else value


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """One numeric keyword: the difference when the update adds it, removes it, raises or lowers it."""

    keyword: str
    added: D
    removed: D
    increased: D
    decreased: D
    read: Callable[[Node, str], Any] = _plain

    def check(self, ctx: Context, original: Node, update: Node) -> None:
        raw_before, raw_after = self.read(original, self.keyword), self.read(update, self.keyword)
        if raw_before is None and raw_after is None:
            return  # the usual case: neither side has the keyword
        before, after = number(raw_before), number(raw_after)
        if before == after:
            return
        if before is None:
            ctx.add(self.added, self.keyword)
        elif after is None:
            ctx.add(self.removed, self.keyword)
        elif before < after:
            ctx.add(self.increased, self.keyword)
        else:
            ctx.add(self.decreased, self.keyword)


def check_limits(ctx: Context, table: Iterable[LimitCheck], original: Node, update: Node) -> None:
    keywords = _KEYWORDS.get(id(table))
    if keywords is not None:
        before, after = original.json, update.json
        if (
            type(before) is dict
            and type(after) is dict
            and keywords.isdisjoint(before)
            and keywords.isdisjoint(after)
        ):
            return  # the usual case: neither side has any of the table's keywords
    for row in table:
        row.check(ctx, original, update)


def number(value: Any) -> Fraction | None:
    """A JSON number as an exact fraction (None for anything else, booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


# fmt: off
STRING_LIMITS: Final = (
    LimitCheck(
        "maxLength", D.MAX_LENGTH_ADDED, D.MAX_LENGTH_REMOVED,
        D.MAX_LENGTH_INCREASED, D.MAX_LENGTH_DECREASED,
    ),
    LimitCheck(
        "minLength", D.MIN_LENGTH_ADDED, D.MIN_LENGTH_REMOVED,
        D.MIN_LENGTH_INCREASED, D.MIN_LENGTH_DECREASED,
    ),
)
NUMBER_LIMITS: Final = (
    LimitCheck(
        "maximum", D.MAXIMUM_ADDED, D.MAXIMUM_REMOVED,
        D.MAXIMUM_INCREASED, D.MAXIMUM_DECREASED,
    ),
    LimitCheck(
        "minimum", D.MINIMUM_ADDED, D.MINIMUM_REMOVED,
        D.MINIMUM_INCREASED, D.MINIMUM_DECREASED,
    ),
    LimitCheck(
        "exclusiveMaximum", D.EXCLUSIVE_MAXIMUM_ADDED, D.EXCLUSIVE_MAXIMUM_REMOVED,
        D.EXCLUSIVE_MAXIMUM_INCREASED, D.EXCLUSIVE_MAXIMUM_DECREASED, _exclusive,
    ),
    LimitCheck(
        "exclusiveMinimum", D.EXCLUSIVE_MINIMUM_ADDED, D.EXCLUSIVE_MINIMUM_REMOVED,
        D.EXCLUSIVE_MINIMUM_INCREASED, D.EXCLUSIVE_MINIMUM_DECREASED, _exclusive,
    ),
)
OBJECT_LIMITS: Final = (
    LimitCheck(
        "maxProperties", D.MAX_PROPERTIES_ADDED, D.MAX_PROPERTIES_REMOVED,
        D.MAX_PROPERTIES_INCREASED, D.MAX_PROPERTIES_DECREASED,
    ),
    LimitCheck(
        "minProperties", D.MIN_PROPERTIES_ADDED, D.MIN_PROPERTIES_REMOVED,
        D.MIN_PROPERTIES_INCREASED, D.MIN_PROPERTIES_DECREASED,
    ),
)
ARRAY_SIZE_LIMITS: Final = (
    LimitCheck(
        "maxItems", D.MAX_ITEMS_ADDED, D.MAX_ITEMS_REMOVED,
        D.MAX_ITEMS_INCREASED, D.MAX_ITEMS_DECREASED,
    ),
    LimitCheck(
        "minItems", D.MIN_ITEMS_ADDED, D.MIN_ITEMS_REMOVED,
        D.MIN_ITEMS_INCREASED, D.MIN_ITEMS_DECREASED,
    ),
)
ARRAY_CONTAINS_LIMITS: Final = (
    LimitCheck(
        "maxContains", D.MAX_CONTAINS_ADDED, D.MAX_CONTAINS_REMOVED,
        D.MAX_CONTAINS_INCREASED, D.MAX_CONTAINS_DECREASED,
    ),
    LimitCheck(
        "minContains", D.MIN_CONTAINS_ADDED, D.MIN_CONTAINS_REMOVED,
        D.MIN_CONTAINS_INCREASED, D.MIN_CONTAINS_DECREASED,
    ),
)
# fmt: on


# The keywords of each table above, by the table's identity: a pair of nodes with none of them (most
# nodes) skips the table's rows.
_KEYWORDS: Final[dict[int, frozenset[str]]] = {
    id(table): frozenset(row.keyword for row in table)
    for table in (STRING_LIMITS, NUMBER_LIMITS, OBJECT_LIMITS, ARRAY_SIZE_LIMITS, ARRAY_CONTAINS_LIMITS)
}
