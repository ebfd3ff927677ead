"""Rules for combinations (`allOf`, `anyOf`, `oneOf`, and the synthetic combinations of the model) and for
`not`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from kschema.compat.jsonschema.differences import Difference, DifferenceType
from kschema.compat.jsonschema.differences import DifferenceType as D
from kschema.compat.jsonschema.model import Kind, Node
from kschema.compat.jsonschema.scalars import value_key

if TYPE_CHECKING:
    from kschema.compat.jsonschema.context import Context

__all__ = ["compare_across_combination", "compare_combined", "compare_conditional", "compare_not"]


def compare_across_combination(ctx: Context, original: Node, update: Node) -> bool:
    """A combination on one side only: the other side compared with one of its subschemas. True when
    that settled the comparison."""
    if original.kind is not Kind.COMBINED and update.kind is Kind.COMBINED:
        if len(update.subschemas) == 1:
            sub = ctx.sub()
            sub.compare(original, update.subschemas[0])
            if sub.compatible:
                ctx.extend(sub.diffs)
                return True
        elif update.criterion in ("anyOf", "oneOf"):
            for subschema in update.subschemas:
                sub = ctx.sub()
                sub.compare(original, subschema)
                if sub.compatible:
                    ctx.extend(sub.diffs)
                    ctx.add(D.SUM_TYPE_EXTENDED)
                    return True
    elif original.kind is Kind.COMBINED and update.kind is not Kind.COMBINED:
        if len(original.subschemas) == 1:
            sub = ctx.sub()
            sub.compare(original.subschemas[0], update)
            if sub.compatible:
                ctx.extend(sub.diffs)
                return True
        elif original.criterion == "allOf":
            for subschema in original.subschemas:
                sub = ctx.sub()
                sub.compare(subschema, update)
                if sub.compatible:
                    ctx.extend(sub.diffs)
                    ctx.add(D.PRODUCT_TYPE_NARROWED)
                    return True
    return False


def compare_combined(ctx: Context, original: Node, update: Node) -> None:
    changed = _compare_criteria(ctx, original, update)
    if changed == D.COMBINED_TYPE_CHANGED:
        return
    original_subschemas = _distinct(original)
    update_subschemas = _distinct(update)
    if len(original_subschemas) < len(update_subschemas):
        ctx.add(D.PRODUCT_TYPE_EXTENDED if update.criterion == "allOf" else D.SUM_TYPE_EXTENDED)
    elif len(original_subschemas) > len(update_subschemas):
        # Fewer subschemas narrow what the writer's keyword combined: dropping a conjunct of the
        # writer's allOf accepts more, dropping an alternative of its anyOf/oneOf accepts less.
        ctx.add(D.SUM_TYPE_NARROWED if original.criterion in ("anyOf", "oneOf") else D.PRODUCT_TYPE_NARROWED)
    compatible: dict[int, dict[int, list[Difference]]] = {}
    for i, original_subschema in enumerate(original_subschemas):
        with ctx.enter(original.criterion, str(i)):
            for j, update_subschema in enumerate(update_subschemas):
                sub = ctx.sub()
                sub.compare(original_subschema, update_subschema)
                if sub.compatible:
                    compatible.setdefault(i, {})[j] = sub.diffs
    matching = _maximum_matching(compatible, len(update_subschemas))
    for i, j in matching.items():
        ctx.extend(compatible[i][j])
    if len(matching) < min(len(original_subschemas), len(update_subschemas)):
        ctx.add(D.COMBINED_TYPE_SUBSCHEMAS_CHANGED)


def _compare_criteria(ctx: Context, original: Node, update: Node) -> DifferenceType | None:
    if original.criterion == update.criterion:
        return None
    single_original, single_update = len(original.subschemas) == 1, len(update.subschemas) == 1
    if (
        update.criterion == "anyOf"
        or (single_original and single_update)
        or (single_original and update.criterion == "oneOf")
        # An allOf reduced to one subschema under any keyword: the writer's values satisfy it.
        or (single_update and original.criterion == "allOf")
    ):
        change = D.COMBINED_TYPE_EXTENDED
    else:
        change = D.COMBINED_TYPE_CHANGED
    ctx.add(change)
    return change


def _distinct(node: Node) -> list[Node]:
    """The subschemas with duplicates collapsed, as Confluent does with a set of schemas."""
    if node.synthetic:
        return list(node.subschemas)
    seen: set[str] = set()
    result: list[Node] = []
    for subschema in node.subschemas:
        key = value_key(subschema.json)
        if key not in seen:
            seen.add(key)
            result.append(subschema)
    return result


def _maximum_matching(edges: Mapping[int, Mapping[int, object]], right_size: int) -> dict[int, int]:
    """A maximum bipartite matching (left index -> right index) by augmenting paths."""
    match_right: dict[int, int] = {}

    def augment(left: int, visited: set[int]) -> bool:
        for right in edges.get(left, {}):
            if right in visited:
                continue
            visited.add(right)
            if right not in match_right or augment(match_right[right], visited):
                match_right[right] = left
                return True
        return False

    for left in edges:
        augment(left, set())
    return {left: right for right, left in match_right.items()}


def compare_not(ctx: Context, original: Node, update: Node) -> None:
    with ctx.enter("not"):
        sub = ctx.sub()
        # What the reader excludes must be excluded by the writer too: compare the other way round.
        sub.compare(update.subschemas[0], original.subschemas[0])
        ctx.add(D.NOT_TYPE_NARROWED if sub.compatible else D.NOT_TYPE_EXTENDED)


def compare_conditional(ctx: Context, original: Node, update: Node) -> None:
    """`if`/`then`/`else`: the same `if` splits values the same way, so `then` and `else` are compared
    like any subschema. A different `if` routes values to other branches, which is a change in itself
    unless the reader has no condition any more (it then accepts what either branch did)."""
    before_if, after_if = original.conditional_part("if"), update.conditional_part("if")
    if after_if is None:
        return  # without `if`, the reader ignores `then` and `else`
    if before_if is None or value_key(before_if.json) != value_key(after_if.json):
        if before_if is not None or any(
            part is not None and not part.is_empty
            for part in (update.conditional_part("then"), update.conditional_part("else"))
        ):
            ctx.add(D.CONDITION_CHANGED, "if")
        return
    for keyword in ("then", "else"):
        before, after = original.conditional_part(keyword), update.conditional_part(keyword)
        if before is None and after is not None and after.is_empty:
            continue
        with ctx.enter(keyword):
            ctx.compare(before, after)
