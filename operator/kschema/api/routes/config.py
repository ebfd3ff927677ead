"""Compatibility configuration, modes and associations: read from the Subject resources, never
written through this API."""

from __future__ import annotations

import logging

from aiohttp import web

from kschema.api.errors import (
    read_only,
    subject_config_not_found,
    subject_mode_not_found,
)
from kschema.api.routes.common import (
    flag,
    ready_index,
    respond,
)
from kschema.api.state import SETTINGS

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.get("/config")
async def global_config(request: web.Request) -> web.Response:
    return respond({"compatibilityLevel": request.app[SETTINGS].global_compatibility.value})


@routes.get("/config/{subject}")
async def subject_config(request: web.Request) -> web.Response:
    index = ready_index(request)
    subject = request.match_info["subject"]
    record = index.subject(subject)
    # Confluent's subject config also carries the data-contract group, defaults and overrides.
    contract = record.contract.to_json() if record is not None and not record.deleted else {}
    if record is None or record.deleted or not record.compatibility_declared:
        # Confluent: a subject without its own level has no subject config unless the global one is asked.
        if flag(request, "defaultToGlobal"):
            return respond(
                {"compatibilityLevel": request.app[SETTINGS].global_compatibility.value, **contract}
            )
        if not contract:
            raise subject_config_not_found(subject)
        return respond(contract)
    return respond({"compatibilityLevel": record.compatibility.value, **contract})


@routes.get("/mode")
async def mode(request: web.Request) -> web.Response:
    # The whole registry is read-only through this API.
    return respond({"mode": "READONLY"})


@routes.get("/mode/{subject}")
async def subject_mode(request: web.Request) -> web.Response:
    """Every known subject is read-only here; an unknown one has no mode, as in Confluent (40409)."""
    index = ready_index(request)
    subject = request.match_info["subject"]
    if not index.has_subject(subject) and not flag(request, "defaultToGlobal"):
        raise subject_mode_not_found(subject)
    return respond({"mode": "READONLY"})


@routes.route("PUT", "/config")
@routes.route("DELETE", "/config")
async def write_global_config(request: web.Request) -> web.Response:
    raise read_only("The global configuration")


@routes.route("PUT", "/mode")
@routes.route("DELETE", "/mode")
async def write_global_mode(request: web.Request) -> web.Response:
    raise read_only("The global mode")


@routes.get("/associations/resources/{namespace}/{name}")
@routes.get("/associations/subjects/{subject}")
async def associations(request: web.Request) -> web.Response:
    # kschema binds topics to subjects by name (TopicNameStrategy); it stores no associations, and an
    # empty list makes clients fall back to that strategy.
    return respond([])
