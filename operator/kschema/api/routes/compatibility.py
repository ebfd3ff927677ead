"""Compatibility checks of a candidate schema against a subject's versions, run in a worker process
within the check's budget and deadline."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from kschema.api.routes.common import (
    body_contract,
    body_schema,
    flag,
    object_body,
    ready_index,
    respond,
    version_of,
)
from kschema.api.state import POOL, SETTINGS
from kschema.compute import tasks
from kschema.contracts import Contract, group_of, registered_contract

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


async def _compatibility(request: web.Request, version: str | None) -> web.Response:
    index = ready_index(request)
    subject = request.match_info["subject"]
    verbose = flag(request, "verbose")
    body = await object_body(request)
    if version is not None:
        history = [version_of(index, subject, version, include_deleted=False)]
    else:
        history = index.versions(subject, include_deleted=False)
    new = body_schema(index, body)
    record = index.subject(subject)
    # A Subject without spec.compatibility inherits the cluster-wide level, as the operator applies it.
    declared = record is not None and record.compatibility_declared
    level = (
        record.compatibility
        if record is not None and declared
        else request.app[SETTINGS].global_compatibility
    )
    if record is not None and record.contract.compatibility_group:
        # Confluent's compatibility groups: only versions of the candidate's group count.
        config = record.contract
        latest = history[-1] if history else None
        previous = index.schema(latest.schema_id).contract if latest is not None else None  # type: ignore[union-attr]
        group = group_of(config, registered_contract(config, body_contract(body) or Contract(), previous))
        history = [v for v in history if group_of(config, index.schema(v.schema_id).contract) == group]  # type: ignore[union-attr]
    # Parsing and checking run in a worker process, within the check's budget and deadline.
    result = await request.app[POOL].run(
        tasks.check, new, None, [(v.version, index.schema_text(v.schema_id)) for v in history], level
    )
    payload: dict[str, Any] = {"is_compatible": result.compatible}
    if verbose:
        payload["messages"] = result.messages
    return respond(payload)


@routes.post("/compatibility/subjects/{subject}/versions/{version}")
async def compatibility_with_version(request: web.Request) -> web.Response:
    return await _compatibility(request, request.match_info["version"])


@routes.post("/compatibility/subjects/{subject}/versions")
async def compatibility_with_history(request: web.Request) -> web.Response:
    return await _compatibility(request, None)
