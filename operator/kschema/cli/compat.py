"""`kschema compat`: checks a new schema file against earlier versions (oldest first) at a compatibility
level, or evaluates a conformance-format JSON-lines file record by record.

Exit status: 0 compatible, 1 incompatible, 2 invalid input (unreadable file, schema that does not parse,
unknown format or level)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from kschema.compat import CompatibilityLevel, VersionedSchema, check_compatibility
from kschema.compat.cases import evaluate_case
from kschema.formats import InvalidSchemaError, ParsedSchema, SchemaFormat, parse_schema
from kschema.formats.budget import TooComplexError

__all__ = ["add_parser", "run"]

EXIT_COMPATIBLE = 0
EXIT_INCOMPATIBLE = 1
EXIT_INVALID = 2

_EXTENSIONS = {".avsc": SchemaFormat.AVRO, ".json": SchemaFormat.JSON, ".proto": SchemaFormat.PROTOBUF}


class _InputError(Exception):
    """Input the command cannot use; the message names the file and the reason."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "compat",
        help="check a schema against earlier versions",
        description=(
            "Check NEW_FILE against PREVIOUS_FILE... (oldest first) at a compatibility level. Exit status: "
            "0 compatible, 1 incompatible, 2 invalid input."
        ),
    )
    parser.add_argument("new", nargs="?", metavar="NEW_FILE", help="the schema being checked")
    parser.add_argument("previous", nargs="*", metavar="PREVIOUS_FILE", help="earlier versions, oldest first")
    parser.add_argument(
        "--format",
        type=str.upper,
        choices=[f.value for f in SchemaFormat],
        help="schema format; inferred from NEW_FILE's extension (.avsc, .json, .proto) when omitted",
    )
    parser.add_argument(
        "--level",
        type=str.upper,
        choices=[level.value for level in CompatibilityLevel],
        default=CompatibilityLevel.BACKWARD.value,
        help="compatibility level (default: BACKWARD)",
    )
    parser.add_argument("--output", choices=["text", "json"], default="text", help="output style")
    parser.add_argument(
        "--cases",
        metavar="FILE.jsonl",
        help="evaluate conformance records (one JSON object per line) and write one JSON line per record",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.cases is not None:
            if args.new is not None:
                raise _InputError("--cases takes no schema files")
            return _run_cases(Path(args.cases), sys.stdout)
        if args.new is None:
            raise _InputError("NEW_FILE is required (or --cases FILE.jsonl)")
        return _run_files(args, sys.stdout)
    except _InputError as exc:
        sys.stderr.write(f"kschema compat: {exc}\n")
        return EXIT_INVALID


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise _InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise _InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _format_of(args: argparse.Namespace, path: Path) -> SchemaFormat:
    if args.format:
        return SchemaFormat(args.format)
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise _InputError(f"{path}: cannot tell the format from the extension; pass --format")
    return fmt


def _parse_file(fmt: SchemaFormat, path: Path) -> ParsedSchema:
    try:
        return parse_schema(fmt, _read(path))
    except InvalidSchemaError as exc:
        raise _InputError(f"{path}: invalid {fmt.value} schema: {exc}") from None


def _run_files(args: argparse.Namespace, out: TextIO) -> int:
    new_path = Path(args.new)
    previous_paths = [Path(p) for p in args.previous]
    fmt = _format_of(args, new_path)
    level = CompatibilityLevel(args.level)
    new = _parse_file(fmt, new_path)
    history = [VersionedSchema(n, _parse_file(fmt, p)) for n, p in enumerate(previous_paths, start=1)]
    try:
        result = check_compatibility(VersionedSchema(None, new), history, level)
    except TooComplexError as exc:
        raise _InputError(f"{new_path}: {exc}") from None

    def file_of(version: int | None) -> str:
        return str(new_path) if version is None else str(previous_paths[version - 1])

    problems = [
        {
            "location": i.location,
            "rule": i.rule,
            "message": i.issue.message,
            "reader": file_of(i.reader_version),
            "writer": file_of(i.writer_version),
        }
        for i in result.incompatibilities
    ]
    if args.output == "json":
        document: dict[str, Any] = {
            "compatible": result.compatible,
            "format": fmt.value,
            "level": level.value,
            "new": str(new_path),
            "previous": [str(p) for p in previous_paths],
            "incompatibilities": problems,
        }
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        against = f"{len(previous_paths)} previous schema{'s' if len(previous_paths) != 1 else ''}"
        verdict = "compatible" if result.compatible else "incompatible"
        out.write(f"{new_path}: {verdict} at {level.value} with {against}\n")
        for p in problems:
            where = f"{p['location']}: " if p["location"] else ""
            out.write(
                f"  {where}{p['message']} [{p['rule']}]; a reader of {p['reader']} "
                f"cannot read data written with {p['writer']}\n"
            )
    return EXIT_COMPATIBLE if result.compatible else EXIT_INCOMPATIBLE


def _run_cases(path: Path, out: TextIO) -> int:
    """Writes one verdict line per record. A line that is not a usable record gets a `null` verdict that
    names the line, and the exit status is then 2; otherwise 0, whatever the verdicts."""
    status = EXIT_COMPATIBLE
    for number, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        record: Any = None
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("a record must be a JSON object")
            verdict = evaluate_case(record)
            row: dict[str, Any] = {
                "id": verdict.id,
                "compatible": verdict.compatible,
                "messages": verdict.messages,
            }
        except (ValueError, KeyError, TypeError) as exc:
            status = EXIT_INVALID
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            record_id = record.get("id") if isinstance(record, dict) else None
            row = {"id": record_id, "compatible": None, "messages": [f"{path}:{number}: {reason}"]}
        out.write(json.dumps(row) + "\n")
    return status
