"""`kschema run|operator|webhook|api`: the long-running processes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable

import uvloop

from kschema.runtime.config import ConfigError, add_options, load_config
from kschema.runtime.serve import serve

_COMMANDS = {
    "run": (("operator", "webhook", "api"), "operator, webhook and read API in one process (SQLite default)"),
    "operator": (("operator",), "the operator alone (PostgreSQL topology)"),
    "webhook": (("webhook",), "the admission webhook alone (several replicas)"),
    "api": (("api",), "the read API alone (several replicas)"),
}


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, (components, help_text) in _COMMANDS.items():
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        add_options(parser)
        parser.set_defaults(handler=run, components=components)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.components, args)
    except ConfigError as exc:
        sys.stderr.write(f"kschema: {exc}\n")
        return 2
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    with asyncio.Runner(loop_factory=loop_factory(config.event_loop)) as runner:
        runner.run(serve(config))
    # Every component has stopped and the store is closed: what remains is the interpreter freeing a
    # hundred thousand objects one by one, which takes seconds on a busy node and holds up a rolling
    # update for nothing. Flush the logs and leave.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop `--event-loop` names (validated by `load_config`)."""
    return uvloop.new_event_loop if name == "uvloop" else asyncio.new_event_loop
