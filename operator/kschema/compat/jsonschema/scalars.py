"""Rules for strings, numbers, enums and constants."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from kschema.compat.jsonschema.differences import DifferenceType as D
from kschema.compat.jsonschema.limits import NUMBER_LIMITS, STRING_LIMITS, check_limits, number
from kschema.compat.jsonschema.model import Node

if TYPE_CHECKING:
    from kschema.compat.jsonschema.context import Context

__all__ = ["compare_const", "compare_enum", "compare_number", "compare_string", "value_key"]


def compare_string(ctx: Context, original: Node, update: Node) -> None:
    check_limits(ctx, STRING_LIMITS, original, update)
    original_pattern, update_pattern = original.get("pattern"), update.get("pattern")
    if original_pattern is None and update_pattern is not None:
        ctx.add(D.PATTERN_ADDED, "pattern")
    elif original_pattern is not None and update_pattern is None:
        ctx.add(D.PATTERN_REMOVED, "pattern")
    elif original_pattern != update_pattern:
        ctx.add(D.PATTERN_CHANGED, "pattern")


def compare_number(ctx: Context, original: Node, update: Node) -> None:
    check_limits(ctx, NUMBER_LIMITS, original, update)
    original_multiple, update_multiple = (
        number(original.get("multipleOf")),
        number(update.get("multipleOf")),
    )
    if original_multiple != update_multiple:
        if original_multiple is None:
            ctx.add(D.MULTIPLE_OF_ADDED, "multipleOf")
        elif update_multiple is None:
            ctx.add(D.MULTIPLE_OF_REMOVED, "multipleOf")
        elif original_multiple and (update_multiple / original_multiple).denominator == 1:
            ctx.add(D.MULTIPLE_OF_EXPANDED, "multipleOf")
        elif update_multiple and (original_multiple / update_multiple).denominator == 1:
            ctx.add(D.MULTIPLE_OF_REDUCED, "multipleOf")
        else:
            ctx.add(D.MULTIPLE_OF_CHANGED, "multipleOf")
    if original.integer != update.integer:
        ctx.add(D.TYPE_EXTENDED if original.integer else D.TYPE_NARROWED)


def value_key(value: Any) -> str:
    """JSON equality as Java's JSON values have it: 1, 1.0 and true are three different values."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def compare_enum(ctx: Context, original: Node, update: Node) -> None:
    original_values = {value_key(v) for v in original.get("enum") or []}
    update_values = {value_key(v) for v in update.get("enum") or []}
    if original_values == update_values:
        return
    if update_values >= original_values:
        ctx.add(D.ENUM_ARRAY_EXTENDED, "enum")
    elif original_values >= update_values:
        ctx.add(D.ENUM_ARRAY_NARROWED, "enum")
    else:
        ctx.add(D.ENUM_ARRAY_CHANGED, "enum")


def compare_const(ctx: Context, original: Node, update: Node) -> None:
    if value_key(original.get("const")) != value_key(update.get("const")):
        ctx.add(D.ENUM_ARRAY_CHANGED, "const")
