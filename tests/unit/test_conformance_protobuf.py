"""Protobuf conformance: every record of tests/data/conformance/protobuf.jsonl (taken from Karapace's test
suites) evaluated by kschema with real protoc, compared with what the record's source asserts, with
agreement summarised per source and per flag. kschema follows Confluent Schema Registry where Karapace
differs; each such record is listed below with the reason and asserted to still differ."""

from __future__ import annotations

from typing import Any

import pytest

from kschema.compat.cases import evaluate_case, expected_verdict
from tests.unit.conformance_summary import Agreement, agrees, load_records, source_and_flag_groups

RECORDS = load_records("protobuf")

_RENUMBERED = (
    "a field's number changed: Confluent's checker sees the old number removed (FIELD_REMOVED) and a new "
    "one added (FIELD_ADDED), both compatible, so the change is allowed; Karapace refuses it"
)
_UNRESOLVED_IMPORT = (
    "the schema imports 'my/awesome/customer/v1/nested_value.proto' but its only reference is named "
    "'NestedValue.proto'; imports resolve by reference name (Confluent's rule, and protoc's), so the schema "
    "is invalid; Karapace finds the type by name regardless of the import path"
)

# Where kschema deliberately answers differently from the record's `expected_compatible`, by record id.
DIFFERENCES: dict[str, str] = {
    "protobuf-00059": _RENUMBERED,
    "protobuf-00071": _RENUMBERED,
    "protobuf-00063": (
        "the package changed from a1 to a2: Confluent reports PACKAGE_CHANGED, an incompatible change "
        "(message full names, and so Any payloads and type URLs, change); Karapace allows it"
    ),
    "protobuf-00068": (
        "the schemas declare field number 0, which protoc refuses ('Field numbers must be positive "
        "integers'); Karapace's own parser accepts it"
    ),
    "protobuf-00105": _UNRESOLVED_IMPORT,
    "protobuf-00106": _UNRESOLVED_IMPORT,
}
# Records whose schema kschema refuses as invalid (compatible=None) rather than judging the change.
INVALID = {"protobuf-00068", "protobuf-00105", "protobuf-00106"}


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_record(record: dict[str, Any]) -> None:
    verdict = evaluate_case(record)
    if record["id"] in DIFFERENCES:
        assert not agrees(record, verdict), DIFFERENCES[record["id"]]
        if record["id"] in INVALID:
            assert verdict.compatible is None
            assert verdict.messages
        else:
            assert verdict.compatible is (not expected_verdict(record))
    else:
        assert agrees(record, verdict), verdict.messages
    if verdict.compatible is False:
        assert verdict.messages
        assert all(verdict.messages)


def test_agreement_per_source_and_per_flag_meets_the_targets() -> None:
    agreement = Agreement()
    for record in RECORDS:
        agreement.count([*source_and_flag_groups(record), "all"], agrees(record, evaluate_case(record)))
    agreed, total, report = agreement.agreed, agreement.total, agreement.report()
    assert total["all"] == 103, report
    # Every disagreement is a listed, deliberate one.
    assert agreed["all"] == total["all"] - len(DIFFERENCES) == 97, report
    assert agreed["flag:uses_references"] == total["flag:uses_references"] - 2 == 33, report
    assert agreed["flag:rest_api_replay"] == total["flag:rest_api_replay"] == 48, report
    base64_flag = "flag:writer_or_old_is_base64_FileDescriptorProto"
    assert agreed[base64_flag] == total[base64_flag] == 2, report
    karapace = "Aiven-Open/karapace:"
    assert report[f"source:{karapace}tests/unit/compatibility/test_protobuf_checks.py"] == "7/8"
    assert report[f"source:{karapace}tests/unit/protobuf/test_protobuf_compatibility.py"] == "6/9"
    assert report[f"source:{karapace}tests/unit/protobuf/test_protobuf_normalization.py"] == "25/27"
    assert report[f"source:{karapace}tests/unit/protobuf/test_protobuf_schema.py"] == "9/9"
    assert report[f"source:{karapace}tests/integration/test_schema_protobuf.py"] == "40/40"
    assert report[f"source:{karapace}tests/integration/test_dependencies_compatibility_protobuf.py"] == "8/8"
    assert report[f"source:{karapace}go/protopace/compatibility_test.go"] == "2/2"
