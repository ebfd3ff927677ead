"""The protoc driver: grpcio-tools' protoc run in-process through its public entry point
`grpc_tools.protoc.main`, on a temporary tree holding the schema and its references, with the well-known
types and Google's common types on the include path."""

from __future__ import annotations

import atexit
import importlib.util
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path

from google.protobuf import descriptor_pb2

from kschema.formats.base import InvalidSchemaError
from kschema.formats.protobuf.schema import MAIN_FILE

__all__ = ["BUNDLED", "BUNDLED_FILES", "compile_proto", "is_known_import"]

_ABSL_LOG = re.compile(r"^(?:[IWEF]\d{4} \S+\s+\d+ [^\]]+\] |WARNING: All log messages before absl)")
_PROTOC_LINE = re.compile(r"^(?P<file>[^:\s][^:]*?):(?:(?P<line>\d+):(?P<col>\d+):)? ?(?P<msg>.*)$")
_PROTOC_LOCK = threading.Lock()
# Confluent's own importable files, which Confluent Schema Registry bundles as well.
BUNDLED = Path(__file__).parent / "bundled"
BUNDLED_FILES = frozenset({"confluent/meta.proto", "confluent/type/decimal.proto"})


@lru_cache(maxsize=1)
def _include_dirs() -> tuple[str, str | None]:
    """grpc_tools' folder of well-known types, and the folder of Google's common types (if installed)."""
    spec = importlib.util.find_spec("grpc_tools")
    if spec is None or spec.origin is None:
        raise InvalidSchemaError("grpcio-tools is not installed; Protobuf schemas cannot be compiled")
    wkt = str(Path(spec.origin).parent / "_proto")
    google_type: str | None = None
    try:
        type_spec = importlib.util.find_spec("google.type")
    except ModuleNotFoundError:
        type_spec = None
    if type_spec is not None and type_spec.submodule_search_locations:
        for location in type_spec.submodule_search_locations:
            if (Path(location) / "postal_address.proto").is_file():
                google_type = location
                break
    return wkt, google_type


@lru_cache(maxsize=1)
def _known_includes() -> tuple[str, ...]:
    """The include folders after the schema's own: Google's common types (`google/type`, through a folder
    that links only them, not the other googleapis files installed beside them), then the well-known
    types. Made once per process: creating folders costs more than protoc itself on small schemas."""
    wkt, google_type = _include_dirs()
    if google_type is None:
        return (wkt, str(BUNDLED))
    known = tempfile.mkdtemp(prefix="kschema-protoc-known-")
    atexit.register(shutil.rmtree, known, ignore_errors=True)
    os.mkdir(os.path.join(known, "google"))
    os.symlink(google_type, os.path.join(known, "google", "type"))
    return known, wkt, str(BUNDLED)


def is_known_import(name: str) -> bool:
    """Whether an import resolves without a reference: a well-known type, one of Google's common types or
    one of Confluent's bundled files."""
    if name in BUNDLED_FILES:
        return True
    wkt, google_type = _include_dirs()
    if name.startswith("google/protobuf/"):
        return (Path(wkt) / name).is_file()
    if name.startswith("google/type/") and google_type is not None:
        return (Path(google_type) / name.removeprefix("google/type/")).is_file()
    return False


def compile_proto(text: str, files: Mapping[str, str]) -> descriptor_pb2.FileDescriptorSet:
    """Runs protoc on `text` (as schema.proto) with `files` importable by name; returns the descriptors of
    the main file and everything it imports."""
    # Imported here: grpc_tools loads protoc's shared library, which only Protobuf work needs.
    from grpc_tools import protoc

    includes = _known_includes()
    with tempfile.TemporaryDirectory(prefix="kschema-protoc-") as tmp:
        source = Path(tmp)
        (source / MAIN_FILE).write_text(text, encoding="utf-8")
        for name, content in files.items():
            path = source / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        out = source / ".descriptor-set.pb"
        args = [
            "protoc",
            f"--proto_path={source}",
            *(f"--proto_path={include}" for include in includes),
            f"--descriptor_set_out={out}",
            "--include_imports",
            # The physical path, so that a file of that name in the process's working directory is
            # never picked up instead; protoc maps it back to the virtual name through --proto_path.
            str(source / MAIN_FILE),
        ]
        code, errors = _run_protoc(protoc.main, args, source, {MAIN_FILE, *files})
        if code != 0:
            raise _protoc_error(errors)
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _run_protoc(
    run: Callable[[list[str]], int], args: list[str], source: Path, own_files: set[str]
) -> tuple[int, list[str]]:
    """Runs protoc in-process and captures what it writes to file descriptor 2 (protoc writes errors
    there, not to Python's sys.stderr). One compile at a time holds fd 2; anything another thread wrote
    to stderr meanwhile is passed on. Returns protoc's exit code and its messages, with file names as the
    schema's imports name them."""
    with _PROTOC_LOCK, tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        try:
            os.dup2(captured.fileno(), 2)
            try:
                code = int(run(args))
            finally:
                os.dup2(saved, 2)
        finally:
            os.close(saved)
        captured.seek(0)
        output = captured.read().decode("utf-8", errors="replace")
    prefix = f"{source}{os.sep}"
    protoc_lines: list[str] = []
    foreign: list[str] = []
    for line in output.splitlines(keepends=True):
        text = line.rstrip("\n")
        if text.startswith(prefix):
            text = text[len(prefix) :]
        if _ABSL_LOG.match(text):
            # protoc's own diagnostics (e.g. "No edition or syntax specified"), not errors in the schema.
            continue
        found = _PROTOC_LINE.match(text)
        if (found and (found.group("file") in own_files or found.group("file").endswith(".proto"))) or (
            text.startswith(("--", "protoc", "Could not make proto path relative"))
        ):
            protoc_lines.append(text)
        else:
            foreign.append(line)
    if foreign:
        os.write(2, "".join(foreign).encode("utf-8", errors="replace"))
    return code, protoc_lines


def _protoc_error(lines: list[str]) -> InvalidSchemaError:
    errors = [found for found in map(_PROTOC_LINE.match, lines) if found and not _is_warning(found)]
    if not errors:
        detail = "; ".join(lines[:3])
        return InvalidSchemaError(f"protoc refused the schema{': ' + detail if detail else ''}", MAIN_FILE)
    located = [found for found in errors if found.group("line")]
    first = located[0] if located else errors[0]
    location = first.group("file")
    if first.group("line"):
        location += f":{first.group('line')}:{first.group('col')}"
    missing = [found.group("file") for found in errors if found.group("msg").strip() == "File not found."]
    if missing:
        return InvalidSchemaError(
            f"import {missing[0]!r} was not found: it is neither a reference nor a well-known type", location
        )
    # The first error is the cause; protoc's follow-ups repeat it, so at most three are kept.
    reasons = [first.group("msg").strip()]
    for found in errors:
        if found is not first and len(reasons) < 3:
            reasons.append(found.group(0).strip())
    return InvalidSchemaError("; ".join(reasons), location)


def _is_warning(found: re.Match[str]) -> bool:
    return found.group("msg").startswith("warning:")
