"""The read API's application factory."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from kschema.api.auth import Authenticator, AuthMode, TokenReviewer
from kschema.api.feed import FeedFollower
from kschema.api.handling import add_routes
from kschema.api.index import RegistryIndex
from kschema.api.metrics import ApiMetrics
from kschema.api.routes import ROUTE_TABLES
from kschema.api.settings import ApiSettings
from kschema.api.state import AUTHENTICATOR, FOLLOWER, INDEX, METRICS, POOL, SETTINGS
from kschema.api.tokenreview import KubeTokenReviewer
from kschema.compute import WorkerPool
from kschema.store import RegistryStore

log = logging.getLogger(__name__)


def create_app(
    settings: ApiSettings,
    store: RegistryStore,
    pool: WorkerPool | None = None,
    *,
    reviewer: TokenReviewer | None = None,
) -> web.Application:
    """Builds the app; nothing runs until it starts. The caller owns `store` (opens and closes it): in
    `kschema run` one store serves the operator, the webhook and this API. Parsing, checks and
    validation run in `pool`'s worker processes; without one, the app starts and stops its own. With
    authentication on, tokens are reviewed by `reviewer`, by default the Kubernetes TokenReview API
    (connected at start)."""
    metrics = ApiMetrics()
    index = RegistryIndex()
    metrics.versions_loaded.set_function(lambda: index.version_count)
    metrics.schemas_loaded.set_function(lambda: index.schema_count)
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[INDEX] = index
    app[METRICS] = metrics
    app[FOLLOWER] = FeedFollower(store, index, metrics, settings)
    # Errors, metrics, authentication and negotiation wrap each route (see `handling.py`).
    add_routes(app, ROUTE_TABLES, metrics, settings.auth.mode, lambda request: request.app[AUTHENTICATOR])
    if pool is None:
        app[POOL] = WorkerPool()
        app.cleanup_ctx.append(_own_pool)
    else:
        app[POOL] = pool
    app.cleanup_ctx.append(_follow_store)
    if settings.auth.mode is not AuthMode.OFF:
        app.cleanup_ctx.append(functools.partial(_review_tokens, reviewer=reviewer))
    return app


async def _own_pool(app: web.Application) -> AsyncIterator[None]:
    async with app[POOL]:
        yield


async def _review_tokens(app: web.Application, *, reviewer: TokenReviewer | None) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if reviewer is not None:
        app[AUTHENTICATOR] = Authenticator(settings.auth, reviewer)
        yield
        return
    kube = await KubeTokenReviewer.connect(settings.kubeconfig)
    app[AUTHENTICATOR] = Authenticator(settings.auth, kube)
    log.info(
        "Enabled bearer-token authentication mode=%s audience=%s", settings.auth.mode, settings.auth.audience
    )
    try:
        yield
    finally:
        await kube.close()


async def _follow_store(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[FOLLOWER].run(), name="kschema-api-feed")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
