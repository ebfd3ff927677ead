"""`spec.acceptedHistory` on a Subject: imported versions are accepted as they are, what comes after is
checked as usual, by the webhook, `kschema check` and the operator alike."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from kschema.compat import CompatibilityLevel
from kschema.formats import SchemaFormat
from kschema.model import SchemaSpec, SpecError, SubjectSpec, subject_from_body
from kschema.policy import Catalog, review_catalog, review_schema, review_subject

NS = "moved-in"


def avro(*fields: dict[str, Any]) -> str:
    return json.dumps({"type": "record", "name": "Legacy", "fields": list(fields)})


A_INT = avro({"name": "a", "type": "int"})
A_STRING = avro({"name": "a", "type": "string"})  # breaks BACKWARD against A_INT
B_REQUIRED = avro({"name": "a", "type": "string"}, {"name": "b", "type": "int"})
B_DEFAULT = avro({"name": "a", "type": "string"}, {"name": "b", "type": "int", "default": 0})


def subject(through: int | None, level: CompatibilityLevel = CompatibilityLevel.BACKWARD) -> SubjectSpec:
    return SubjectSpec("legacy", NS, "legacy-value", SchemaFormat.AVRO, level, accepted_through=through)


def schema(version: int, text: str) -> SchemaSpec:
    return SchemaSpec(f"legacy-v{version}", NS, "legacy", version, text)


HISTORY = (schema(1, A_INT), schema(2, A_STRING))


def test_a_history_that_breaks_the_level_is_refused_without_accepted_history() -> None:
    decision = review_schema(schema(2, A_STRING), None, Catalog([subject(None)], HISTORY))
    assert not decision.allowed
    assert "is not BACKWARD compatible with version 1" in decision.message


def test_versions_up_to_the_accepted_one_are_admitted_as_they_are() -> None:
    catalog = Catalog([subject(2)], HISTORY)
    assert review_schema(schema(2, A_STRING), None, catalog).allowed
    assert review_schema(schema(1, A_INT), None, catalog).allowed
    assert all(d.allowed for d in review_catalog(catalog).values())


@pytest.mark.parametrize("level", [CompatibilityLevel.BACKWARD, CompatibilityLevel.BACKWARD_TRANSITIVE])
def test_a_later_version_is_checked_against_the_imported_ones(level: CompatibilityLevel) -> None:
    catalog = Catalog([subject(2, level)], HISTORY)

    refused = review_schema(schema(3, B_REQUIRED), None, catalog)

    assert not refused.allowed
    assert f'version 3 of subject "legacy-value" is not {level} compatible with version 2' in refused.message


def test_a_compatible_later_version_is_admitted() -> None:
    assert review_schema(schema(3, B_DEFAULT), None, Catalog([subject(2)], HISTORY)).allowed


def test_an_imported_version_arriving_after_a_later_one_must_still_suit_it() -> None:
    """The pair (2, 3) is not accepted history: version 3 is checked against version 2 from either side."""
    catalog = Catalog([subject(2)], (schema(1, A_INT), schema(3, B_DEFAULT)))
    decision = review_schema(schema(2, avro({"name": "a", "type": "boolean"})), None, catalog)
    assert not decision.allowed
    assert "would not be BACKWARD compatible with version 2" in decision.message


def test_the_subject_does_not_warn_that_accepted_history_violates_its_level() -> None:
    warned = review_subject(subject(None), None, Catalog([], HISTORY)).warnings
    quiet = review_subject(subject(2), None, Catalog([], HISTORY)).warnings
    assert any("already violate BACKWARD" in w for w in warned)
    assert not any("violate" in w for w in quiet)


def test_raising_the_accepted_version_later_is_allowed_with_a_warning() -> None:
    decision = review_subject(subject(3), subject(2), Catalog([], HISTORY))
    assert decision.allowed
    assert any("accepts versions up to 3" in w and "no longer checked" in w for w in decision.warnings)


def test_the_field_is_read_from_the_manifest_and_checked() -> None:
    body = {
        "metadata": {"name": "legacy", "namespace": NS},
        "spec": {"name": "legacy-value", "format": "AVRO", "acceptedHistory": {"throughVersion": 10}},
    }
    assert subject_from_body(body).accepted_through == 10
    assert subject_from_body({**body, "spec": {"format": "AVRO"}}).accepted_through is None
    with pytest.raises(
        SpecError, match=r"spec.acceptedHistory.throughVersion: must be an integer from 1 to 2147483647"
    ):
        subject_from_body({**body, "spec": {"format": "AVRO", "acceptedHistory": {"throughVersion": 0}}})
    with pytest.raises(
        SpecError, match=r"spec.acceptedHistory.throughVersion: must be an integer from 1 to 2147483647"
    ):
        subject_from_body({**body, "spec": {"format": "AVRO", "acceptedHistory": {"throughVersion": 2**31}}})
    with pytest.raises(SpecError, match=r"spec.acceptedHistory: must be an object"):
        subject_from_body({**body, "spec": {"format": "AVRO", "acceptedHistory": 3}})


def test_accepts_as_history_is_inclusive() -> None:
    spec = dataclasses.replace(subject(None), accepted_through=5)
    assert [spec.accepts_as_history(v) for v in (4, 5, 6)] == [True, True, False]
    assert not subject(None).accepts_as_history(1)
