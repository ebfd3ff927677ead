"""Rules for arrays: the items schema, tuples (`items` arrays or `prefixItems`), additional and unevaluated
items, and size limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kschema.compat.jsonschema.differences import DifferenceType as D
from kschema.compat.jsonschema.limits import ARRAY_CONTAINS_LIMITS, ARRAY_SIZE_LIMITS, check_limits
from kschema.compat.jsonschema.model import Kind, Node
from kschema.compat.jsonschema.unevaluated import UNEVALUATED_ITEMS, compare_unevaluated

if TYPE_CHECKING:
    from kschema.compat.jsonschema.context import Context

__all__ = ["compare_array"]


def compare_array(ctx: Context, original: Node, update: Node) -> None:
    with ctx.enter("items"):
        ctx.compare(original.all_items_schema(), update.all_items_schema())
    _compare_tuple_items(ctx, original, update)
    with ctx.enter("additionalItems"):
        if original.permits_additional_items() != update.permits_additional_items():
            ctx.add(
                D.ADDITIONAL_ITEMS_REMOVED
                if original.permits_additional_items()
                else D.ADDITIONAL_ITEMS_ADDED
            )
        else:
            before_schema, after_schema = original.additional_items_schema(), update.additional_items_schema()
            if before_schema is None and after_schema is not None:
                ctx.add(D.ADDITIONAL_ITEMS_NARROWED)
            elif after_schema is None and before_schema is not None:
                ctx.add(D.ADDITIONAL_ITEMS_EXTENDED)
            else:
                ctx.compare(before_schema, after_schema)
    compare_unevaluated(ctx, UNEVALUATED_ITEMS, original.unevaluated_items(), update.unevaluated_items())
    check_limits(ctx, ARRAY_SIZE_LIMITS, original, update)
    if bool(original.get("uniqueItems")) != bool(update.get("uniqueItems")):
        ctx.add(
            D.UNIQUE_ITEMS_REMOVED if original.get("uniqueItems") else D.UNIQUE_ITEMS_ADDED, "uniqueItems"
        )
    check_limits(ctx, ARRAY_CONTAINS_LIMITS, original, update)


def _is_open_array(node: Node) -> bool:
    if not node.permits_additional_items() or node.additional_items_schema() is not None:
        return False
    unevaluated = node.unevaluated_items()
    return unevaluated is None or unevaluated.is_empty


def _partial_item_schema(node: Node) -> Node | None:
    schema = node.additional_items_schema()
    if schema is not None:
        return schema
    unevaluated = node.unevaluated_items()
    if node.permits_additional_items() and unevaluated is not None and unevaluated.kind is not Kind.FALSE:
        return unevaluated
    return None


def _compare_tuple_items(ctx: Context, original: Node, update: Node) -> None:
    before, after = original.item_schemas(), update.item_schemas()
    for index in range(max(len(before), len(after))):
        with ctx.enter("items", str(index)):
            if index < len(before) and index < len(after):
                ctx.compare(before[index], after[index])
            elif index < len(before):
                _tuple_item_removed(ctx, before[index], update)
            else:
                _tuple_item_added(ctx, after[index], original)


def _tuple_item_removed(ctx: Context, item: Node, update: Node) -> None:
    if _is_open_array(update):
        ctx.add(D.ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL)
        return
    partial = _partial_item_schema(update)
    if partial is not None:
        ctx.covered(
            item,
            partial,
            D.ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
            D.ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
        )
    elif item.kind is Kind.FALSE:
        ctx.add(D.ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL)
    else:
        ctx.add(D.ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL)


def _tuple_item_added(ctx: Context, item: Node, original: Node) -> None:
    if _is_open_array(original):
        ctx.add(
            D.ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL
            if item.is_empty
            else D.ITEM_ADDED_TO_OPEN_CONTENT_MODEL
        )
        return
    partial = _partial_item_schema(original)
    if partial is not None:
        ctx.covered(
            partial,
            item,
            D.ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
            D.ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
        )
    else:
        ctx.add(D.ITEM_ADDED_TO_CLOSED_CONTENT_MODEL)
