"""Avro conformance: every record of tests/data/conformance/avro.jsonl evaluated by kschema, compared with
what the record's source asserts, with agreement summarised per source and per flag."""

from __future__ import annotations

from typing import Any

import pytest

from kschema.compat.cases import evaluate_case, expected_verdict
from tests.unit.conformance_summary import Agreement, agrees, load_records, source_and_flag_groups

RECORDS = load_records("avro")

# Where kschema deliberately answers differently from the record's `expected_compatible` (by record id or
# by flag). Each entry is asserted to still differ, so the list cannot go stale.
DIFFERENCES: dict[str, str] = {
    "disagrees_with_avro_java_and_avro_python": (
        "the source (avro-ruby, or Avro Java's grammar validator that ignores record names) asserts what "
        "Apache Avro Java and Python refute; kschema follows Java and Python, as Confluent does"
    ),
    "avro-00940": (
        "flagged unparseable only because the cross-checkers ran without references; with the country "
        "reference the record carries, it parses and kschema gives the registry's answer (renamed record)"
    ),
}


def _difference(record: dict[str, Any]) -> str | None:
    record_id: str = record["id"]
    if record_id in DIFFERENCES:
        return record_id
    return next((flag for flag in record["flags"] if flag in DIFFERENCES), None)


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_record(record: dict[str, Any]) -> None:
    verdict = evaluate_case(record)
    difference = _difference(record)
    if difference == "disagrees_with_avro_java_and_avro_python":
        assert verdict.compatible is not expected_verdict(record), DIFFERENCES[difference]
        assert verdict.compatible is record["crosscheck_avro_java"]
    elif difference is not None:
        assert not agrees(record, verdict), DIFFERENCES[difference]
        assert verdict.compatible is expected_verdict(record)
    else:
        assert agrees(record, verdict), verdict.messages
    if verdict.compatible is False:
        assert verdict.messages
        assert all(verdict.messages)


def test_agreement_per_source_and_per_flag_meets_the_targets() -> None:
    agreement = Agreement()
    java_agreed = java_total = 0
    for record in RECORDS:
        verdict = evaluate_case(record)
        agreement.count(source_and_flag_groups(record), agrees(record, verdict))
        if record.get("crosscheck_avro_java") is not None:
            java_total += 1
            java_agreed += verdict.compatible is record["crosscheck_avro_java"]
    agreed, total, report = agreement.agreed, agreement.total, agreement.report()
    # Unflagged records: full agreement with Apache Avro Java/Python is the target.
    assert agreed["flag:unflagged"] == total["flag:unflagged"] > 400, report
    # Every record Apache Avro Java could evaluate gets Java's verdict.
    assert java_agreed == java_total > 800
    # Flagged groups: only the listed differences disagree.
    assert agreed["flag:avro_ruby_semantics"] == total["flag:avro_ruby_semantics"] - 9, report
    assert agreed["flag:avro_java_grammar_validator_semantics"] == (
        total["flag:avro_java_grammar_validator_semantics"] - 2
    ), report
    assert agreed["flag:rest_api_replay"] == total["flag:rest_api_replay"] - 1, report
    assert agreed["flag:disagrees_with_avro_java_and_avro_python"] == 0, report
