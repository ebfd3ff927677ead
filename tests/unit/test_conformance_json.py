"""Conformance of the JSON Schema compatibility rules with the corpus in tests/data/conformance/json.jsonl
(Karapace's unit tests and its replayed REST tests).

kschema follows Confluent Schema Registry. Where Karapace answers differently, the record is listed in
DELIBERATE_DIFFERENCES with the reason, and the test asserts that kschema still answers differently, so
the list cannot go stale: fixing or breaking a rule shows up here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pytest

from kschema.compat.cases import evaluate_case, expected_verdict
from tests.unit.conformance_summary import Agreement, load_records

RECORDS: Final = load_records("json")
KARAPACE_FLAG: Final = "karapace_boolean_or_never_schema_semantics"

# Reasons, one per kind of difference. Confluent's rules are in io.confluent.kafka.schemaregistry.json.diff.
READER_TRUE: Final = (
    "the reader is the schema `true`, which accepts every value; Confluent's SchemaDiff never reports a "
    "difference when the update is an empty/true schema, Karapace calls a change of type incompatible"
)
WRITER_FALSE: Final = (
    "the writer is the schema `false`, which no value satisfies, so there is no data a reader could "
    "fail on; Confluent's SchemaDiff never reports a difference when the original is a false schema"
)
READER_FALSE: Final = (
    "the reader is `false` and rejects everything the `true` writer may write; Confluent reports "
    "TYPE_CHANGED, Karapace accepts it"
)
EMPTY_PROPERTY_IN_OPEN_MODEL: Final = (
    "the reader adds a property whose schema is `{}` to an open content model: the writer's values for it "
    "were unconstrained and the reader accepts any value, which Confluent calls "
    "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL (compatible)"
)
PATTERN_COVERS_EVERY_NAME: Final = (
    "the reader drops the writer's property 'b' but its patternProperties '^a*' matches every name "
    "(an empty match) with the schema `{}`, so Confluent calls it "
    "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL (compatible)"
)

DELIBERATE_DIFFERENCES: Final[Mapping[str, str]] = {
    "json-00347": WRITER_FALSE,
    "json-00364": READER_FALSE,
    "json-00400": READER_TRUE,
    "json-00401": READER_TRUE,
    "json-00402": READER_TRUE,
    "json-00403": READER_TRUE,
    "json-00404": READER_TRUE,
    "json-00405": READER_TRUE,
    "json-00406": READER_TRUE,
    "json-00407": READER_TRUE,
    "json-00408": READER_TRUE,
    "json-00409": READER_TRUE,
    "json-00410": READER_TRUE,
    "json-00411": READER_TRUE,
    "json-00412": READER_TRUE,
    "json-00413": READER_TRUE,
    "json-00414": READER_TRUE,
    "json-00415": READER_TRUE,
    "json-00416": READER_TRUE,
    "json-00417": READER_TRUE,
    "json-00418": READER_TRUE,
    "json-00419": READER_TRUE,
    "json-00420": READER_TRUE,
    "json-00421": READER_TRUE,
    "json-00422": READER_TRUE,
    "json-00423": READER_TRUE,
    "json-00424": READER_TRUE,
    "json-00425": READER_TRUE,
    "json-00426": READER_TRUE,
    "json-00427": READER_TRUE,
    "json-00428": READER_TRUE,
    "json-00429": READER_TRUE,
    "json-00430": READER_TRUE,
    "json-00431": READER_TRUE,
    "json-00432": READER_TRUE,
    "json-00433": READER_TRUE,
    "json-00434": READER_TRUE,
    "json-00435": READER_TRUE,
    "json-00436": READER_TRUE,
    "json-00437": READER_TRUE,
    "json-00438": READER_TRUE,
    "json-00439": READER_TRUE,
    "json-00440": READER_TRUE,
    "json-00441": READER_TRUE,
    "json-00442": READER_TRUE,
    "json-00443": READER_TRUE,
    "json-00444": READER_TRUE,
    "json-00445": READER_TRUE,
    "json-00446": READER_TRUE,
    "json-00447": READER_TRUE,
    "json-00448": READER_TRUE,
    "json-00449": READER_TRUE,
    "json-00450": READER_TRUE,
    "json-00451": READER_TRUE,
    "json-00452": READER_TRUE,
    "json-00453": READER_TRUE,
    "json-00454": READER_TRUE,
    "json-00455": READER_TRUE,
    "json-00456": READER_TRUE,
    "json-00457": READER_TRUE,
    "json-00458": READER_TRUE,
    "json-00459": READER_TRUE,
    "json-00460": READER_TRUE,
    "json-00496": WRITER_FALSE,
    "json-00498": WRITER_FALSE,
    "json-00499": WRITER_FALSE,
    "json-00502": READER_TRUE,
    "json-00504": READER_TRUE,
    "json-00506": READER_TRUE,
    "json-00563": PATTERN_COVERS_EVERY_NAME,
    "json-00564": EMPTY_PROPERTY_IN_OPEN_MODEL,
    "json-00569": EMPTY_PROPERTY_IN_OPEN_MODEL,
    "json-00593": WRITER_FALSE,
    "json-00611": READER_FALSE,
    "json-00646": READER_TRUE,
    "json-00647": READER_TRUE,
    "json-00648": READER_TRUE,
    "json-00649": READER_TRUE,
    "json-00650": READER_TRUE,
    "json-00651": READER_TRUE,
    "json-00652": READER_TRUE,
    "json-00653": READER_TRUE,
    "json-00654": READER_TRUE,
    "json-00655": READER_TRUE,
    "json-00656": READER_TRUE,
    "json-00657": READER_TRUE,
    "json-00658": READER_TRUE,
    "json-00659": READER_TRUE,
    "json-00660": READER_TRUE,
    "json-00661": READER_TRUE,
    "json-00662": READER_TRUE,
    "json-00663": READER_TRUE,
    "json-00664": READER_TRUE,
    "json-00665": READER_TRUE,
    "json-00666": READER_TRUE,
    "json-00667": READER_TRUE,
    "json-00668": READER_TRUE,
    "json-00669": READER_TRUE,
    "json-00670": READER_TRUE,
    "json-00671": READER_TRUE,
    "json-00672": READER_TRUE,
    "json-00673": READER_TRUE,
    "json-00674": READER_TRUE,
    "json-00675": READER_TRUE,
    "json-00676": READER_TRUE,
    "json-00677": READER_TRUE,
    "json-00678": READER_TRUE,
    "json-00679": READER_TRUE,
    "json-00680": READER_TRUE,
    "json-00681": READER_TRUE,
    "json-00682": READER_TRUE,
    "json-00683": READER_TRUE,
    "json-00684": READER_TRUE,
    "json-00685": READER_TRUE,
    "json-00686": READER_TRUE,
    "json-00687": READER_TRUE,
    "json-00688": READER_TRUE,
    "json-00689": READER_TRUE,
    "json-00690": READER_TRUE,
    "json-00691": READER_TRUE,
    "json-00692": READER_TRUE,
    "json-00693": READER_TRUE,
    "json-00694": READER_TRUE,
    "json-00695": READER_TRUE,
    "json-00696": READER_TRUE,
    "json-00697": READER_TRUE,
    "json-00698": READER_TRUE,
    "json-00699": READER_TRUE,
    "json-00700": READER_TRUE,
    "json-00701": READER_TRUE,
    "json-00702": READER_TRUE,
    "json-00703": READER_TRUE,
    "json-00704": READER_TRUE,
    "json-00705": READER_TRUE,
    "json-00706": READER_TRUE,
    "json-00742": WRITER_FALSE,
    "json-00744": WRITER_FALSE,
    "json-00745": WRITER_FALSE,
    "json-00748": READER_TRUE,
    "json-00750": READER_TRUE,
    "json-00752": READER_TRUE,
    "json-00814": EMPTY_PROPERTY_IN_OPEN_MODEL,
    "json-00819": EMPTY_PROPERTY_IN_OPEN_MODEL,
}

# Agreement with the record's expected verdict, as (agreeing, total), measured per source and per flag.
EXPECTED_AGREEMENT: Final[Mapping[str, tuple[int, int]]] = {
    "Aiven-Open/karapace:tests/unit/compatibility/jsonschema/test_jsonschema_compatibility.py": (249, 321),
    "Aiven-Open/karapace:tests/integration/test_jsonschema.py": (172, 243),
    "flag:karapace_boolean_or_never_schema_semantics": (92, 230),
    "flag:rest_api_replay": (172, 243),
    "all": (421, 564),
}


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_record_verdict_matches_the_source_or_a_listed_difference(record: dict[str, Any]) -> None:
    verdict = evaluate_case(record)
    flags = record.get("flags") or []
    if any(flag.startswith("unparseable_") for flag in flags):
        assert verdict.compatible is None, verdict.messages
        return
    assert verdict.compatible is not None, verdict.messages
    if record["id"] in DELIBERATE_DIFFERENCES:
        assert verdict.compatible != expected_verdict(record), (
            f"{record['id']} now agrees with the source; remove it from DELIBERATE_DIFFERENCES"
        )
    else:
        assert verdict.compatible == expected_verdict(record), verdict.messages


def test_every_deliberate_difference_names_a_record_of_the_corpus() -> None:
    ids = {r["id"] for r in RECORDS}
    assert set(DELIBERATE_DIFFERENCES) <= ids


def test_karapace_only_semantics_are_the_only_differences_outside_the_open_content_model_cases() -> None:
    flagged = {r["id"] for r in RECORDS if KARAPACE_FLAG in (r.get("flags") or [])}
    unflagged = {i for i in DELIBERATE_DIFFERENCES if i not in flagged}
    assert {DELIBERATE_DIFFERENCES[i] for i in unflagged} <= {
        EMPTY_PROPERTY_IN_OPEN_MODEL,
        PATTERN_COVERS_EVERY_NAME,
    }


def test_agreement_per_source_and_flag_meets_the_measured_targets() -> None:
    agreement = Agreement()
    for record in RECORDS:
        verdict = evaluate_case(record)
        keys = ["all", record["source"], *(f"flag:{flag}" for flag in record.get("flags") or [])]
        agreement.count(keys, verdict.compatible == expected_verdict(record))
    agree, total = agreement.agreed, agreement.total
    measured = {key: (agree[key], total[key]) for key in total}
    assert measured == EXPECTED_AGREEMENT
    # Every disagreement is a listed, explained difference.
    assert total["all"] - agree["all"] == len(DELIBERATE_DIFFERENCES)
