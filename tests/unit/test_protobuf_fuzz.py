"""Bad input never crashes or hangs the Protobuf parser: garbage, huge or deeply nested text, import cycles,
missing imports and invalid UTF-8 all give InvalidSchemaError (or a parsed schema, for text that happens to
be valid)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kschema.compat.protobuf import reader_issues
from kschema.formats import InvalidSchemaError, Reference, ResolvedReference
from kschema.formats import protobuf as pb

FRAGMENTS = [
    'syntax = "proto3";',
    'syntax = "proto2";',
    "package a.b;",
    'import "google/protobuf/timestamp.proto";',
    'import "x.proto";',
    "message M {",
    "message N {",
    "}",
    "{",
    "string s = 1;",
    "int32 i = 2;",
    "repeated M m = 3;",
    "map<string, N> n = 4;",
    "oneof o {",
    "enum E { A = 0; }",
    "E e = 5;",
    "reserved 1 to 3;",
    'option java_package = "p";',
    "extensions 100 to max;",
    "optional int64 x = 0;",
    "\udcff",
    "\x00",
    ";",
    '"',
    "//",
    "/*",
]


# Messages of the catch-alls that once turned any exception into "invalid schema". A refusal must come
# from a check that knows what it refuses; anything else is a bug the fuzzer has found.
CATCH_ALL_MESSAGES = ("schema cannot be compiled:", "invalid Avro schema:", "schema cannot be used:")


def _outcome(text: str, refs: tuple[ResolvedReference, ...] = ()) -> pb.ProtobufSchema | None:
    try:
        return pb.parse(text, refs)
    except InvalidSchemaError as exc:
        error = exc
    assert error.reason
    assert not error.reason.startswith(CATCH_ALL_MESSAGES), f"refused by a catch-all: {error}"
    return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("\n".join))
def test_fragments_of_proto_text_never_crash(text: str) -> None:
    parsed = _outcome(text)
    if parsed is not None:
        # What parses also renders, re-parses and compares with itself.
        assert pb.parse(parsed.canonical).canonical == parsed.canonical
        assert reader_issues(parsed, parsed) == []


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _outcome(text)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_base64_never_crashes(data: bytes) -> None:
    _outcome(base64.b64encode(data).decode())


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a.proto", "b.proto", "c.proto"]),
            st.sets(st.sampled_from(["a.proto", "b.proto", "c.proto"])),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_references_importing_each_other_never_hang(edges: list[tuple[str, set[str]]]) -> None:
    refs = []
    for name, imports in edges:
        text = 'syntax = "proto3";\n' + "".join(f'import "{i}";\n' for i in sorted(imports))
        text += f"message {name[0].upper()} {{ string v = 1; }}\n"
        refs.append(ResolvedReference(Reference(name, name, 1), text))
    _outcome('syntax = "proto3";\nimport "a.proto";\nmessage Main { A a = 1; }\n', tuple(refs))


def test_ten_thousand_nested_messages_are_refused() -> None:
    depth = 10_000
    text = 'syntax = "proto3";\n' + "message M {\n" * depth + "}\n" * depth
    with pytest.raises(InvalidSchemaError, match="recursion limit"):
        pb.parse(text)


def test_a_five_megabyte_schema_is_refused() -> None:
    text = 'syntax = "proto3";\n' + "message M { string s = 1; }\n" * (5 * 1024 * 1024 // 28)
    with pytest.raises(InvalidSchemaError, match="limit"):
        pb.parse(text)


def test_a_five_megabyte_reference_is_refused() -> None:
    big = ResolvedReference(Reference("big.proto", "big", 1), "//" + "x" * (5 * 1024 * 1024))
    with pytest.raises(InvalidSchemaError) as caught:
        pb.parse('syntax = "proto3";\nimport "big.proto";\nmessage M { string s = 1; }\n', (big,))
    assert caught.value.location == "references/0/schema"


def test_a_long_chain_of_nested_references_is_bounded() -> None:
    chain: ResolvedReference | None = None
    for index in range(pb.MAX_REFERENCE_FILES + 5):
        text = f'syntax = "proto3";\nmessage R{index} {{ string v = 1; }}\n'
        chain = ResolvedReference(
            Reference(f"r{index}.proto", f"r{index}", 1), text, (chain,) if chain else ()
        )
    assert chain is not None
    with pytest.raises(InvalidSchemaError, match="more than") as caught:
        pb.parse('syntax = "proto3";\nmessage M { string s = 1; }\n', (chain,))
    assert caught.value.location.startswith("references/0/references/0/")


def test_recursive_and_mutually_recursive_messages_parse_and_compare() -> None:
    text = 'syntax = "proto3";\nmessage A { B b = 1; repeated A self = 2; }\nmessage B { A a = 1; }\n'
    parsed = pb.parse(text)
    assert reader_issues(parsed, parsed) == []
    assert parsed.validate({"b": {"a": {"self": [{}]}}}) == []


def test_invalid_utf8_in_a_reference_is_refused() -> None:
    bad = ResolvedReference(Reference("x.proto", "x", 1), 'syntax = "proto3"; // \udcff\n')
    with pytest.raises(InvalidSchemaError, match="UTF-8") as caught:
        pb.parse('syntax = "proto3";\nimport "x.proto";\n', (bad,))
    assert caught.value.location == "references/0/schema"


def test_a_deeply_nested_payload_does_not_crash_validation() -> None:
    parsed = pb.parse('syntax = "proto3";\nmessage A { A child = 1; }\n')
    payload: dict[str, object] = {}
    for _ in range(5000):
        payload = {"child": payload}
    issues = parsed.validate(payload)
    assert isinstance(issues, list)
