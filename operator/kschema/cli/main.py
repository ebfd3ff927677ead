"""`kschema` entry point: builds the argument parser from each subcommand module's `add_parser` and runs
the chosen subcommand's handler, whose return value is the exit status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from kschema.cli import check, compat, dev, importing, serve

# Each subcommand module adds its parser and sets `handler` (a function of the parsed arguments that
# returns the exit status) with `set_defaults`.
SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    serve.add_parser,
    compat.add_parser,
    check.add_parser,
    importing.add_parser,
    dev.add_parser,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kschema", description="Kubernetes-native schema registry for Avro, JSON Schema and Protobuf."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_parser in SUBCOMMANDS:
        add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
