"""`kschema import --from URL --out DIR`: a running Confluent-compatible registry into a directory of
manifests; `kschema import --verify --from URL --against URL`: the source against a kschema read API.

Exit status: 0 done (verify: no difference), 1 verify found differences, 2 the source or the output
could not be used (each with a sentence on standard error; nothing is written).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from kschema.importer import (
    DeletedPolicy,
    ImportProblem,
    Selection,
    SourceError,
    SourceSettings,
    import_registry,
    verify_registry,
)

__all__ = ["add_parser", "run"]

EXIT_OK = 0
EXIT_DIFFERENT = 1
EXIT_FAILED = 2
PASSWORD_ENV = "KSCHEMA_SOURCE_PASSWORD"
TOKEN_ENV = "KSCHEMA_SOURCE_TOKEN"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "import",
        help="import a running Confluent-compatible registry into Subject and Schema manifests",
        description=(
            "Read a Confluent-compatible schema registry (Confluent, Karapace, Redpanda, Apicurio's "
            "ccompat API, kschema) over its REST API and write one directory of Subject and Schema "
            "manifests that keeps every schema ID, version, compatibility level and reference. The "
            "directory is written elsewhere first and renamed into place; re-running on the same source "
            "gives the same bytes. With --verify, compare the source with a running kschema read API "
            "instead and print every difference. Exit status: 0 done (no difference), 1 differences "
            "found, 2 failed."
        ),
    )
    parser.add_argument("--from", dest="source", required=True, metavar="URL", help="the source's API root")
    parser.add_argument(
        "--subjects",
        action="append",
        default=[],
        metavar="PATTERN",
        help="shell-style pattern of subject names to import (repeatable; default: every subject)",
    )
    parser.add_argument("-n", "--namespace", help="metadata.namespace of the manifests (default: none)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="the directory to write")
    parser.add_argument(
        "--deleted",
        choices=[p.value for p in DeletedPolicy],
        default=DeletedPolicy.ARCHIVE.value,
        help=(
            "soft-deleted versions: archive them (default: imported with state ARCHIVED, hidden from "
            "listings, their IDs keep resolving) or skip them (one that a kept version references is "
            "still imported, ARCHIVED)"
        ),
    )
    parser.add_argument("--verify", action="store_true", help="compare the source with --against")
    parser.add_argument("--against", metavar="URL", help="the kschema read API to compare with (--verify)")
    auth = parser.add_argument_group("authentication and TLS (for the source)")
    auth.add_argument("--username", help=f"basic auth user; the password is read from ${PASSWORD_ENV}")
    auth.add_argument("--password-file", type=Path, help="read the basic-auth password from this file")
    auth.add_argument(
        "--bearer-token-file", type=Path, help=f"read a bearer token from this file (or ${TOKEN_ENV})"
    )
    auth.add_argument("--ca-file", help="CA bundle to verify the source's certificate")
    auth.add_argument("--client-cert", help="client certificate (PEM) for mutual TLS")
    auth.add_argument("--client-key", help="client key (PEM) for mutual TLS")
    auth.add_argument(
        "--insecure-skip-tls-verify", action="store_true", help="do not verify the source's certificate"
    )
    limits = parser.add_argument_group("limits")
    limits.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    limits.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    limits.add_argument("--retries", type=int, default=3, help="tries after the first (default 3)")
    parser.add_argument(
        "--progress",
        choices=["auto", "never"],
        default="auto",
        help="a progress line on standard error when it is a terminal (default auto)",
    )
    parser.set_defaults(handler=run)


def _secret(path: Path | None, env: str) -> str | None:
    if path is not None:
        return path.read_text().strip()
    return os.environ.get(env) or None


def _settings(args: argparse.Namespace) -> SourceSettings:
    if not 0 < args.timeout <= 3600:
        raise ValueError("--timeout must be between 0 and 3600 seconds")
    if not 1 <= args.concurrency <= 256:
        raise ValueError("--concurrency must be between 1 and 256")
    if not 0 <= args.retries <= 10:
        raise ValueError("--retries must be between 0 and 10")
    return SourceSettings(
        url=args.source,
        username=args.username,
        password=_secret(args.password_file, PASSWORD_ENV) if args.username else None,
        bearer_token=_secret(args.bearer_token_file, TOKEN_ENV),
        ca_file=args.ca_file,
        client_cert=args.client_cert,
        client_key=args.client_key,
        insecure_skip_verify=args.insecure_skip_tls_verify,
        request_timeout_seconds=args.timeout,
        connect_timeout_seconds=min(10.0, args.timeout),
        max_in_flight=args.concurrency,
        retries=args.retries,
    )


class _ProgressLine:
    """`subjects 1200/5000` rewritten in place on a terminal, at most ten times a second."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done != total and now - self.last < 0.1:
            return
        self.last = now
        width = 30
        filled = width * done // total if total else width
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} subjects")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    try:
        settings = _settings(args)
        if args.verify:
            if not args.against:
                raise ValueError("--verify needs --against URL (the kschema read API to compare with)")
        elif args.out is None:
            raise ValueError("--out DIR is required (or --verify --against URL)")
    except (ValueError, OSError) as error:
        err.write(f"kschema import: {error}\n")
        return EXIT_FAILED
    selection = Selection(tuple(args.subjects), DeletedPolicy(args.deleted))
    progress = _ProgressLine(err, "reading") if args.progress == "auto" and err.isatty() else None
    try:
        if args.verify:
            target = SourceSettings(url=args.against, request_timeout_seconds=args.timeout)
            differences = asyncio.run(verify_registry(settings, target, selection, progress))
            for difference in differences:
                sys.stdout.write(f"{difference}\n")
            sys.stdout.write(f"{len(differences)} difference(s) between {args.source} and {args.against}\n")
            return EXIT_DIFFERENT if differences else EXIT_OK
        result = asyncio.run(import_registry(settings, selection, args.out, args.namespace, progress))
    except SourceError as error:
        err.write(f"kschema import: the source could not be read: {error}\n")
        return EXIT_FAILED
    except ImportProblem as error:
        err.write(f"kschema import: {error}\n")
        return EXIT_FAILED
    except (ValueError, OSError) as error:
        err.write(f"kschema import: {error}\n")
        return EXIT_FAILED
    for note in result.notes:
        err.write(f"note: {note}\n")
    sys.stdout.write(
        f"Imported {result.subjects} subjects and {result.versions} versions into {args.out} "
        f"({result.files} files, {result.requests} requests, {result.seconds:.1f} s)\n"
    )
    return EXIT_OK
