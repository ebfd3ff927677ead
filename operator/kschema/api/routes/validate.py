"""kschema's data-validation extension of the read API: one payload, or a batch of payloads, checked
against a registered version's schema and its data-contract CONDITION rules (CEL).

Bounds: a batch holds at most `MAX_BATCH_PAYLOADS` payloads in at most `MAX_BATCH_BODY_BYTES`; CEL rules
run with a step budget per payload and a deadline per request (`RULE_DEADLINE_SECONDS` for one payload,
`BATCH_DEADLINE_SECONDS` for a batch). A batch is evaluated in a worker thread so the event loop keeps
answering schema lookups meanwhile."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from kschema.api.errors import ApiError, bad_request
from kschema.api.index import RegistryIndex
from kschema.api.routes.common import json_body, lifecycle_headers, ready_index, respond, version_of
from kschema.contracts.cel_evaluation import CelBudgetExceeded
from kschema.contracts.conditions import ConditionSet
from kschema.formats import ParsedSchema
from kschema.formats.budget import LIMITS, TooComplexError
from kschema.formats.validation import payload_depth
from kschema.formats.validation import validate_payload as budgeted_validation
from kschema.store import SubjectVersion

routes = web.RouteTableDef()

MAX_BATCH_PAYLOADS = 1000
MAX_BATCH_BODY_BYTES = 4 * 1024 * 1024
RULE_DEADLINE_SECONDS = 0.5
BATCH_DEADLINE_SECONDS = 5.0


def _verdict(
    parsed: ParsedSchema, conditions: ConditionSet, payload: Any, deadline: float
) -> tuple[bool, list[dict[str, str]]]:
    """Schema first; the rules only see payloads that conform (as in the clients, where a record that
    cannot be serialized never reaches them)."""
    try:
        issues = budgeted_validation(parsed, payload)
    except TooComplexError as exc:
        return False, [{"location": "", "message": str(exc)}]
    if issues:
        return False, [{"location": i.location, "message": i.message} for i in issues]
    if not conditions:
        return True, []
    try:
        failures = conditions.evaluate(payload, deadline)
    except CelBudgetExceeded as exc:
        return False, [{"location": "", "message": f"the data-contract rules were not all evaluated: {exc}"}]
    return not failures, [{"location": "", "rule": f.rule, "message": f.message} for f in failures]


def _head(found: SubjectVersion, conditions: ConditionSet) -> dict[str, Any]:
    return {
        "subject": found.subject,
        "version": found.version,
        "id": found.schema_id,
        "rules": [rule.name for rule, _ in conditions.checked],
        "rulesNotChecked": conditions.skipped,
    }


def _target(request: web.Request) -> tuple[RegistryIndex, SubjectVersion, ParsedSchema, ConditionSet]:
    index = ready_index(request)
    found = version_of(
        index, request.match_info["subject"], request.match_info["version"], include_deleted=False
    )
    return index, found, index.parsed(found.schema_id), index.conditions(found.schema_id)


@routes.post("/kschema/v1/subjects/{subject}/versions/{version}/validate")
async def validate_payload(request: web.Request) -> web.Response:
    """Checks one JSON payload (the request body) against a registered version and its CEL conditions;
    a broken rule is named in `errors[].rule`."""
    index, found, parsed, conditions = _target(request)
    payload = await json_body(request)
    if payload_depth(payload) > LIMITS.payload_depth:
        raise bad_request(f"request body nests deeper than {LIMITS.payload_depth} levels")
    valid, errors = _verdict(parsed, conditions, payload, time.monotonic() + RULE_DEADLINE_SECONDS)
    return respond(
        {**_head(found, conditions), "valid": valid, "errors": errors}, lifecycle_headers(index, found)
    )


@routes.post("/kschema/v1/subjects/{subject}/versions/{version}/validate/batch")
async def validate_batch(request: web.Request) -> web.Response:
    """Checks many payloads in one request: body `{"payloads": [...]}`, answer one verdict per payload
    in order (`results[i].valid`, `results[i].errors`) and the count of valid ones."""
    index, found, parsed, conditions = _target(request)
    if request.content_length is not None and request.content_length > MAX_BATCH_BODY_BYTES:
        raise ApiError(413, 413, f"a batch body is limited to {MAX_BATCH_BODY_BYTES} bytes")
    body = await json_body(request)
    payloads = body.get("payloads") if isinstance(body, dict) else None
    if not isinstance(payloads, list):
        raise bad_request('request body must be an object {"payloads": [...]}')
    if len(payloads) > MAX_BATCH_PAYLOADS:
        raise bad_request(f"a batch holds at most {MAX_BATCH_PAYLOADS} payloads, got {len(payloads)}")
    deadline = time.monotonic() + BATCH_DEADLINE_SECONDS

    def run() -> list[dict[str, Any]]:
        results = []
        for payload in payloads:
            valid, errors = _verdict(parsed, conditions, payload, deadline)
            results.append({"valid": valid, "errors": errors})
        return results

    results = await asyncio.to_thread(run)
    return respond(
        {**_head(found, conditions), "valid": sum(r["valid"] for r in results), "results": results},
        lifecycle_headers(index, found),
    )
