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
    return _measure(payload, limit)[0]


def _measure(payload: Any, limit: int) -> tuple[int, int]:
    """(nesting depth, number of values) of a decoded JSON value; stops once deeper than `limit`."""
    deepest = values = 0
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        node, depth = stack.pop()
        values += 1
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
    return deepest, values


def validate_payload(schema: ParsedSchema, payload: Any) -> list[ValidationIssue]:
    """`schema.validate(payload)` within the validation budget, the same for every format. A payload
    nested deeper than `LIMITS.payload_depth` is refused before any validator sees it (validators recurse
    with the payload). Every value of the payload costs a step up front (Avro and Protobuf validation is
    linear in the payload), and the JSON Schema validator spends a step per keyword it applies; past the
    budget or the deadline, `TooComplexError`."""
    depth, values = _measure(payload, LIMITS.payload_depth)
    if depth > LIMITS.payload_depth:
        return [ValidationIssue("", f"payload nests deeper than {LIMITS.payload_depth} levels")]
    with work_budget("the payload validation", LIMITS.validate_steps, LIMITS.validate_seconds) as budget:
        budget.spend(values)
        return schema.validate(payload)
