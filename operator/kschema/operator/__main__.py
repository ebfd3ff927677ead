"""`python -m kschema.operator`: runs the operator alone, configured by flags or environment variables
(the composed `kschema` CLI builds on `run_operator` too)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path

from kschema.operator.main import run_operator
from kschema.operator.settings import OperatorSettings
from kschema.store.factory import open_store


def parse_args(argv: Sequence[str] | None = None) -> tuple[OperatorSettings, str, str]:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m kschema.operator", description=__doc__)
    parser.add_argument(
        "--store",
        default=env.get("KSCHEMA_STORE_URL", "sqlite:///kschema.db"),
        help="registry store URL (env KSCHEMA_STORE_URL)",
    )
    parser.add_argument(
        "--kubeconfig",
        default=env.get("KUBECONFIG") or None,
        help="kubeconfig file; default: in-cluster service account (env KUBECONFIG)",
    )
    parser.add_argument(
        "--namespace",
        action="append",
        default=None,
        help="serve only this namespace (repeatable; env KSCHEMA_NAMESPACES, comma-separated)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--peering",
        default=env.get("KSCHEMA_PEERING", "kschema"),
        help="kopf peering name for leader election (env KSCHEMA_PEERING)",
    )
    group.add_argument("--standalone", action="store_true", help="no leader election: one replica only")
    parser.add_argument("--priority", type=int, default=int(env.get("KSCHEMA_PRIORITY", "0")))
    parser.add_argument(
        "--deletion-timeout", type=float, default=float(env.get("KSCHEMA_DELETION_TIMEOUT", "600"))
    )
    parser.add_argument(
        "--liveness",
        default=env.get("KSCHEMA_LIVENESS") or None,
        help="kopf liveness endpoint, e.g. http://0.0.0.0:8080/healthz",
    )
    parser.add_argument("--log-level", default=env.get("KSCHEMA_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    namespaces = args.namespace or [n for n in env.get("KSCHEMA_NAMESPACES", "").split(",") if n]
    settings = OperatorSettings(
        namespaces=tuple(namespaces),
        kubeconfig=Path(args.kubeconfig) if args.kubeconfig else None,
        peering=None if args.standalone else args.peering,
        priority=args.priority,
        deletion_timeout=args.deletion_timeout,
        liveness_endpoint=args.liveness,
    )
    return settings, args.store, args.log_level


async def _main(settings: OperatorSettings, store_url: str) -> None:
    store = await open_store(store_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await run_operator(settings, store, stop=stop)
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> None:
    settings, store_url, level = parse_args(argv)
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(_main(settings, store_url))


if __name__ == "__main__":
    main()
