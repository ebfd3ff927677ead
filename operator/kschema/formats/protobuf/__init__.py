"""Protobuf schemas: compiled by real protoc (the grpcio-tools wheel) into descriptors.

A schema is `.proto` text, or a base64 `FileDescriptorProto` as Confluent clients send it. References are
Protobuf imports: each reference's `name` is the import path. The well-known types
(`google/protobuf/*.proto`) and Google's common types (`google/type/*.proto`, which Confluent Schema Registry
also bundles) resolve without references.

The canonical form is a normalised `.proto` rendering of the main file's descriptor: no comments or source
positions, options sorted by name, imports sorted, type names fully qualified. Two texts that differ only in
formatting, comments, option order or how a type name is written have the same canonical form.

The package, by responsibility: `schema` (the compiled schema and payload validation), `protoc` (the
compiler driver), `references` (imports given as references), `serialized` (base64 descriptors) and
`renderer` (descriptor to `.proto` text).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from google.protobuf import message

from kschema.formats.base import InvalidSchemaError, ResolvedReference, references_key
from kschema.formats.protobuf.protoc import compile_proto
from kschema.formats.protobuf.references import FlatReference, flatten, reference_files
from kschema.formats.protobuf.renderer import render_proto
from kschema.formats.protobuf.schema import (
    CACHE_SIZE,
    MAIN_FILE,
    MAX_REFERENCE_FILES,
    MAX_SCHEMA_BYTES,
    CompiledFiles,
    ProtobufSchema,
    build_pool,
    check_text,
    validate_message,
)
from kschema.formats.protobuf.serialized import decode_descriptor, render_serialized, to_serialized

__all__ = [
    "MAIN_FILE",
    "MAX_REFERENCE_FILES",
    "MAX_SCHEMA_BYTES",
    "CompiledFiles",
    "ProtobufSchema",
    "from_serialized",
    "parse",
    "render_proto",
    "to_serialized",
    "validate_message",
]


def parse(schema: str, references: tuple[ResolvedReference, ...] = ()) -> ProtobufSchema:
    """Compiles `.proto` text (or a base64 `FileDescriptorProto`) with its references.

    Raises `InvalidSchemaError` for anything protoc refuses, for malformed descriptors, missing or
    conflicting references, invalid UTF-8 and oversized input; never another exception type."""
    try:
        check_text(schema, MAIN_FILE)
        compiled = compile_cached(schema, flatten(references))
        key = json.dumps(references_key(references), sort_keys=True, separators=(",", ":"))
        fingerprint = hashlib.sha256(f"{compiled.canonical}\n{key}".encode()).hexdigest()
        return ProtobufSchema(schema, fingerprint, tuple(references), compiled)
    except InvalidSchemaError:
        raise
    except RecursionError:
        raise InvalidSchemaError("schema is nested too deeply", MAIN_FILE) from None
    except (ValueError, TypeError, KeyError, OSError, message.DecodeError) as exc:
        raise InvalidSchemaError(f"schema cannot be compiled: {exc}", MAIN_FILE) from None


@lru_cache(maxsize=CACHE_SIZE)
def compile_cached(schema: str, references: tuple[FlatReference, ...]) -> CompiledFiles:
    files, origins = reference_files(references)
    serialized = decode_descriptor(schema)
    text = render_serialized(serialized, files) if serialized is not None else schema
    file_set = compile_proto(text, files)
    files_by_name = {f.name: f for f in file_set.file}
    if MAIN_FILE not in files_by_name:
        raise InvalidSchemaError("protoc produced no descriptor for the schema", MAIN_FILE)
    canonical = render_proto(files_by_name[MAIN_FILE], build_pool(file_set.file))
    return CompiledFiles(
        canonical=canonical,
        file_set=file_set.SerializeToString(deterministic=True),
        origins={name: origin for name, origin in origins.items() if name in files_by_name},
    )


def from_serialized(data: str, references: tuple[ResolvedReference, ...] = ()) -> str:
    """The `.proto` text of a base64 `FileDescriptorProto` (its imports resolved through `references`)."""
    return parse(data, references).canonical
