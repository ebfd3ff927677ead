"""Protobuf schemas: compiled by real protoc (the grpcio-tools wheel) into descriptors.

A schema is `.proto` text, or a base64 `FileDescriptorProto` as Confluent clients send it. References are
Protobuf imports: each reference's `name` is the import path. The well-known types
(`google/protobuf/*.proto`) and Google's common types (`google/type/*.proto`, which Confluent Schema Registry
also bundles) resolve without references.

The canonical form is a normalised `.proto` rendering of the main file's descriptor: no comments or source
positions, options sorted by name, imports sorted, type names fully qualified. Two texts that differ only in
formatting, comments, option order or how a type name is written have the same canonical form.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from google.protobuf import (
    descriptor,
    descriptor_pb2,
    descriptor_pool,
    json_format,
    message,
    message_factory,
    text_encoding,
    text_format,
    unknown_fields,
)

from kschema.formats.base import (
    InvalidSchemaError,
    ResolvedReference,
    SchemaFormat,
    ValidationIssue,
    references_key,
)

__all__ = [
    "MAIN_FILE",
    "MAX_SCHEMA_BYTES",
    "ProtobufSchema",
    "from_serialized",
    "parse",
    "render_proto",
    "to_serialized",
    "validate_message",
]

# The virtual file name of the schema being parsed; protoc's error locations name it.
MAIN_FILE = "schema.proto"
# Kubernetes objects are limited to about 1.5 MB by etcd, so a larger schema could never be declared; the
# limit keeps protoc's worst case (about a second per MB) inside an admission webhook's timeout.
MAX_SCHEMA_BYTES = 1024 * 1024
# A bound on the number of reference files, nested ones included.
MAX_REFERENCE_FILES = 1000
# How many compiled schemas to keep: the webhook parses the same declared versions on every admission.
CACHE_SIZE = 512

_FDP = descriptor_pb2.FieldDescriptorProto
_SCALAR_NAMES: dict[int, str] = {
    _FDP.TYPE_DOUBLE: "double",
    _FDP.TYPE_FLOAT: "float",
    _FDP.TYPE_INT64: "int64",
    _FDP.TYPE_UINT64: "uint64",
    _FDP.TYPE_INT32: "int32",
    _FDP.TYPE_FIXED64: "fixed64",
    _FDP.TYPE_FIXED32: "fixed32",
    _FDP.TYPE_BOOL: "bool",
    _FDP.TYPE_STRING: "string",
    _FDP.TYPE_BYTES: "bytes",
    _FDP.TYPE_UINT32: "uint32",
    _FDP.TYPE_SFIXED32: "sfixed32",
    _FDP.TYPE_SFIXED64: "sfixed64",
    _FDP.TYPE_SINT32: "sint32",
    _FDP.TYPE_SINT64: "sint64",
}
# Field numbers are at most 2^29 - 1; descriptors store exclusive range ends, so "max" is this value.
_FIELD_NUMBER_END = 536_870_912
_ENUM_NUMBER_MAX = 2_147_483_647

_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/=_\-\s]+")
_ABSL_LOG = re.compile(r"^(?:[IWEF]\d{4} \S+\s+\d+ [^\]]+\] |WARNING: All log messages before absl)")
_PROTOC_LINE = re.compile(r"^(?P<file>[^:\s][^:]*?):(?:(?P<line>\d+):(?P<col>\d+):)? ?(?P<msg>.*)$")


# --------------------------------------------------------------------------------------------- the schema


@dataclass(frozen=True, eq=False)
class CompiledFiles:
    """What protoc made of a schema and its references, shared by every parse of the same input (the
    cache hands it out). `file_set` is the serialized `FileDescriptorSet` of the main file and everything
    it imports; `origins` maps each imported file that came from a reference to that reference's
    (subject, version)."""

    canonical: str
    file_set: bytes
    origins: Mapping[str, tuple[str, int]] = field(default_factory=dict)

    @cached_property
    def files(self) -> dict[str, descriptor_pb2.FileDescriptorProto]:
        fds = descriptor_pb2.FileDescriptorSet.FromString(self.file_set)
        return {f.name: f for f in fds.file}

    @cached_property
    def pool(self) -> descriptor_pool.DescriptorPool:
        return _build_pool(self.files.values())


@dataclass(frozen=True, eq=False)
class ProtobufSchema:
    """A Protobuf schema compiled by protoc, with its descriptors."""

    raw: str
    fingerprint: str
    references: tuple[ResolvedReference, ...]
    compiled: CompiledFiles
    main_file: str = MAIN_FILE

    @property
    def format(self) -> SchemaFormat:
        return SchemaFormat.PROTOBUF

    @property
    def canonical(self) -> str:
        return self.compiled.canonical

    @property
    def file_set(self) -> bytes:
        """The serialized `FileDescriptorSet` of the main file and everything it imports."""
        return self.compiled.file_set

    @property
    def origins(self) -> Mapping[str, tuple[str, int]]:
        """Imported file name -> (subject, version) of the reference it came from."""
        return self.compiled.origins

    @property
    def files(self) -> dict[str, descriptor_pb2.FileDescriptorProto]:
        """Every file by name, the main one included, in dependency order (imports first)."""
        return self.compiled.files

    @property
    def descriptor(self) -> descriptor_pb2.FileDescriptorProto:
        """The main file's descriptor."""
        return self.files[self.main_file]

    @property
    def pool(self) -> descriptor_pool.DescriptorPool:
        """A descriptor pool holding the main file and its imports (not the process-wide default pool)."""
        return self.compiled.pool

    @property
    def package(self) -> str:
        return self.descriptor.package

    @property
    def message_names(self) -> list[str]:
        """Full names of the main file's top-level messages, in declaration order."""
        prefix = f"{self.package}." if self.package else ""
        return [prefix + m.name for m in self.descriptor.message_type]

    def validate(self, payload: Any) -> list[ValidationIssue]:
        """Checks a JSON-like payload against the first top-level message (Confluent's default message
        index); `validate_message` names another one."""
        names = self.message_names
        if not names:
            return [ValidationIssue("", "the schema declares no message to validate against")]
        return validate_message(self, payload, names[0])


def validate_message(schema: ProtobufSchema, payload: Any, message_name: str) -> list[ValidationIssue]:
    """Checks a JSON-like payload (as protobuf's JSON mapping decodes it) against the message `message_name`
    (a full name such as `shop.Order`, or a name relative to the schema's package)."""
    try:
        desc = _find_message(schema, message_name)
    except KeyError:
        return [ValidationIssue("", f"the schema has no message named {message_name!r}")]
    if not isinstance(payload, Mapping):
        return [ValidationIssue("", f"a {desc.full_name} payload must be a JSON object")]
    cls = message_factory.GetMessageClass(desc)
    try:
        json_format.ParseDict(dict(payload), cls(), descriptor_pool=schema.pool)
    except json_format.ParseError as exc:
        return [ValidationIssue(_payload_location(str(exc)), str(exc))]
    except (RecursionError, ValueError, TypeError) as exc:
        return [ValidationIssue("", f"payload does not match {desc.full_name}: {exc}")]
    return []


def _find_message(schema: ProtobufSchema, name: str) -> descriptor.Descriptor:
    name = name.lstrip(".")
    candidates = [name]
    if schema.package and not name.startswith(schema.package + "."):
        candidates.insert(0, f"{schema.package}.{name}")
    for candidate in candidates:
        try:
            return schema.pool.FindMessageTypeByName(candidate)
        except KeyError:
            continue
    raise KeyError(name)


def _payload_location(error: str) -> str:
    # json_format nests "Failed to parse items field: Failed to parse sku field: ..." for the failing
    # field's path, and names the message of an unknown field as `at "Order.items"`.
    path = re.findall(r"Failed to parse (\S+) field", error)
    if path:
        return "/" + "/".join(path)
    found = re.search(r' at "([^"]*)"', error)
    return "/" + found.group(1).replace(".", "/") if found else ""


# ----------------------------------------------------------------------------------------------- parsing


def parse(schema: str, references: tuple[ResolvedReference, ...] = ()) -> ProtobufSchema:
    """Compiles `.proto` text (or a base64 `FileDescriptorProto`) with its references.

    Raises `InvalidSchemaError` for anything protoc refuses, for malformed descriptors, missing or
    conflicting references, invalid UTF-8 and oversized input; never another exception type."""
    try:
        _check_text(schema, MAIN_FILE)
        compiled = _compile_cached(schema, _flatten(references))
        key = json.dumps(references_key(references), sort_keys=True, separators=(",", ":"))
        fingerprint = hashlib.sha256(f"{compiled.canonical}\n{key}".encode()).hexdigest()
        return ProtobufSchema(schema, fingerprint, tuple(references), compiled)
    except InvalidSchemaError:
        raise
    except RecursionError:
        raise InvalidSchemaError("schema is nested too deeply", MAIN_FILE) from None
    except (ValueError, TypeError, KeyError, OSError, message.DecodeError) as exc:
        raise InvalidSchemaError(f"schema cannot be compiled: {exc}", MAIN_FILE) from None


# One reference file: (location in the reference tree, import path, subject, version, text).
_FlatReference = tuple[str, str, str, int, str]


def _flatten(references: tuple[ResolvedReference, ...]) -> tuple[_FlatReference, ...]:
    """The reference tree as a flat tuple, depth first, walked without recursion: a chain of references
    can be arbitrarily deep, and the flat tuple is a cheap cache key (hashing the tree would recurse)."""
    flat: list[_FlatReference] = []
    pending: list[tuple[object, str]] = [
        (ref, f"references/{index}") for index, ref in reversed(list(enumerate(references)))
    ]
    while pending:
        ref, where = pending.pop()
        if not isinstance(ref, ResolvedReference):
            raise InvalidSchemaError("not a resolved reference", where)
        if len(flat) >= MAX_REFERENCE_FILES:
            raise InvalidSchemaError(
                f"more than {MAX_REFERENCE_FILES} references, nested ones included", where
            )
        name = _check_reference_name(ref.reference.name, f"{where}/name")
        _check_text(ref.schema, f"{where}/schema")
        flat.append((where, name, str(ref.reference.subject), int(ref.reference.version), ref.schema))
        pending.extend(
            (nested, f"{where}/references/{i}") for i, nested in reversed(list(enumerate(ref.references)))
        )
    return tuple(flat)


@lru_cache(maxsize=CACHE_SIZE)
def _compile_cached(schema: str, references: tuple[_FlatReference, ...]) -> CompiledFiles:
    files, origins = _reference_files(references)
    serialized = _decode_descriptor(schema)
    text = _render_serialized(serialized, files) if serialized is not None else schema
    file_set = _compile(text, files)
    files_by_name = {f.name: f for f in file_set.file}
    if MAIN_FILE not in files_by_name:
        raise InvalidSchemaError("protoc produced no descriptor for the schema", MAIN_FILE)
    canonical = render_proto(files_by_name[MAIN_FILE], _build_pool(file_set.file))
    return CompiledFiles(
        canonical=canonical,
        file_set=file_set.SerializeToString(deterministic=True),
        origins={name: origin for name, origin in origins.items() if name in files_by_name},
    )


def _check_text(text: str, where: str) -> bytes:
    if not isinstance(text, str):
        raise InvalidSchemaError(f"schema must be a string, not {type(text).__name__}", where)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidSchemaError(
            f"schema is not valid UTF-8 (character {exc.start} cannot be encoded)", where
        ) from None
    if len(data) > MAX_SCHEMA_BYTES:
        raise InvalidSchemaError(f"schema is {len(data)} bytes; the limit is {MAX_SCHEMA_BYTES} bytes", where)
    if "\x00" in text:
        raise InvalidSchemaError("schema contains a NUL character", where)
    if not text.strip():
        raise InvalidSchemaError("schema is empty", where)
    return data


def _reference_files(
    references: tuple[_FlatReference, ...],
) -> tuple[dict[str, str], dict[str, tuple[str, int]]]:
    """{import path: .proto text} and {import path: (subject, version)} of the flattened references.
    Base64 descriptors among them are rendered to text."""
    files: dict[str, str] = {}
    origins: dict[str, tuple[str, int]] = {}
    serialized: list[tuple[str, str, descriptor_pb2.FileDescriptorProto]] = []
    for where, name, subject, version, text in references:
        if name in files:
            if files[name] != text:
                raise InvalidSchemaError(
                    f"reference {name!r} is given twice with different schemas", f"{where}/schema"
                )
            continue
        files[name] = text
        origins[name] = (subject, version)
        decoded = _decode_descriptor(text)
        if decoded is not None:
            serialized.append((name, where, decoded))
    # A referenced file registered as a base64 descriptor is imported as text: its custom options
    # cannot be resolved without its own imports, and they do not affect compatibility or validation.
    for name, where, decoded in serialized:
        try:
            files[name] = render_proto(decoded, None)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidSchemaError(
                f"reference descriptor cannot be read: {exc}", f"{where}/schema"
            ) from None
    return files, origins


def _check_reference_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidSchemaError("a Protobuf reference needs its import path as 'name'", where)
    parts = name.split("/")
    if (
        name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in parts)
        or len(name) > 1024
    ):
        raise InvalidSchemaError(
            f"reference name {name!r} is not a relative import path such as 'common/address.proto'", where
        )
    if name == MAIN_FILE:
        raise InvalidSchemaError(f"a reference may not be named {MAIN_FILE!r}", where)
    return name


# ------------------------------------------------------------------------------------------- base64 input


def _decode_descriptor(text: str) -> descriptor_pb2.FileDescriptorProto | None:
    """The `FileDescriptorProto` a base64 text encodes, or None when the text is not one (then it is
    `.proto` text)."""
    stripped = text.strip()
    if not stripped or not _BASE64_CHARS.fullmatch(stripped):
        return None
    compact = "".join(stripped.split())
    try:
        if "-" in compact or "_" in compact:
            data = base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        else:
            data = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
        fdp = descriptor_pb2.FileDescriptorProto.FromString(data)
    except (binascii.Error, ValueError, message.DecodeError):
        return None
    # A short word of .proto text can happen to be valid base64 of valid protobuf bytes; a real descriptor
    # declares something and carries no fields FileDescriptorProto does not know.
    if not (fdp.name or fdp.message_type or fdp.enum_type or fdp.syntax or fdp.package or fdp.service):
        return None
    if len(unknown_fields.UnknownFieldSet(fdp)):
        return None
    return fdp


def _render_serialized(fdp: descriptor_pb2.FileDescriptorProto, files: Mapping[str, str]) -> str:
    """Checks a decoded descriptor against its imports and renders it as .proto text."""
    missing = [dep for dep in fdp.dependency if dep not in files and not _is_known_import(dep)]
    if missing:
        raise InvalidSchemaError(f"import {missing[0]!r} has no reference", MAIN_FILE)
    # Compile a file that only imports the descriptor's dependencies, to get their descriptors.
    stub = 'syntax = "proto3";\n' + "".join(f'import "{_quote(dep)}";\n' for dep in fdp.dependency)
    deps = _compile(stub, files).file
    main = descriptor_pb2.FileDescriptorProto()
    main.CopyFrom(fdp)
    main.name = MAIN_FILE
    try:
        pool = _build_pool([*(d for d in deps if d.name != MAIN_FILE), main])
    except InvalidSchemaError as exc:
        raise InvalidSchemaError(f"invalid FileDescriptorProto: {exc.reason}", MAIN_FILE) from None
    return render_proto(main, pool)


def to_serialized(schema: ProtobufSchema) -> str:
    """The main file's `FileDescriptorProto` in base64, as Confluent's `format=serialized` returns it."""
    return base64.b64encode(schema.descriptor.SerializeToString(deterministic=True)).decode("ascii")


def from_serialized(data: str, references: tuple[ResolvedReference, ...] = ()) -> str:
    """The `.proto` text of a base64 `FileDescriptorProto` (its imports resolved through `references`)."""
    return parse(data, references).canonical


# ------------------------------------------------------------------------------------------------- protoc

_PROTOC_LOCK = threading.Lock()


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
        return (wkt,)
    known = tempfile.mkdtemp(prefix="kschema-protoc-known-")
    atexit.register(shutil.rmtree, known, ignore_errors=True)
    os.mkdir(os.path.join(known, "google"))
    os.symlink(google_type, os.path.join(known, "google", "type"))
    return known, wkt


def _is_known_import(name: str) -> bool:
    wkt, google_type = _include_dirs()
    if name.startswith("google/protobuf/"):
        return (Path(wkt) / name).is_file()
    if name.startswith("google/type/") and google_type is not None:
        return (Path(google_type) / name.removeprefix("google/type/")).is_file()
    return False


def _compile(text: str, files: Mapping[str, str]) -> descriptor_pb2.FileDescriptorSet:
    """Runs protoc on `text` (as schema.proto) with `files` importable by name; returns the descriptors of
    the main file and everything it imports."""
    from grpc_tools import _protoc_compiler

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
        code, errors = _run_protoc(
            _protoc_compiler.run_main, [a.encode() for a in args], source, {MAIN_FILE, *files}
        )
        if code != 0:
            raise _protoc_error(errors)
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _run_protoc(run: Any, args: list[bytes], source: Path, own_files: set[str]) -> tuple[int, list[str]]:
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


def _build_pool(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """A fresh pool with `files` added imports first; raises InvalidSchemaError for a descriptor the pool
    refuses (unresolved types, duplicate names...)."""
    pool = descriptor_pool.DescriptorPool()
    by_name = {f.name: f for f in files}
    for name in _dependency_order(by_name):
        try:
            pool.Add(by_name[name])
        except (TypeError, ValueError, KeyError) as exc:
            raise InvalidSchemaError(f"descriptor of {name!r} is invalid: {exc}", name) from None
    return pool


def _dependency_order(files: Mapping[str, descriptor_pb2.FileDescriptorProto]) -> Iterator[str]:
    done: set[str] = set()
    for root in files:
        stack: list[tuple[str, bool]] = [(root, False)]
        visiting: set[str] = set()
        while stack:
            name, expanded = stack.pop()
            if name in done or name not in files:
                continue
            if expanded:
                visiting.discard(name)
                done.add(name)
                yield name
                continue
            if name in visiting:
                raise InvalidSchemaError(f"file {name!r} imports itself", name)
            visiting.add(name)
            stack.append((name, True))
            stack.extend((dep, False) for dep in reversed(files[name].dependency) if dep not in done)


def _quote(text: str) -> str:
    # CEscape takes str as text_format passes it; the stubs only declare bytes.
    return text_encoding.CEscape(text, as_utf8=True)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- rendering


def render_proto(
    fdp: descriptor_pb2.FileDescriptorProto, pool: descriptor_pool.DescriptorPool | None = None
) -> str:
    """Renders a file descriptor as normalised `.proto` text. With `pool` (holding the file's imports),
    custom options are rendered by name; without it, options protobuf's descriptor.proto does not declare
    are left out."""
    return _Renderer(fdp, pool).render()


class _Renderer:
    def __init__(
        self, fdp: descriptor_pb2.FileDescriptorProto, pool: descriptor_pool.DescriptorPool | None
    ) -> None:
        self.fdp = fdp
        self.pool = pool
        self.syntax = fdp.syntax or "proto2"
        self.lines: list[str] = []

    def render(self) -> str:
        fdp = self.fdp
        if self.syntax == "editions":
            edition = descriptor_pb2.Edition.Name(fdp.edition).removeprefix("EDITION_")
            self.lines.append(f'edition = "{edition}";')
        else:
            self.lines.append(f'syntax = "{self.syntax}";')
        if fdp.package:
            self.lines += ["", f"package {fdp.package};"]
        public = {fdp.dependency[i] for i in fdp.public_dependency if 0 <= i < len(fdp.dependency)}
        weak = {fdp.dependency[i] for i in fdp.weak_dependency if 0 <= i < len(fdp.dependency)}
        imports = sorted(set(fdp.dependency))
        if imports:
            self.lines.append("")
            for dep in imports:
                modifier = "public " if dep in public else "weak " if dep in weak else ""
                self.lines.append(f'import {modifier}"{_quote(dep)}";')
        options = self.options(fdp.options)
        if options:
            self.lines.append("")
            self.lines += [f"option {name} = {value};" for name, value in options]
        scope = f".{fdp.package}" if fdp.package else ""
        for msg in fdp.message_type:
            self.lines.append("")
            self.message(msg, scope, 0)
        for enum in fdp.enum_type:
            self.lines.append("")
            self.enum(enum, 0)
        for svc in fdp.service:
            self.lines.append("")
            self.service(svc)
        self.extensions(fdp.extension, scope, 0, blank_line=True)
        return "\n".join(self.lines) + "\n"

    # -- options

    def options(self, opts: message.Message) -> list[tuple[str, str]]:
        """(name, value) assignments for an options message, sorted by name."""
        if opts is None or not opts.ByteSize():
            return []
        rich = self._with_extensions(opts)
        assignments = list(self._assignments(rich, ""))
        return sorted(assignments, key=lambda item: item[0])

    def _with_extensions(self, opts: message.Message) -> message.Message:
        # Custom options arrive as unknown fields of e.g. FieldOptions; reparsed with a class from the
        # file's own pool, they become named extensions.
        if self.pool is None:
            return opts
        try:
            desc = self.pool.FindMessageTypeByName(opts.DESCRIPTOR.full_name)
        except KeyError:
            return opts
        cls = message_factory.GetMessageClass(desc)
        return cls.FromString(opts.SerializeToString())

    def _assignments(self, msg: message.Message, prefix: str) -> Iterator[tuple[str, str]]:
        for fd, value in msg.ListFields():
            name = f"(.{fd.full_name})" if fd.is_extension else fd.name
            name = f"{prefix}.{name}" if prefix else name
            if fd.is_repeated:
                for item in value:
                    yield name, self._literal(fd, item)
            elif fd.cpp_type == descriptor.FieldDescriptor.CPPTYPE_MESSAGE:
                nested = list(self._assignments(value, name))
                if nested:
                    yield from nested
                else:
                    yield name, "{}"
            else:
                yield name, self._literal(fd, value)

    def _literal(self, fd: descriptor.FieldDescriptor, value: Any) -> str:
        cpp = descriptor.FieldDescriptor
        if fd.cpp_type == cpp.CPPTYPE_MESSAGE:
            return "{ " + text_format.MessageToString(value, as_one_line=True) + " }"
        if fd.cpp_type == cpp.CPPTYPE_BOOL:
            return "true" if value else "false"
        if fd.cpp_type == cpp.CPPTYPE_ENUM:
            enum_value = fd.enum_type.values_by_number.get(value) if fd.enum_type else None
            return enum_value.name if enum_value is not None else str(value)
        if fd.cpp_type == cpp.CPPTYPE_STRING:
            if fd.type == cpp.TYPE_BYTES:
                return f'"{text_encoding.CEscape(value, as_utf8=False)}"'
            return f'"{_quote(value)}"'
        if fd.cpp_type in (cpp.CPPTYPE_FLOAT, cpp.CPPTYPE_DOUBLE):
            return _float_literal(float(value))
        return str(value)

    # -- messages

    def message(self, msg: descriptor_pb2.DescriptorProto, scope: str, depth: int, group: str = "") -> None:
        full = f"{scope}.{msg.name}"
        indent = "  " * depth
        inner = "  " * (depth + 1)
        if not group:
            self.lines.append(f"{indent}message {msg.name} {{")
        else:
            self.lines.append(f"{indent}{group} {{")
        self.lines += [f"{inner}option {n} = {v};" for n, v in self.options(msg.options)]
        nested_by_name = {f"{full}.{n.name}": n for n in msg.nested_type}
        maps = {name for name, n in nested_by_name.items() if n.options.map_entry}
        groups = {f.type_name for f in msg.field if f.type == _FDP.TYPE_GROUP}
        real_oneofs = {
            f.oneof_index for f in msg.field if f.HasField("oneof_index") and not f.proto3_optional
        }
        done_oneofs: set[int] = set()
        for fld in msg.field:
            if fld.HasField("oneof_index") and fld.oneof_index in real_oneofs:
                index = fld.oneof_index
                if index in done_oneofs:
                    continue
                done_oneofs.add(index)
                decl = msg.oneof_decl[index] if index < len(msg.oneof_decl) else None
                self.lines.append(f"{inner}oneof {decl.name if decl else f'oneof_{index}'} {{")
                if decl is not None:
                    self.lines += [f"{inner}  option {n} = {v};" for n, v in self.options(decl.options)]
                for member in msg.field:
                    if member.HasField("oneof_index") and member.oneof_index == index:
                        self.field(member, nested_by_name, maps, depth + 2, in_oneof=True)
                self.lines.append(f"{inner}}}")
            else:
                self.field(fld, nested_by_name, maps, depth + 1)
        for name, nested in nested_by_name.items():
            if name not in maps and name not in groups:
                self.message(nested, full, depth + 1)
        for enum in msg.enum_type:
            self.enum(enum, depth + 1)
        for rng in msg.extension_range:
            opts = self.options(rng.options)
            suffix = " [" + ", ".join(f"{n} = {v}" for n, v in opts) + "]" if opts else ""
            self.lines.append(
                f"{inner}extensions {_range(rng.start, rng.end - 1, _FIELD_NUMBER_END - 1)}{suffix};"
            )
        self.extensions(msg.extension, full, depth + 1, blank_line=False)
        self._reserved(msg.reserved_range, msg.reserved_name, inner, exclusive_end=True)
        self.lines.append(f"{indent}}}")

    def field(
        self,
        fld: descriptor_pb2.FieldDescriptorProto,
        nested: Mapping[str, descriptor_pb2.DescriptorProto],
        maps: set[str],
        depth: int,
        in_oneof: bool = False,
    ) -> None:
        indent = "  " * depth
        opts = self.field_options(fld)
        suffix = " [" + ", ".join(f"{n} = {v}" for n, v in opts) + "]" if opts else ""
        if fld.type_name in maps:
            entry = nested[fld.type_name]
            key = next((f for f in entry.field if f.number == 1), None)
            value = next((f for f in entry.field if f.number == 2), None)
            if key is not None and value is not None:
                map_type = f"map<{self.type_of(key)}, {self.type_of(value)}>"
                self.lines.append(f"{indent}{map_type} {fld.name} = {fld.number}{suffix};")
                return
        label = "" if in_oneof else self.label(fld)
        if fld.type == _FDP.TYPE_GROUP and fld.type_name in nested:
            group_msg = nested[fld.type_name]
            self.message(
                group_msg,
                fld.type_name.rsplit(".", 1)[0],
                depth,
                group=f"{label}group {group_msg.name} = {fld.number}{suffix}",
            )
            return
        self.lines.append(f"{indent}{label}{self.type_of(fld)} {fld.name} = {fld.number}{suffix};")

    def label(self, fld: descriptor_pb2.FieldDescriptorProto) -> str:
        if fld.label == _FDP.LABEL_REPEATED:
            return "repeated "
        if self.syntax == "editions":
            return ""
        if fld.label == _FDP.LABEL_REQUIRED:
            return "required "
        if self.syntax == "proto2" or fld.proto3_optional:
            return "optional "
        return ""

    def type_of(self, fld: descriptor_pb2.FieldDescriptorProto) -> str:
        if fld.type in _SCALAR_NAMES:
            return _SCALAR_NAMES[fld.type]
        return fld.type_name

    def field_options(self, fld: descriptor_pb2.FieldDescriptorProto) -> list[tuple[str, str]]:
        result: list[tuple[str, str]] = []
        if fld.HasField("default_value"):
            result.append(("default", self._default(fld)))
        if fld.HasField("json_name") and fld.json_name != _json_name(fld.name):
            result.append(("json_name", f'"{_quote(fld.json_name)}"'))
        return result + self.options(fld.options)

    def _default(self, fld: descriptor_pb2.FieldDescriptorProto) -> str:
        value = fld.default_value
        if fld.type == _FDP.TYPE_STRING:
            return f'"{_quote(value)}"'
        if fld.type == _FDP.TYPE_BYTES:
            # Descriptors keep bytes defaults C-escaped already.
            return f'"{value}"'
        return value

    # -- enums, services, extensions, reserved

    def enum(self, enum: descriptor_pb2.EnumDescriptorProto, depth: int) -> None:
        indent = "  " * depth
        inner = "  " * (depth + 1)
        self.lines.append(f"{indent}enum {enum.name} {{")
        self.lines += [f"{inner}option {n} = {v};" for n, v in self.options(enum.options)]
        for value in enum.value:
            opts = self.options(value.options)
            suffix = " [" + ", ".join(f"{n} = {v}" for n, v in opts) + "]" if opts else ""
            self.lines.append(f"{inner}{value.name} = {value.number}{suffix};")
        self._reserved(enum.reserved_range, enum.reserved_name, inner, exclusive_end=False)
        self.lines.append(f"{indent}}}")

    def service(self, svc: descriptor_pb2.ServiceDescriptorProto) -> None:
        self.lines.append(f"service {svc.name} {{")
        self.lines += [f"  option {n} = {v};" for n, v in self.options(svc.options)]
        for method in svc.method:
            request = ("stream " if method.client_streaming else "") + method.input_type
            response = ("stream " if method.server_streaming else "") + method.output_type
            opts = self.options(method.options)
            head = f"  rpc {method.name} ({request}) returns ({response})"
            if opts:
                self.lines.append(head + " {")
                self.lines += [f"    option {n} = {v};" for n, v in opts]
                self.lines.append("  }")
            else:
                self.lines.append(head + ";")
        self.lines.append("}")

    def extensions(
        self, fields: Iterable[descriptor_pb2.FieldDescriptorProto], scope: str, depth: int, blank_line: bool
    ) -> None:
        by_extendee: dict[str, list[descriptor_pb2.FieldDescriptorProto]] = {}
        for fld in fields:
            by_extendee.setdefault(fld.extendee, []).append(fld)
        indent = "  " * depth
        for extendee, members in by_extendee.items():
            if blank_line:
                self.lines.append("")
            self.lines.append(f"{indent}extend {extendee} {{")
            for fld in members:
                self.field(fld, {}, set(), depth + 1)
            self.lines.append(f"{indent}}}")

    def _reserved(
        self, ranges: Iterable[Any], names: Iterable[str], indent: str, exclusive_end: bool
    ) -> None:
        spans = [
            _range(
                r.start,
                r.end - 1 if exclusive_end else r.end,
                _FIELD_NUMBER_END - 1 if exclusive_end else _ENUM_NUMBER_MAX,
            )
            for r in ranges
        ]
        if spans:
            self.lines.append(f"{indent}reserved {', '.join(spans)};")
        quoted = [f'"{_quote(n)}"' for n in names]
        if quoted:
            self.lines.append(f"{indent}reserved {', '.join(quoted)};")


def _range(start: int, end: int, maximum: int) -> str:
    if end >= maximum:
        return f"{start} to max"
    return str(start) if start == end else f"{start} to {end}"


def _float_literal(value: float) -> str:
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    text = repr(value)
    return text


def _json_name(name: str) -> str:
    # protoc's default JSON name: underscores dropped, the following letter upper-cased.
    out: list[str] = []
    upper = False
    for char in name:
        if char == "_":
            upper = True
        elif upper:
            out.append(char.upper())
            upper = False
        else:
            out.append(char)
    return "".join(out)
