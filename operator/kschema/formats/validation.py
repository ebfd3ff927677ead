"""Payload validation with a work budget and a nesting bound, the same for every format."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

from kschema.formats.base import ParsedSchema, SchemaFormat, ValidationIssue
from kschema.formats.budget import LIMITS, TooComplexError, spend, work_budget

__all__ = ["payload_depth", "validate_payload"]

_WHAT: Final = "the payload validation"


def payload_depth(payload: Any, limit: int = LIMITS.payload_depth) -> int:
    """How deeply a decoded JSON value nests (objects and arrays), counted without recursion and
    stopping once past `limit`."""
    return _measure(payload, limit)[0]


_SCALARS: Final = frozenset({str, int, float, bool, type(None), bytes})


def _measure(payload: Any, limit: int) -> tuple[int, int]:
    """(nesting depth, number of values) of a decoded JSON value; stops once deeper than `limit`.
    Scalars (most of a payload) are counted by their container's length and never stacked."""
    if type(payload) in _SCALARS:
        return 0, 1
    deepest, values = 0, 1
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        node, depth = stack.pop()
        children: Collection[Any]
        if isinstance(node, Mapping):
            children = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
        values += len(children)
        if not _SCALARS.issuperset(map(type, children)):  # a flat container costs one C-level pass
            stack.extend((child, depth + 1) for child in children if type(child) not in _SCALARS)
    return deepest, values


def validate_payload(schema: ParsedSchema, payload: Any) -> list[ValidationIssue]:
    """`schema.validate(payload)` within the validation budget, the same for every format. A payload
    nested deeper than `LIMITS.payload_depth` is refused before any validator sees it (validators recurse
    with the payload). Every value of the payload costs a step up front (Avro and Protobuf validation is
    linear in the payload), and the JSON Schema validator spends a step per keyword it applies; past the
    budget or the deadline, `TooComplexError`."""
    values = schema.validation_cost
    if values is None:
        depth, values = _measure(payload, LIMITS.payload_depth)
        if depth > LIMITS.payload_depth:
            return [ValidationIssue("", f"payload nests deeper than {LIMITS.payload_depth} levels")]
    # else bounded by the schema (a flat Avro record, say), whatever the payload: measuring the payload
    # would cost about as much as validating it, and the schema's cost is spent instead.
    if schema.format is not SchemaFormat.JSON:
        # Avro and Protobuf validation is one library call, linear in the payload and spending nothing
        # itself: the up-front count is its whole budget, checked here without making a budget current
        # (an outer budget, if one is current, pays for it).
        spend(values)
        if values > LIMITS.validate_steps:
            raise TooComplexError(f"{_WHAT} needs more than {LIMITS.validate_steps} steps")
        return schema.validate(payload)
    with work_budget(_WHAT, LIMITS.validate_steps, LIMITS.validate_seconds) as budget:
        budget.spend(values)
        return schema.validate(payload)
