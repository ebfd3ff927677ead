"""kschema's own conformance cases for the compatibility rules Confluent added or changed most recently
(tests/data/fidelity/*.jsonl, in the record format of the shared conformance corpus): unevaluated
keywords, minContains/maxContains, allOf changed to anyOf/oneOf, if/then/else, and Protobuf oneofs.

Each record states the verdict and the difference types Confluent's checker reports for it. A record with
`deliberate_difference` is one where kschema knowingly answers differently from Confluent; the reason is in
the record and the list is in tests/data/fidelity/README.md, which this test keeps in step."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pytest

from kschema.compat import jsonschema as json_rules
from kschema.compat import protobuf as protobuf_rules
from kschema.compat.cases import evaluate_case, parse_field
from kschema.formats import SchemaFormat
from kschema.formats.jsonschema import ParsedJsonSchema
from kschema.formats.protobuf import ProtobufSchema

DATA: Final = Path(__file__).resolve().parents[1] / "data" / "fidelity"


def _records(name: str) -> list[dict[str, Any]]:
    with (DATA / f"{name}.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


RECORDS: Final = _records("json") + _records("protobuf")


def _changes(record: Mapping[str, Any]) -> set[str]:
    fmt = SchemaFormat(record["format"])
    reader = parse_field(fmt, record["reader_or_new"], record.get("references_new"), "reader_or_new")
    writer = parse_field(fmt, record["writer_or_old"], record.get("references_old"), "writer_or_old")
    if isinstance(reader, ParsedJsonSchema) and isinstance(writer, ParsedJsonSchema):
        return {str(d.type) for d in json_rules.differences(writer, reader)}
    assert isinstance(reader, ProtobufSchema)
    assert isinstance(writer, ProtobufSchema)
    return {d.rule for d in protobuf_rules.differences(writer, reader)}


@pytest.mark.parametrize("record", RECORDS, ids=[f"{r['id']}-{r['name']}" for r in RECORDS])
def test_fidelity_case(record: Mapping[str, Any]) -> None:
    verdict = evaluate_case(record)
    assert verdict.compatible is record["expected_compatible"], verdict.messages
    expected_changes = set(record.get("confluent_changes") or [])
    assert expected_changes <= _changes(record)


def test_every_deliberate_difference_is_listed_with_its_reason_in_the_readme() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    deliberate = [r for r in RECORDS if r.get("deliberate_difference")]
    assert deliberate
    for record in deliberate:
        assert f"`{record['id']}`" in readme, f"{record['id']} is not listed in tests/data/fidelity/README.md"
    listed = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `kschema-")}
    assert listed == {r["id"] for r in deliberate}
