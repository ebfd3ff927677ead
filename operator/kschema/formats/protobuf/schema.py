"""The compiled Protobuf schema: its descriptors, its limits, and payload validation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message

from kschema.formats.base import InvalidSchemaError, ResolvedReference, SchemaFormat, ValidationIssue

__all__ = [
    "CACHE_SIZE",
    "MAIN_FILE",
    "MAX_REFERENCE_FILES",
    "MAX_SCHEMA_BYTES",
    "CompiledFiles",
    "ProtobufSchema",
    "build_pool",
    "check_text",
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
        return build_pool(self.files.values())


@dataclass(frozen=True, eq=False)
class ProtobufSchema:
    """A Protobuf schema compiled by protoc, with its descriptors."""

    raw: str
    fingerprint: str
    references: tuple[ResolvedReference, ...]
    compiled: CompiledFiles
    main_file: str = MAIN_FILE
    # What other layers compute from this schema once and reuse for its lifetime (the compatibility
    # checker's index of its types and fields); a parsed schema never changes.
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def format(self) -> SchemaFormat:
        return SchemaFormat.PROTOBUF

    @property
    def validation_cost(self) -> int | None:
        return None  # the payload decides how much work validation is: it is measured first

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
        found = self.derived.get(_DEFAULT_MESSAGE)
        if found is None:
            names = self.message_names
            if not names:
                return [ValidationIssue("", "the schema declares no message to validate against")]
            found = self.derived[_DEFAULT_MESSAGE] = _message_target(self, names[0])
        return _parse_payload(self, payload, *found)


# Key in `derived`: the first message's descriptor, its class, and whether it may hold an Any.
_DEFAULT_MESSAGE = "validation.default_message"


def validate_message(schema: ProtobufSchema, payload: Any, message_name: str) -> list[ValidationIssue]:
    """Checks a JSON-like payload (as protobuf's JSON mapping decodes it) against the message `message_name`
    (a full name such as `shop.Order`, or a name relative to the schema's package)."""
    try:
        target = _message_target(schema, message_name)
    except KeyError:
        return [ValidationIssue("", f"the schema has no message named {message_name!r}")]
    return _parse_payload(schema, payload, *target)


def _message_target(
    schema: ProtobufSchema, message_name: str
) -> tuple[descriptor.Descriptor, type[Message], bool]:
    """What parsing a payload of `message_name` needs: its descriptor, its class, whether it may hold an
    Any. Raises KeyError for a message the schema does not have."""
    desc = _find_message(schema, message_name)
    return desc, message_factory.GetMessageClass(desc), _uses_any(desc)


def _uses_any(desc: descriptor.Descriptor) -> bool:
    """Whether a payload of `desc` may hold a `google.protobuf.Any`: only then does parsing it need the
    schema's pool (to find the types its `@type` URLs name), and passing the pool costs about 15% of
    every parse."""
    seen: set[str] = set()
    stack = [desc]
    while stack:
        current = stack.pop()
        if current.full_name in seen:
            continue
        seen.add(current.full_name)
        if current.full_name == "google.protobuf.Any":
            return True
        stack.extend(f.message_type for f in current.fields if f.message_type is not None)
    return False


def _parse_payload(
    schema: ProtobufSchema, payload: Any, desc: descriptor.Descriptor, cls: type[Message], uses_any: bool
) -> list[ValidationIssue]:
    if not isinstance(payload, Mapping):
        return [ValidationIssue("", f"a {desc.full_name} payload must be a JSON object")]
    try:
        json_format.ParseDict(
            payload if type(payload) is dict else dict(payload),
            cls(),
            descriptor_pool=schema.pool if uses_any else None,
        )
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


def check_text(text: str, where: str) -> bytes:
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


def build_pool(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """A fresh pool with `files` added imports first; raises InvalidSchemaError for a descriptor the pool
    refuses (unresolved types, duplicate names...)."""
    pool = descriptor_pool.DescriptorPool()
    by_name = {f.name: f for f in files}
    for name in dependency_order(by_name):
        try:
            pool.Add(by_name[name])
        except (TypeError, ValueError, KeyError) as exc:
            raise InvalidSchemaError(f"descriptor of {name!r} is invalid: {exc}", name) from None
    return pool


def dependency_order(files: Mapping[str, descriptor_pb2.FileDescriptorProto]) -> Iterator[str]:
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
