"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kschema.api.state import INDEX, METRICS

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    index = request.app[INDEX]
    if not index.loaded:
        return web.json_response({"status": "loading"}, status=503)
    return web.json_response({"status": "ready", "seq": index.seq})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
