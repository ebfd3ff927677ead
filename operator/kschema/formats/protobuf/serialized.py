"""The serialized form: a base64 `FileDescriptorProto`, as Confluent clients register Protobuf schemas and
as `format=serialized` returns them."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

from google.protobuf import descriptor_pb2, message, unknown_fields

from kschema.formats.base import InvalidSchemaError
from kschema.formats.protobuf.protoc import compile_proto, is_known_import
from kschema.formats.protobuf.renderer import quote, render_proto
from kschema.formats.protobuf.schema import MAIN_FILE, ProtobufSchema, build_pool

__all__ = ["decode_descriptor", "render_serialized", "to_serialized"]

_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/=_\-\s]+")


def decode_descriptor(text: str) -> descriptor_pb2.FileDescriptorProto | None:
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


def render_serialized(fdp: descriptor_pb2.FileDescriptorProto, files: Mapping[str, str]) -> str:
    """Checks a decoded descriptor against its imports and renders it as .proto text."""
    missing = [dep for dep in fdp.dependency if dep not in files and not is_known_import(dep)]
    if missing:
        raise InvalidSchemaError(f"import {missing[0]!r} has no reference", MAIN_FILE)
    # Compile a file that only imports the descriptor's dependencies, to get their descriptors.
    stub = 'syntax = "proto3";\n' + "".join(f'import "{quote(dep)}";\n' for dep in fdp.dependency)
    deps = compile_proto(stub, files).file
    main = descriptor_pb2.FileDescriptorProto()
    main.CopyFrom(fdp)
    main.name = MAIN_FILE
    try:
        pool = build_pool([*(d for d in deps if d.name != MAIN_FILE), main])
    except InvalidSchemaError as exc:
        raise InvalidSchemaError(f"invalid FileDescriptorProto: {exc.reason}", MAIN_FILE) from None
    return render_proto(main, pool)


def to_serialized(schema: ProtobufSchema) -> str:
    """The main file's `FileDescriptorProto` in base64, as Confluent's `format=serialized` returns it."""
    return base64.b64encode(schema.descriptor.SerializeToString(deterministic=True)).decode("ascii")
