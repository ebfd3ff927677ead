"""Rules for objects: properties, required properties, dependencies, and open, partly open or closed
content models."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from kschema.compat.jsonschema.differences import DifferenceType as D
from kschema.compat.jsonschema.limits import OBJECT_LIMITS, check_limits
from kschema.compat.jsonschema.model import Kind, Node, PropertyIndex
from kschema.compat.jsonschema.unevaluated import UNEVALUATED_PROPERTIES, compare_unevaluated

if TYPE_CHECKING:
    from kschema.compat.jsonschema.context import Context

__all__ = ["compare_object"]


def compare_object(ctx: Context, original: Node, update: Node) -> None:
    original_properties, update_properties = original.properties(), update.properties()
    original_required, update_required = original.required(), update.required()
    if original_required or update_required:
        with ctx.enter("required"):
            for name in original_properties:
                if name not in update_properties:
                    continue
                if name in original_required and name not in update_required:
                    ctx.add(D.REQUIRED_ATTRIBUTE_REMOVED, name)
                elif name not in original_required and name in update_required:
                    with_default = _has_default(update_properties[name])
                    ctx.add(
                        D.REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED
                        if with_default
                        else D.REQUIRED_ATTRIBUTE_ADDED,
                        name,
                    )
    memo = ctx.memo
    original_keyed, update_keyed = original.keyed_properties(), update.keyed_properties()
    original_index, update_index = original.property_index(), update.property_index()
    unchanged = _unchanged(ctx, original_index, update_index)
    with ctx.enter("properties"):
        # The original's properties in order, then the update's new ones: the order of `_union`.
        if len(unchanged) == len(original_keyed):
            names = []  # every property unchanged (`unchanged` holds only the original's names)
        elif unchanged:
            names = sorted(original_keyed.keys() - unchanged, key=original_index.positions.__getitem__)
        else:
            names = list(original_keyed)
        for name in names:
            in_original, original_key = original_keyed[name]
            found = update_keyed.get(name)
            if found is None:
                with ctx.enter(name):
                    _compare_property(
                        ctx, original, update, name, original_properties, update_properties, update_required
                    )
                continue
            # Pairs compared before (see `Context.compare_at`) cost one lookup.
            in_update, update_key = found
            known = memo.get((original_key, update_key))
            if known is None:
                ctx.compare_at(name, in_original, in_update)
            elif known:
                ctx.extend_at(name, known)
        added = update_properties.keys() - original_properties.keys()
        for name in sorted(added, key=update_index.positions.__getitem__):
            with ctx.enter(name):
                _compare_property(
                    ctx, original, update, name, original_properties, update_properties, update_required
                )
    if original.only_properties() and update.only_properties():
        return  # no dependencies, content model keywords or limits on either side: nothing else differs
    original_deps, update_deps = original.property_dependencies(), update.property_dependencies()
    original_schemas, update_schemas = original.schema_dependencies(), update.schema_dependencies()
    if original_deps or update_deps or original_schemas or update_schemas:
        _compare_dependencies(ctx, original_deps, update_deps, original_schemas, update_schemas)
    _compare_additional(ctx, original, update)
    compare_unevaluated(ctx, UNEVALUATED_PROPERTIES, _unevaluated(original), _unevaluated(update))
    check_limits(ctx, OBJECT_LIMITS, original, update)


def _unchanged(ctx: Context, original: PropertyIndex, update: PropertyIndex) -> frozenset[str]:
    """Properties with the same content on both sides whose comparison finds no difference: most of a
    record's, between two of its versions. Found with set operations per distinct content, each content
    compared with itself once (and memoised), as the loop over the properties would have."""
    unchanged: frozenset[str] = frozenset()
    memo = ctx.memo
    for key in original.names.keys() & update.names.keys():
        known = memo.get((key, key))
        if known is None:
            ctx.sub().compare(original.by_key[key], update.by_key[key])  # its differences are memoised
            known = memo.get((key, key))  # still None while that pair is being compared (a cycle)
        if known is not None and not known:
            unchanged |= original.names[key] & update.names[key]
    return unchanged


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


def _compare_property(
    ctx: Context,
    original: Node,
    update: Node,
    name: str,
    original_properties: Mapping[str, Node],
    update_properties: Mapping[str, Node],
    update_required: set[str],
) -> None:
    before, after = original_properties.get(name), update_properties.get(name)
    if after is None and before is not None:
        # Only the reader's content model matters when it drops a property the writer may write.
        if _is_open_object(update):
            ctx.add(D.PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL)
            return
        partial = _partial_property_schema(update, name)
        if partial is not None:
            sub = ctx.sub()
            sub.compare(before, partial)
            ctx.extend(sub.diffs)
            ctx.add(
                D.PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                if sub.compatible
                else D.PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
            )
        elif before.kind is Kind.FALSE:
            ctx.add(D.PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL)
        else:
            ctx.add(D.PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL)
    elif before is None and after is not None:
        # Only the writer's content model matters when the reader adds a property.
        if _is_open_object(original):
            ctx.add(
                D.PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL
                if after.is_empty
                else D.PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL
            )
            return
        partial = _partial_property_schema(original, name)
        if partial is not None:
            sub = ctx.sub()
            sub.compare(partial, after)
            ctx.extend(sub.diffs)
            ctx.add(
                D.PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                if sub.compatible
                else D.PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
            )
        if name in update_required:
            ctx.add(
                D.REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL
                if _has_default(after)
                else D.REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL
            )
        else:
            ctx.add(D.OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL)
    else:
        ctx.compare(before, after)


def _unevaluated(node: Node) -> Node | None:
    """unevaluatedProperties where it can apply: `additionalProperties: true` evaluates every property."""
    return None if node.get("additionalProperties") is True else node.unevaluated_properties()


def _has_default(node: Node) -> bool:
    return isinstance(node.json, Mapping) and "default" in node.json


def _is_open_object(node: Node) -> bool:
    """Fully open: no patternProperties, additionalProperties absent or `true`, and no unevaluatedProperties
    other than an empty schema."""
    if node.pattern_properties() or node.additional_properties_schema() is not None:
        return False
    if not node.permits_additional_properties():
        return False
    if node.get("additionalProperties") is True:
        return True  # every property is evaluated, so unevaluatedProperties never applies
    unevaluated = node.unevaluated_properties()
    return unevaluated is None or unevaluated.is_empty


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
