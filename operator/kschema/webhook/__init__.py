"""The validating admission webhook for `Subject` and `Schema` resources (HTTPS, aiohttp)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from kubernetes_asyncio import client, config
from kubernetes_asyncio.config.config_exception import ConfigException

from kschema.compute import WorkerPool
from kschema.kubeapi import ApiClient
from kschema.store.base import RegistryStore
from kschema.webhook.app import create_app
from kschema.webhook.cache import DeclaredCache
from kschema.webhook.metrics import WebhookMetrics
from kschema.webhook.settings import SCHEMAS_PATH, SUBJECTS_PATH, WebhookSettings
from kschema.webhook.tls import ReloadingTLS

__all__ = ["SCHEMAS_PATH", "SUBJECTS_PATH", "WebhookMetrics", "WebhookSettings", "create_app", "run_webhook"]

log = logging.getLogger(__name__)


async def _api_client(settings: WebhookSettings) -> ApiClient:
    configuration = client.Configuration()
    if settings.kubeconfig is not None:
        await config.load_kube_config(
            config_file=str(settings.kubeconfig), client_configuration=configuration
        )
    else:
        try:
            # kubernetes_asyncio leaves this function unannotated.
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except ConfigException:
            await config.load_kube_config(client_configuration=configuration)
    return ApiClient(configuration)


async def run_webhook(
    settings: WebhookSettings,
    store: RegistryStore | None,
    *,
    stop: asyncio.Event | None = None,
    pool: WorkerPool | None = None,
    metrics: WebhookMetrics | None = None,
) -> None:
    """Serves until `stop` is set or the task is cancelled, then shuts down cleanly. `store` (opened by
    the caller, who also closes it) enables the store checks: owner namespace, pinned IDs, references
    registered outside the cluster, version numbers used before. Reviews run in `pool`'s worker
    processes (a pool of its own when none is given); review durations go to `metrics` (its own when
    none is given), also served at /metrics."""
    async with contextlib.AsyncExitStack() as stack:
        if pool is None:
            pool = await stack.enter_async_context(WorkerPool(warm=True))
        await _serve(settings, store, stop, pool, metrics)


async def _serve(
    settings: WebhookSettings,
    store: RegistryStore | None,
    stop: asyncio.Event | None,
    pool: WorkerPool,
    metrics: WebhookMetrics | None,
) -> None:
    tls = ReloadingTLS(settings.cert_file, settings.key_file)
    api_client = await _api_client(settings)
    cache = DeclaredCache(api_client, settings.watch_timeout_seconds, settings.default_compatibility)
    runner = web.AppRunner(create_app(settings, cache, store, pool, metrics), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, ssl_context=tls.context)
        await site.start()
        log.info("Started the admission webhook: address=%s:%s", settings.host, settings.port)
        async with asyncio.TaskGroup() as group:
            background = [
                group.create_task(cache.run()),
                group.create_task(tls.watch(settings.tls_reload_interval)),
            ]
            try:
                await (stop.wait() if stop is not None else asyncio.Future())
            finally:
                for task in background:
                    task.cancel()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
        await api_client.close()
        log.info("Stopped the admission webhook")
