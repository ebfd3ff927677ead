"""Runs the operator in-process: `run_operator(settings, store)` until cancelled or `stop` is set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import kopf
from kubernetes_asyncio import client

from kschema.model import FINALIZER, GROUP
from kschema.operator import schemas, subjects
from kschema.operator.context import OperatorContext
from kschema.operator.kube import Kube, connection_info, load_configuration
from kschema.operator.settings import OperatorSettings
from kschema.store import RegistryStore

logger = logging.getLogger(__name__)


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    """kopf's own settings: its bookkeeping under our group, quiet event posting, peering."""
    configured = kopf.OperatorSettings()
    configured.persistence.finalizer = FINALIZER
    configured.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    configured.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Conditions carry the outcome, and the operator posts its own Events (kschema.operator.events,
    # aggregated); one more Event per handler run from kopf's log would double the API writes.
    configured.posting.level = logging.WARNING
    configured.watching.server_timeout = 300
    configured.watching.client_timeout = 330
    configured.networking.request_timeout = 60
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
        kube = Kube(client.ApiClient(configuration))
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
        await memo.kube.close()

    subjects.register(registry)
    schemas.register(registry)
    return registry


async def run_operator(
    settings: OperatorSettings,
    store: RegistryStore,
    *,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Runs until cancelled or until `stop` is set; `ready` is set once the operator has started. The
    store is opened and closed by the caller."""
    await kopf.operator(
        registry=build_registry(settings),
        settings=kopf_settings(settings),
        memo=OperatorContext(settings=settings, store=store),
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        standalone=settings.peering is None,
        peering_name=settings.peering,
        priority=settings.priority,
        liveness_endpoint=settings.liveness_endpoint,
        stop_flag=stop,
        ready_flag=ready,
    )
