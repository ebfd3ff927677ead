"""`unevaluatedItems` and `unevaluatedProperties` (draft 2019-09 and later), as newer Confluent releases
compare them: like `additionalItems`/`additionalProperties` when those are absent, `false` closing the
content model and a schema partly opening it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kschema.compat.jsonschema.differences import DifferenceType as D
from kschema.compat.jsonschema.model import Kind, Node

if TYPE_CHECKING:
    from kschema.compat.jsonschema.context import Context

__all__ = ["UNEVALUATED_ITEMS", "UNEVALUATED_PROPERTIES", "UnevaluatedRule", "compare_unevaluated"]


@dataclass(frozen=True, slots=True)
class UnevaluatedRule:
    """The differences of one unevaluated keyword: ADDED (the writer's `false` relaxed), REMOVED (`false`
    in the reader), NARROWED (a schema where there was none) and EXTENDED (a schema dropped)."""

    keyword: str
    added: D
    removed: D
    narrowed: D
    extended: D


UNEVALUATED_ITEMS = UnevaluatedRule(
    "unevaluatedItems",
    D.UNEVALUATED_ITEMS_ADDED,
    D.UNEVALUATED_ITEMS_REMOVED,
    D.UNEVALUATED_ITEMS_NARROWED,
    D.UNEVALUATED_ITEMS_EXTENDED,
)
UNEVALUATED_PROPERTIES = UnevaluatedRule(
    "unevaluatedProperties",
    D.UNEVALUATED_PROPERTIES_ADDED,
    D.UNEVALUATED_PROPERTIES_REMOVED,
    D.UNEVALUATED_PROPERTIES_NARROWED,
    D.UNEVALUATED_PROPERTIES_EXTENDED,
)


def compare_unevaluated(ctx: Context, rule: UnevaluatedRule, before: Node | None, after: Node | None) -> None:
    if before is None and after is None:
        return
    with ctx.enter(rule.keyword):
        if before is None:
            ctx.add(rule.removed if after is not None and after.kind is Kind.FALSE else rule.narrowed)
        elif after is None:
            ctx.add(rule.added if before.kind is Kind.FALSE else rule.extended)
        elif before.kind is Kind.FALSE and after.kind is not Kind.FALSE:
            ctx.add(rule.added)
        elif before.kind is not Kind.FALSE and after.kind is Kind.FALSE:
            ctx.add(rule.removed)
        elif before.is_empty and not after.is_empty:
            ctx.add(rule.narrowed)
        elif not before.is_empty and after.is_empty:
            ctx.add(rule.extended)
        else:
            ctx.compare(before, after)
