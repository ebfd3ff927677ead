"""Runs the operator in-process: `run_operator(settings, store)` until cancelled or `stop` is set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from typing import Any

import kopf

from kschema.compute import WorkerPool
from kschema.kubeapi import ApiClient
from kschema.model import FINALIZER, GROUP, TRANSFER_ANNOTATION
from kschema.operator import schemas, subjects
from kschema.operator.context import OperatorContext
from kschema.operator.deferral import Deferrals
from kschema.operator.diffbase import DIGEST_STATUS_FIELD, DigestDiffBaseStorage, MarkedProgressStorage
from kschema.operator.kube import Kube, connection_info, load_configuration
from kschema.operator.settings import OperatorSettings
from kschema.store import RegistryStore

logger = logging.getLogger(__name__)

# How long kopf waits for a stopped timer to return before it falls back to polling (kopf advises
# 0.001-0.1 s: the object's other handling waits meanwhile).
TIMER_INSTANT_EXIT_SECONDS = 0.1


def kopf_settings(settings: OperatorSettings, deferrals: Deferrals | None = None) -> kopf.OperatorSettings:
    """kopf's own settings: its bookkeeping under our group, quiet event posting, peering. The digest of
    an object whose reconcile `deferrals` holds is written by that reconcile."""
    configured = kopf.OperatorSettings()
    configured.persistence.finalizer = FINALIZER
    configured.persistence.progress_storage = MarkedProgressStorage(prefix=GROUP)
    # A digest in the status, never a copy of the spec: schema texts must not land in annotations, and a
    # reconcile writes the status only (see diffbase).
    configured.persistence.diffbase_storage = DigestDiffBaseStorage(
        field=DIGEST_STATUS_FIELD,
        prefix=GROUP,
        key="last-handled-digest",
        legacy_key="last-handled-configuration",
        watched_annotations=(TRANSFER_ANNOTATION,),
        deferred=None if deferrals is None else deferrals.holds,
    )
    # Conditions carry the outcome, and the operator posts its own Events (kschema.operator.events,
    # aggregated); one more Event per handler run from kopf's log would double the API writes.
    configured.posting.level = logging.WARNING
    configured.watching.server_timeout = 300
    configured.watching.client_timeout = 330
    configured.networking.request_timeout = 60
    # No `queueing.worker_limit`: kopf holds a worker's place while it waits for every object to be indexed,
    # so with more objects than places at start-up no handler would ever run. The reconciles take turns
    # of their own instead (`OperatorContext.turn`, `settings.reconcile_concurrency`).
    configured.queueing.idle_timeout = settings.worker_idle_seconds
    # A Subject deleted while its resync timer runs (a store read, a status patch) keeps kopf's finalizer
    # until the timer returns. kopf gives it a few event-loop cycles, then looks again only after
    # `cancellation_polling`: a minute by default, which a `kubectl delete` or an Argo CD prune would
    # wait through. Wait a little for it instead, then look again every `timer_exit_polling` seconds.
    configured.background.instant_exit_timeout = TIMER_INSTANT_EXIT_SECONDS
    configured.background.cancellation_polling = settings.timer_exit_polling
    if settings.peering is not None:
        configured.peering.name = settings.peering
        configured.peering.priority = settings.priority
    return configured


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    """A registry of our own (no module-level decorators, so two operators in one process never mix)."""
    registry = kopf.OperatorRegistry()
    tasks: list[asyncio.Task[None]] = []

    @kopf.on.login(registry=registry)
    async def login(memo: OperatorContext, **_: Any) -> kopf.ConnectionInfo:
        return await connection_info(await load_configuration(settings.kubeconfig))

    @kopf.on.startup(registry=registry)
    async def start(memo: OperatorContext, **_: Any) -> None:
        configuration = await load_configuration(settings.kubeconfig)
        kube = Kube(ApiClient(configuration))
        if settings.peering is not None:
            if settings.namespaces:
                for namespace in settings.namespaces:
                    await kube.ensure_namespaced_peering(namespace, settings.peering)
            else:
                await kube.ensure_cluster_peering(settings.peering)
        memo.attach(kube, instance=socket.gethostname())
        tasks.append(asyncio.create_task(memo.events.run(), name="kschema events"))
        logger.info(
            "Started the operator namespaces=%s peering=%s", settings.namespaces or "*", settings.peering
        )

    @kopf.on.cleanup(registry=registry)
    async def stop(memo: OperatorContext, **_: Any) -> None:
        for task in tasks:  # the recorder posts what is still waiting on its way out
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await memo.deferrals.close()  # unwritten outcomes are reconciled again at the next start
        await memo.projector.close()
        await memo.kube.close()
        logger.info("Stopped the operator")

    subjects.register(
        registry, deletion_timeout=settings.deletion_timeout, resync_interval=settings.resync_interval
    )
    schemas.register(registry, deletion_timeout=settings.deletion_timeout)
    return registry


async def run_operator(
    settings: OperatorSettings,
    store: RegistryStore,
    *,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    pool: WorkerPool | None = None,
) -> None:
    """Runs until cancelled or until `stop` is set; `ready` is set once the operator has started. The
    store is opened and closed by the caller. Parsing and checks run in `pool`'s worker processes (a
    pool of its own when none is given).

    With `stop`, SIGINT and SIGTERM set it. kopf's `spawn_tasks` installs signal handlers of its own that
    stop only the operator, replacing whatever the process had; other components sharing the event loop
    (the read API and the webhook in `kschema run`) would then learn of the shutdown only after kopf had
    waited 5 s for their tasks as "hung" ones and cancelled them. Putting the handlers back after the
    spawn (kopf's documented embedding: `spawn_tasks` + `run_tasks`) stops every component at once."""
    async with contextlib.AsyncExitStack() as stack:
        if pool is None:
            pool = await stack.enter_async_context(WorkerPool(warm=True))
        existing = {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}
        deferrals = Deferrals(settings.inline_reconciles)
        tasks = await kopf.spawn_tasks(
            registry=build_registry(settings),
            settings=kopf_settings(settings, deferrals),
            memo=OperatorContext(settings=settings, store=store, pool=pool, deferrals=deferrals),
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            standalone=settings.peering is None,
            peering_name=settings.peering,
            priority=settings.priority,
            liveness_endpoint=settings.liveness_endpoint,
            stop_flag=stop,
            ready_flag=ready,
        )
        if stop is not None:
            install_stop_signals(stop)
        await kopf.run_tasks(tasks, ignored=existing)


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set `stop` (replacing any earlier handlers of the running loop). Outside the
    main thread, which alone receives signals, it does nothing: whoever runs that loop stops it."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _signalled, stop, signum)


def _signalled(stop: asyncio.Event, signum: int) -> None:
    if not stop.is_set():
        logger.info("Received a stop signal signal=%s", signal.Signals(signum).name)
    stop.set()
