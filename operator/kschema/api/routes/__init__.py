"""The read API's routes, one module per resource. `ROUTE_TABLES` is the app's whole route table, in the
order aiohttp matches it: the lookups clients make most often come first within each path prefix."""

from __future__ import annotations

from aiohttp import web

from kschema.api.routes import compatibility, config, health, listing, schemas, subjects, validate

__all__ = ["ROUTE_TABLES"]

ROUTE_TABLES: tuple[web.RouteTableDef, ...] = (
    schemas.routes,
    subjects.routes,
    listing.routes,
    config.routes,
    compatibility.routes,
    validate.routes,
    health.routes,
)
