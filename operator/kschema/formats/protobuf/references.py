"""References: Protobuf imports given as (import path, schema text) pairs, possibly nested, flattened
into the files protoc sees."""

from __future__ import annotations

from google.protobuf import descriptor_pb2

from kschema.formats.base import InvalidSchemaError, ResolvedReference
from kschema.formats.protobuf.renderer import render_proto
from kschema.formats.protobuf.schema import MAIN_FILE, MAX_REFERENCE_FILES, check_text
from kschema.formats.protobuf.serialized import decode_descriptor

__all__ = ["FlatReference", "check_reference_name", "flatten", "reference_files"]

# One reference file: (location in the reference tree, import path, subject, version, text).
FlatReference = tuple[str, str, str, int, str]


def flatten(references: tuple[ResolvedReference, ...]) -> tuple[FlatReference, ...]:
    """The reference tree as a flat tuple, depth first, walked without recursion: a chain of references
    can be arbitrarily deep, and the flat tuple is a cheap cache key (hashing the tree would recurse)."""
    flat: list[FlatReference] = []
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
        name = check_reference_name(ref.reference.name, f"{where}/name")
        check_text(ref.schema, f"{where}/schema")
        flat.append((where, name, str(ref.reference.subject), int(ref.reference.version), ref.schema))
        pending.extend(
            (nested, f"{where}/references/{i}") for i, nested in reversed(list(enumerate(ref.references)))
        )
    return tuple(flat)


def reference_files(
    references: tuple[FlatReference, ...],
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
        decoded = decode_descriptor(text)
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


def check_reference_name(name: object, where: str) -> str:
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
