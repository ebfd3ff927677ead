"""One comparison of two nodes: a combination on one side only first, then a class change, then the
rules of the nodes' class."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from kschema.compat.jsonschema.arrays import compare_array
from kschema.compat.jsonschema.combinators import (
    compare_across_combination,
    compare_combined,
    compare_conditional,
    compare_not,
)
from kschema.compat.jsonschema.differences import DifferenceType as D
from kschema.compat.jsonschema.model import Kind, Node
from kschema.compat.jsonschema.objects import compare_object
from kschema.compat.jsonschema.scalars import compare_const, compare_enum, compare_number, compare_string

if TYPE_CHECKING:
    from kschema.compat.jsonschema.context import Context

__all__ = ["compare_nodes"]


def compare_nodes(ctx: Context, original: Node, update: Node) -> None:
    if (original.kind is Kind.COMBINED) is not (update.kind is Kind.COMBINED) and compare_across_combination(
        ctx, original, update
    ):
        return  # a combination on one side only
    if original.kind is not update.kind:
        # A writer that accepts nothing, or a reader that accepts everything, is always compatible.
        if original.kind is not Kind.FALSE and not update.is_empty:
            ctx.add(D.TYPE_CHANGED)
        return
    compare_kind = _BY_KIND.get(original.kind)
    if compare_kind is not None:
        compare_kind(ctx, original, update)


_BY_KIND: Final[Mapping[Kind, Callable[[Context, Node, Node], None]]] = {
    Kind.STRING: compare_string,
    Kind.NUMBER: compare_number,
    Kind.ENUM: compare_enum,
    Kind.CONST: compare_const,
    Kind.COMBINED: compare_combined,
    Kind.NOT: compare_not,
    Kind.CONDITIONAL: compare_conditional,
    Kind.OBJECT: compare_object,
    Kind.ARRAY: compare_array,
}
