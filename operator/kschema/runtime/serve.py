"""Runs the chosen components in one event loop over one store until SIGTERM or SIGINT, then stops them
in order and closes the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from kschema.api.server import create_runner
from kschema.api.settings import ApiSettings
from kschema.compute import WorkerPool
from kschema.operator.main import install_stop_signals, run_operator
from kschema.runtime.config import RuntimeConfig
from kschema.runtime.tempdir import warn_if_temp_dir_unexpected
from kschema.store.base import RegistryStore, StoreUnavailableError
from kschema.store.factory import open_store
from kschema.webhook import run_webhook

logger = logging.getLogger(__name__)

# How long start-up waits for an unreachable store (PostgreSQL started beside kschema, as in the chart's
# postgres topology, or restarting) before the process gives up and exits: inside the chart's startup
# probe (90 x 2 s), so a database that comes up a little later is no restart, and one that never does is.
STORE_WAIT_SECONDS = 120.0
STORE_RETRY_MAX_SECONDS = 10.0


async def run_api(
    settings: ApiSettings, store: RegistryStore, *, stop: asyncio.Event, pool: WorkerPool
) -> None:
    runner = create_runner(settings, store, pool)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        logger.info("Started the read API address=%s:%s", settings.host, settings.port)
        await stop.wait()
    finally:
        await runner.cleanup()
        logger.info("Stopped the read API")


async def serve(config: RuntimeConfig) -> None:
    stop = asyncio.Event()
    # The operator puts these handlers back after kopf has installed its own (see `run_operator`).
    install_stop_signals(stop)
    warn_if_temp_dir_unexpected()
    store = await open_store_waiting(config.store_url, stop)
    logger.info("Opened the registry store components=%s", ",".join(config.components))
    try:
        # One pool of worker processes does the CPU work of every component in this process.
        async with WorkerPool(warm=True) as pool, asyncio.TaskGroup() as group:
            if "operator" in config.components:
                group.create_task(
                    _until_stopped(run_operator(config.operator, store, stop=stop, pool=pool), stop)
                )
            if "webhook" in config.components:
                group.create_task(
                    _until_stopped(run_webhook(config.webhook, store, stop=stop, pool=pool), stop)
                )
            if "api" in config.components:
                group.create_task(_until_stopped(run_api(config.api, store, stop=stop, pool=pool), stop))
    finally:
        with contextlib.suppress(Exception):
            await store.close()
        logger.info("Stopped kschema")


async def open_store_waiting(
    url: str, stop: asyncio.Event, *, wait_seconds: float = STORE_WAIT_SECONDS
) -> RegistryStore:
    """Opens the store, retrying with backoff while it is unavailable, for at most `wait_seconds` (or until
    `stop`): then the last error stops start-up. Other errors (a bad URL, a failed migration) stop it at
    once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    delay = 0.5
    while True:
        try:
            return await open_store(url)
        except StoreUnavailableError as error:
            if stop.is_set() or loop.time() + delay > deadline:
                raise
            logger.warning("Waiting for the registry store retry_in=%.1fs error=%s", delay, error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, STORE_RETRY_MAX_SECONDS)


async def _until_stopped(component: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """A component that ends on its own (a failure) stops the others too, so the process exits and
    its supervisor restarts it rather than serving half of kschema."""
    try:
        await component
    finally:
        stop.set()
