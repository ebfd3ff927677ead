"""The read API's application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from kschema.api.errors import error_middleware
from kschema.api.feed import FeedFollower
from kschema.api.index import RegistryIndex
from kschema.api.listing import listing_routes
from kschema.api.metrics import ApiMetrics
from kschema.api.negotiation import accept_middleware
from kschema.api.routes import routes
from kschema.api.settings import ApiSettings
from kschema.api.state import FOLLOWER, INDEX, METRICS, SETTINGS
from kschema.api.validate import routes as validate_routes
from kschema.store import RegistryStore


def create_app(settings: ApiSettings, store: RegistryStore) -> web.Application:
    """Builds the app; nothing runs until it starts. The caller owns `store` (opens and closes it): in
    `kschema run` one store serves the operator, the webhook and this API."""
    metrics = ApiMetrics()
    index = RegistryIndex()
    metrics.versions_loaded.set_function(lambda: index.version_count)
    metrics.schemas_loaded.set_function(lambda: index.schema_count)
    app = web.Application(
        middlewares=[error_middleware(metrics), accept_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[INDEX] = index
    app[METRICS] = metrics
    app[FOLLOWER] = FeedFollower(store, index, metrics, settings)
    app.router.add_routes(routes)
    app.router.add_routes(validate_routes)
    app.router.add_routes(listing_routes)
    app.cleanup_ctx.append(_follow_store)
    return app


async def _follow_store(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[FOLLOWER].run(), name="kschema-api-feed")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
