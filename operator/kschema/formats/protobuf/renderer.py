"""Renders a `FileDescriptorProto` as normalised `.proto` text: no comments or source positions, options
sorted by name, imports sorted, type names fully qualified. Used for the canonical form and for turning
base64 descriptors into text protoc can compile."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from google.protobuf import (
    descriptor,
    descriptor_pb2,
    descriptor_pool,
    message,
    message_factory,
    text_encoding,
    text_format,
)

__all__ = ["quote", "render_proto"]

FDP = descriptor_pb2.FieldDescriptorProto
_SCALAR_NAMES: dict[int, str] = {
    FDP.TYPE_DOUBLE: "double",
    FDP.TYPE_FLOAT: "float",
    FDP.TYPE_INT64: "int64",
    FDP.TYPE_UINT64: "uint64",
    FDP.TYPE_INT32: "int32",
    FDP.TYPE_FIXED64: "fixed64",
    FDP.TYPE_FIXED32: "fixed32",
    FDP.TYPE_BOOL: "bool",
    FDP.TYPE_STRING: "string",
    FDP.TYPE_BYTES: "bytes",
    FDP.TYPE_UINT32: "uint32",
    FDP.TYPE_SFIXED32: "sfixed32",
    FDP.TYPE_SFIXED64: "sfixed64",
    FDP.TYPE_SINT32: "sint32",
    FDP.TYPE_SINT64: "sint64",
}
# Field numbers are at most 2^29 - 1; descriptors store exclusive range ends, so "max" is this value.
_FIELD_NUMBER_END = 536_870_912
_ENUM_NUMBER_MAX = 2_147_483_647


def quote(text: str) -> str:
    # CEscape takes str as text_format passes it; the stubs only declare bytes.
    return text_encoding.CEscape(text, as_utf8=True)  # type: ignore[arg-type]


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
                self.lines.append(f'import {modifier}"{quote(dep)}";')
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
                if _sets_a_map(value):
                    # A map cannot be assigned entry by entry through an option path; the whole value is
                    # written as one aggregate, as text format prints it.
                    yield name, self._literal(fd, value)
                    continue
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
            return f'"{quote(value)}"'
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
        groups = {f.type_name for f in msg.field if f.type == FDP.TYPE_GROUP}
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
        if fld.type == FDP.TYPE_GROUP and fld.type_name in nested:
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
        if fld.label == FDP.LABEL_REPEATED:
            return "repeated "
        if self.syntax == "editions":
            return ""
        if fld.label == FDP.LABEL_REQUIRED:
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
            result.append(("json_name", f'"{quote(fld.json_name)}"'))
        return result + self.options(fld.options)

    def _default(self, fld: descriptor_pb2.FieldDescriptorProto) -> str:
        value = fld.default_value
        if fld.type == FDP.TYPE_STRING:
            return f'"{quote(value)}"'
        if fld.type == FDP.TYPE_BYTES:
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
        quoted = [f'"{quote(n)}"' for n in names]
        if quoted:
            self.lines.append(f"{indent}reserved {', '.join(quoted)};")


def _sets_a_map(msg: message.Message) -> bool:
    """Whether a message, or one nested in it, has a map field set."""
    for fd, value in msg.ListFields():
        if fd.cpp_type != descriptor.FieldDescriptor.CPPTYPE_MESSAGE:
            continue
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            return True
        items = value if fd.is_repeated else [value]
        if any(_sets_a_map(item) for item in items):
            return True
    return False


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
