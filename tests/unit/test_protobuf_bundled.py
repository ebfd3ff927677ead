"""Confluent's bundled Protobuf files, custom options holding maps, and references without schema text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kschema.compat.cases import evaluate_case, resolved_references
from kschema.formats import InvalidSchemaError
from kschema.formats import protobuf as pb

ANNOTATED = """syntax = "proto3";
package shop;
import "confluent/meta.proto";
import "confluent/type/decimal.proto";

message Order {
  option (confluent.message_meta) = { doc: "an order", params: [{key: "owner", value: "team-a"}] };
  string id = 1 [(confluent.field_meta) = { params: [{ key: "pii", value: "true" }], tags: ["PII"] }];
  confluent.type.Decimal total = 2;
}
"""


def test_confluent_meta_and_decimal_import_without_references() -> None:
    schema = pb.parse(ANNOTATED)
    assert {"confluent/meta.proto", "confluent/type/decimal.proto"} <= set(schema.files)
    assert schema.origins == {}  # bundled, not references


def test_a_custom_option_holding_a_map_renders_as_one_aggregate_that_compiles_again() -> None:
    schema = pb.parse(ANNOTATED)
    assert 'params { key: "owner" value: "team-a" }' in schema.canonical
    assert pb.parse(schema.canonical).fingerprint == schema.fingerprint


def test_a_custom_option_holding_a_map_survives_the_serialized_form() -> None:
    schema = pb.parse(ANNOTATED)
    again = pb.parse(pb.to_serialized(schema))
    assert again.canonical == schema.canonical


def test_a_reference_without_text_naming_a_built_in_file_uses_the_built_in() -> None:
    refs = resolved_references(
        [{"name": "google/protobuf/descriptor.proto", "schema": None, "subject": "d", "version": 1}]
    )
    assert refs == ()


def test_a_reference_without_text_is_refused_naming_the_reference() -> None:
    with pytest.raises(InvalidSchemaError) as raised:
        resolved_references([{"name": "common/money.proto", "schema": None, "subject": "m", "version": 1}])
    assert raised.value.location == "references/0/schema"
    assert "'common/money.proto' has no schema text" in raised.value.reason


def test_a_case_with_a_missing_reference_text_gets_no_verdict_and_a_clear_message() -> None:
    record = {
        "id": "missing-text",
        "format": "PROTOBUF",
        "kind": "pair",
        "reader_or_new": 'syntax = "proto3";\nimport "common/money.proto";\nmessage A { Money m = 1; }\n',
        "writer_or_old": 'syntax = "proto3";\nmessage A {}\n',
        "references_new": [{"name": "common/money.proto", "schema": None, "subject": "m", "version": 1}],
    }
    verdict = evaluate_case(record)
    assert verdict.compatible is None
    assert verdict.messages == [
        "reader_or_new/references/0/schema: reference 'common/money.proto' has no schema text, and no "
        "built-in file has that name"
    ]


def test_compat_cases_reads_confluent_annotated_schemas_without_a_traceback(tmp_path: Path) -> None:
    record = {
        "id": "annotated",
        "format": "PROTOBUF",
        "kind": "pair",
        "reader_or_new": ANNOTATED,
        "writer_or_old": ANNOTATED,
        "expected_compatible": True,
    }
    corpus = tmp_path / "cases.jsonl"
    corpus.write_text(json.dumps(record) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "kschema.cli.main", "compat", "--cases", str(corpus)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
