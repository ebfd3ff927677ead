"""Rules for objects: properties, required properties, dependencies, and open, partly open or closed
content models."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from kschema.compat.jsonschema.differences import DifferenceType as D
from kschema.compat.jsonschema.limits import OBJECT_LIMITS, check_limits
from kschema.compat.jsonschema.model import Kind, Node
from kschema.compat.jsonschema.properties import PropertyIndex, property_index
from kschema.compat.jsonschema.unevaluated import UNEVALUATED_PROPERTIES, compare_unevaluated

if TYPE_CHECKING:
    from kschema.compat.jsonschema.context import Context

__all__ = ["compare_object"]


def compare_object(ctx: Context, original: Node, update: Node) -> None:
    before, after = property_index(original), property_index(update)
    if before.required != after.required:
        _compare_required(ctx, before, after)
    # The original's properties in order, then the update's new ones. A property of a kind compared by
    # its own keywords with the same content on both sides finds nothing: only the others are visited.
    changed = before.entries - after.entries
    if changed or before.others:
        visit = [*before.others, *(before.names[entry] for entry in changed)]
        if len(visit) > 1:
            visit.sort(key=before.positions.__getitem__)
    else:
        visit = []
    extra = after.entries - before.entries
    if extra or after.others:
        candidates = (*after.others, *(after.names[entry] for entry in extra))
        added = [name for name in candidates if name not in before.nodes]
        if len(added) > 1:
            added.sort(key=after.positions.__getitem__)
    else:
        added = []
    if visit or added:
        _compare_properties(ctx, original, update, before, after, visit, added)
    if before.only_properties and after.only_properties:
        return  # no dependencies, content model keywords or limits on either side: nothing else differs
    original_deps, update_deps = original.property_dependencies(), update.property_dependencies()
    original_schemas, update_schemas = original.schema_dependencies(), update.schema_dependencies()
    if original_deps or update_deps or original_schemas or update_schemas:
        _compare_dependencies(ctx, original_deps, update_deps, original_schemas, update_schemas)
    _compare_additional(ctx, original, update)
    compare_unevaluated(ctx, UNEVALUATED_PROPERTIES, _unevaluated(original), _unevaluated(update))
    check_limits(ctx, OBJECT_LIMITS, original, update)


def _compare_required(ctx: Context, before: PropertyIndex, after: PropertyIndex) -> None:
    """Properties on both sides that are required on one side only, in the original's order."""
    names = [
        name for name in before.required ^ after.required if name in before.nodes and name in after.nodes
    ]
    if not names:
        return
    names.sort(key=before.positions.__getitem__)
    with ctx.enter("required"):
        for name in names:
            if name in before.required:
                ctx.add(D.REQUIRED_ATTRIBUTE_REMOVED, name)
            else:
                ctx.add(
                    D.REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED
                    if _has_default(after.nodes[name])
                    else D.REQUIRED_ATTRIBUTE_ADDED,
                    name,
                )


def _compare_properties(
    ctx: Context,
    original: Node,
    update: Node,
    before: PropertyIndex,
    after: PropertyIndex,
    visit: list[str],
    added: list[str],
) -> None:
    """The original's properties in `visit` (compared, or removed), then the update's `added` ones."""
    memo, path = ctx.memo, ctx.path
    path.append("properties")
    try:
        for name in visit:
            in_update = after.nodes.get(name)
            if in_update is None:
                path.append(name)
                try:
                    _property_removed(ctx, name, before.nodes[name], update, after)
                finally:
                    path.pop()
                continue
            # Pairs compared before (see `Context.compare_at`) cost one lookup.
            known = memo.get((before.keys[name], after.keys[name]))
            if known is None:
                ctx.compare_at(name, before.nodes[name], in_update)
            elif known:
                ctx.extend_at(name, known)
        for name in added:
            path.append(name)
            try:
                _property_added(ctx, name, after.nodes[name], original, before, name in after.required)
            finally:
                path.pop()
    finally:
        path.pop()


def _compare_dependencies(
    ctx: Context,
    original_deps: Mapping[str, set[str]],
    update_deps: Mapping[str, set[str]],
    original_schemas: Mapping[str, Node],
    update_schemas: Mapping[str, Node],
) -> None:
    with ctx.enter("dependencies"):
        for name in _union(original_deps, update_deps):
            with ctx.enter(name):
                before, after = original_deps.get(name), update_deps.get(name)
                if after is None:
                    ctx.add(D.DEPENDENCY_ARRAY_REMOVED)
                elif before is None:
                    ctx.add(D.DEPENDENCY_ARRAY_ADDED)
                elif before != after:
                    if after >= before:
                        ctx.add(D.DEPENDENCY_ARRAY_EXTENDED)
                    elif before >= after:
                        ctx.add(D.DEPENDENCY_ARRAY_NARROWED)
                    else:
                        ctx.add(D.DEPENDENCY_ARRAY_CHANGED)
        for name in _union(original_schemas, update_schemas):
            with ctx.enter(name):
                if name not in update_schemas:
                    ctx.add(D.DEPENDENCY_SCHEMA_REMOVED)
                elif name not in original_schemas:
                    ctx.add(D.DEPENDENCY_SCHEMA_ADDED)
                else:
                    ctx.compare(original_schemas[name], update_schemas[name])


def _compare_additional(ctx: Context, original: Node, update: Node) -> None:
    before_value, after_value = original.get("additionalProperties"), update.get("additionalProperties")
    if before_value is None and after_value is None:
        return  # both absent: open on both sides, nothing to compare
    with ctx.enter("additionalProperties"):
        if original.permits_additional_properties() != update.permits_additional_properties():
            ctx.add(
                D.ADDITIONAL_PROPERTIES_ADDED
                if update.permits_additional_properties()
                else D.ADDITIONAL_PROPERTIES_REMOVED
            )
        else:
            before_schema, after_schema = (
                original.additional_properties_schema(),
                update.additional_properties_schema(),
            )
            if before_schema is None and after_schema is not None:
                ctx.add(D.ADDITIONAL_PROPERTIES_NARROWED)
            elif after_schema is None and before_schema is not None:
                ctx.add(D.ADDITIONAL_PROPERTIES_EXTENDED)
            else:
                ctx.compare(before_schema, after_schema)


def _property_removed(ctx: Context, name: str, before: Node, update: Node, after: PropertyIndex) -> None:
    # Only the reader's content model matters when it drops a property the writer may write.
    if after.is_open(update):
        ctx.add(D.PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL)
        return
    partial = _partial_property_schema(update, name)
    if partial is not None:
        ctx.covered(
            before,
            partial,
            D.PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
            D.PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
        )
    elif before.kind is Kind.FALSE:
        ctx.add(D.PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL)
    else:
        ctx.add(D.PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL)


def _property_added(
    ctx: Context, name: str, after: Node, original: Node, before: PropertyIndex, required: bool
) -> None:
    # Only the writer's content model matters when the reader adds a property.
    if before.is_open(original):
        ctx.add(
            D.PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL
            if after.is_empty
            else D.PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL
        )
        return
    partial = _partial_property_schema(original, name)
    if partial is not None:
        ctx.covered(
            partial,
            after,
            D.PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
            D.PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
        )
    if required:
        ctx.add(
            D.REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL
            if _has_default(after)
            else D.REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL
        )
    else:
        ctx.add(D.OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL)


def _unevaluated(node: Node) -> Node | None:
    """unevaluatedProperties where it can apply: `additionalProperties: true` evaluates every property."""
    return None if node.get("additionalProperties") is True else node.unevaluated_properties()


def _has_default(node: Node) -> bool:
    return isinstance(node.json, Mapping) and "default" in node.json


def _partial_property_schema(node: Node, name: str) -> Node | None:
    for pattern, schema in node.pattern_properties():
        try:
            if re.search(pattern, name):
                return schema
        except re.error:
            continue  # the metaschema checks `pattern`, not patternProperties keys; a bad one matches nothing
    additional = node.additional_properties_schema()
    if additional is not None:
        return additional
    # With additionalProperties absent, a schema in unevaluatedProperties partly opens the content model.
    unevaluated = node.unevaluated_properties()
    if (
        node.get("additionalProperties") is None
        and unevaluated is not None
        and unevaluated.kind is not Kind.FALSE
        and not unevaluated.is_empty
    ):
        return unevaluated
    return None


def _union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """Keys of both, in a stable order so that messages come out in a stable order."""
    return list(dict.fromkeys([*first, *second]))
