"""`kschema` entry point: builds the argument parser from each subcommand module's `add_parser` and runs
the chosen subcommand's handler, whose return value is the exit status.

Only the chosen subcommand's module is imported: `kschema compat` and `kschema check` must not pay for
kopf, aiohttp and the operator, which only the long-running commands need. A bare `kschema`, `--help`
or an unknown command imports every module to list them all."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# Subcommand -> the module whose `add_parser` adds it (and sets `handler`, a function of the parsed
# arguments that returns the exit status, with `set_defaults`).
COMMAND_MODULES: dict[str, str] = {
    "run": "kschema.cli.serve",
    "operator": "kschema.cli.serve",
    "webhook": "kschema.cli.serve",
    "api": "kschema.cli.serve",
    "compat": "kschema.cli.compat",
    "check": "kschema.cli.check",
    "dev": "kschema.cli.dev",
}


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line, if it is a known one (options before it would be the
    top-level parser's, which has none besides --help)."""
    for arg in argv:
        if arg.startswith("-"):
            return None
        return arg if arg in COMMAND_MODULES else None
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kschema", description="Kubernetes-native schema registry for Avro, JSON Schema and Protobuf."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _chosen(argv)
    modules = [COMMAND_MODULES[chosen]] if chosen else list(dict.fromkeys(COMMAND_MODULES.values()))
    for name in modules:
        add_parser: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = (
            importlib.import_module(name).add_parser
        )
        add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments).parse_args(arguments)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
