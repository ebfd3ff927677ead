"""Payload validation with a work budget and a nesting bound, the same for every format."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from kschema.formats.base import ParsedSchema, ValidationIssue
from kschema.formats.budget import LIMITS, work_budget

__all__ = ["payload_depth", "validate_payload"]


def payload_depth(payload: Any, limit: int = LIMITS.payload_depth) -> int:
    """How deeply a decoded JSON value nests (objects and arrays), counted without recursion and
    stopping once past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        node, depth = stack.pop()
        children: Iterator[Any]
        if isinstance(node, Mapping):
            children = iter(node.values())
        elif isinstance(node, list | tuple):
            children = iter(node)
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def validate_payload(schema: ParsedSchema, payload: Any) -> list[ValidationIssue]:
    """`schema.validate(payload)` within the validation budget. A payload nested deeper than
    `LIMITS.payload_depth` is refused before any validator sees it (validators recurse with the payload);
    one that needs more work than the budget raises `TooComplexError`."""
    if payload_depth(payload) > LIMITS.payload_depth:
        return [ValidationIssue("", f"payload nests deeper than {LIMITS.payload_depth} levels")]
    with work_budget("the payload validation", LIMITS.validate_steps, LIMITS.validate_seconds):
        return schema.validate(payload)
